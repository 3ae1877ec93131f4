// `-t`: the command gets a pseudo-terminal of its own, and tsnet stands between it and the
// caller, as Docker's client does: the caller's terminal in raw mode while keys pass through
// (so Ctrl-C, Ctrl-Z and Ctrl-\ reach the container's line discipline as bytes, and its
// foreground job gets the signal), the window size kept in step, the command's output copied out.
//
// The pseudo-terminal itself is Bun.spawn's `terminal` option: Bun opens it (posix_openpt,
// grantpt, unlockpt) and the child, between fork and exec, calls setsid and TIOCSCTTY on it, so
// it leads a session whose controlling terminal it is. That costs nothing over a plain spawn;
// a re-executed shim doing the same would cost 5-8 ms and a process (see README, "-t").
import { getTermios, isatty, rawTermios, setTermios, windowSize } from "../../ffi/libc.ts";
import { writeAllSync } from "../../ffi/fs.ts";

/** The caller's window (from whichever of stdout, stdin, stderr is a terminal), or 80x24. */
export function callerWindow(): { cols: number; rows: number } {
  for (const fd of [1, 0, 2]) {
    const ws = windowSize(fd);
    if (ws && ws.cols > 0 && ws.rows > 0) return ws;
  }
  return { cols: 80, rows: 24 };
}

/**
 * The caller's terminal on stdin, put in raw mode while a `-it` session runs and given back its
 * exact settings (the bytes tcgetattr returned) on every way out: the session's end, an error,
 * a signal that ends tsnet (its handlers forward, the command ends, this runs), process exit.
 */
export class CallerTerminal {
  private saved: Uint8Array | undefined;
  private readonly onExit = () => this.restore();

  /** A terminal on stdin to put in raw mode, or undefined (a pipe, a file, /dev/null). */
  static forInput(): CallerTerminal | undefined {
    return isatty(0) ? new CallerTerminal() : undefined;
  }

  raw(): void {
    if (this.saved) return;
    const t = getTermios(0);
    setTermios(0, rawTermios(t));
    this.saved = t;
    process.on("exit", this.onExit);
  }

  restore(): void {
    if (!this.saved) return;
    const t = this.saved;
    this.saved = undefined;
    process.off("exit", this.onExit);
    try {
      setTermios(0, t);
    } catch {}
  }

  get isRaw(): boolean {
    return this.saved !== undefined;
  }
}

/** What a session relays: the command's terminal output to `out`, keys from stdin when interactive. */
export interface TtyRelayOptions {
  /** Where the command's output goes (tsnet's stdout, or a detached container's log). */
  out: number;
  /** Copy tsnet's stdin to the command's terminal (-i). */
  input: boolean;
}

/**
 * One `-t` session of tsnet's: the terminal options for Bun.spawn, then (once the command runs)
 * keys copied in and SIGWINCH turned into the pty's window size; at the end, the pty's output
 * drained (every process holding it has closed it) and the caller's terminal given back.
 */
export class TtyRelay {
  private term: Bun.Terminal | undefined;
  private caller: CallerTerminal | undefined;
  /** Settles when the current run's pty has given its last byte. */
  private closed: Promise<void> = Promise.resolve();
  private readonly onWinch = () => this.resize();
  private reader: ReturnType<ReturnType<typeof Bun.stdin.stream>["getReader"]> | undefined;

  constructor(private readonly o: TtyRelayOptions) {}

  /** Bun.spawn's `terminal` option for one run of the command. */
  spawnOptions(): Bun.TerminalOptions {
    const { cols, rows } = callerWindow();
    let eof!: () => void;
    this.closed = new Promise<void>((resolve) => (eof = resolve));
    return {
      cols, rows, name: process.env.TERM || "xterm",
      data: (_t, d) => writeAllSync(this.o.out, d),
      exit: (t) => {
        eof();
        t.close();
      },
    };
  }

  /** The command runs on `term`: from now on keys go in and the window follows the caller's. */
  attach(term: Bun.Terminal | undefined): void {
    if (!term) return;
    this.term = term;
    process.off("SIGWINCH", this.onWinch);
    process.on("SIGWINCH", this.onWinch);
    if (!this.o.input) return;
    this.caller ??= CallerTerminal.forInput();
    this.caller?.raw();
    if (!this.reader) void this.pump();
  }

  private resize(): void {
    if (!this.term || this.term.closed) return;
    const { cols, rows } = callerWindow();
    this.term.resize(cols, rows);
  }

  private async pump(): Promise<void> {
    const reader = (this.reader = Bun.stdin.stream().getReader());
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        if (this.term && !this.term.closed) this.term.write(r.value);
      }
      // stdin ended (a pipe): the terminal's end-of-file character, as `script` sends, so that a
      // shell reading a script from it ends.
      if (this.term && !this.term.closed) this.term.write("\x04");
    } catch {
      // stdin unreadable (closed under us): the session goes on with what it has.
    }
  }

  /** Waits for the pty's last byte, at most `ms` (something outside the container may hold it). */
  async drain(ms: number): Promise<void> {
    let timer: Timer | undefined;
    await Promise.race([this.closed, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  /** Ends the session: the caller's terminal as it was, no more window changes. */
  detach(): void {
    process.off("SIGWINCH", this.onWinch);
    this.caller?.restore();
    this.reader?.cancel().catch(() => {});
    try {
      this.term?.close();
    } catch {}
  }

  /** The caller's settings back before tsnet stops itself (SIGTSTP from outside), raw again after. */
  suspend(): void {
    this.caller?.restore();
  }

  resume(): void {
    if (this.o.input && this.caller && this.term && !this.term.closed) this.caller.raw();
  }
}
