// A container's processes as seen from its manager: naming them safely, delivering signals the
// way a terminal or kill(1) would, and exit statuses.
//
// Processes are named by pid plus start time (field 22 of /proc/PID/stat, in clock ticks since
// boot), so a recycled pid is never mistaken for the container's command.
import { procStat } from "../process/stat.ts";
import { ignoreSignal, kill } from "../../ffi/libc.ts";
import { signalCgroup } from "../cgroup/cgroup.ts";
import { SIGNALS } from "../process/signals.ts";
import { warn } from "../errors/notice.ts";

const SIG = SIGNALS;
export const SIGKILL = 9, SIGTERM = 15, SIGCONT = 18, SIGSTOP = 19;

export function startTime(pid: number): number | undefined {
  try {
    return procStat(pid).startTime;
  } catch {
    return undefined;
  }
}

export function isSameProcess(pid: number | undefined, start: number | undefined): boolean {
  return pid !== undefined && start !== undefined && startTime(pid) === start;
}

/**
 * Signals the command's whole process group (it leads one: it is started with setsid), or the
 * command alone when it leads none (a record written by an older tsnet).
 */
export function signalCommand(pid: number, start: number | undefined, signal: number): boolean {
  if (!isSameProcess(pid, start)) return false;
  return kill(-pid, signal) || kill(pid, signal);
}

/** tsnet's exit status for an ended command: its own, or 128+N when signal N killed it. */
export function exitStatus(child: Bun.Subprocess): number {
  if (child.exitCode !== null) return child.exitCode;
  return 128 + (SIG[String(child.signalCode)] ?? 0);
}

/**
 * Every signal Bun lets JavaScript handle, except the ones that are tsnet's own: CHLD (reaping),
 * PIPE and XFSZ (raised by tsnet's own writes; Bun ignores them), and the fault signals ILL,
 * TRAP, BUS, FPE, SEGV and SYS (they mean tsnet itself crashed). PWR is taken by Bun's JavaScript
 * engine. KILL and STOP cannot be caught by anyone.
 */
export const FORWARDED = [
  "SIGHUP", "SIGINT", "SIGQUIT", "SIGABRT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM", "SIGCONT",
  "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",
] as const satisfies readonly NodeJS.Signals[];

/** What a terminal sends to its foreground process group: delivered to the command's group. */
const TERMINAL = new Set([SIG.SIGINT, SIG.SIGQUIT, SIG.SIGHUP, SIG.SIGWINCH]);
/** Job-control stops: the command sits in an orphaned process group of its own session, where
 * the kernel discards them, so tsnet stops the container's processes itself. */
const STOPS = new Set([SIG.SIGTSTP, SIG.SIGTTIN, SIG.SIGTTOU]);
/** Signals whose default action does not end a process. */
const HARMLESS = new Set([SIG.SIGCONT, SIG.SIGWINCH, SIG.SIGURG, SIG.SIGCHLD]);

/**
 * Bun offers no handler for SIGSTKFLT and the real-time signals, whose default action would kill
 * tsnet: they are ignored instead (glibc keeps 32 and 33 for itself; SIGRTMIN is 34).
 */
const UNHANDLED = [16, ...Array.from({ length: 31 }, (_, i) => 34 + i)];

/**
 * Where a manager's forwarded signals go. The command leads its own session and process group,
 * so the terminal's signals reach only tsnet and each one is delivered exactly once, here.
 * While the first process lives: terminal signals (INT, QUIT, HUP, WINCH) to its process group,
 * as a terminal would; TERM (stop the container, as `tsnet stop` and systemd do) and CONT to
 * every process; the rest to the first process, as kill(1) would. Once it has exited: every
 * signal to every process that remains.
 */
export class SignalRoute {
  firstAlive = true;
  /** The last signal forwarded after the first process had exited that can end a process. */
  signalAfterFirst: number | undefined;

  /**
   * cgroup: the container's (undefined: its processes are its first process's group). tty: the
   * command has a terminal of its own (-t), whose window changes the kernel announces itself
   * (SIGWINCH to its foreground job when tsnet sets the size), so WINCH is not forwarded.
   */
  constructor(readonly pid: number, readonly cgroup?: string, readonly tty = false) {}

  forward(sig: number): void {
    if (this.tty && sig === SIG.SIGWINCH) return;
    if (this.firstAlive) {
      if (TERMINAL.has(sig) && kill(-this.pid, sig)) return;
      if (sig === SIGTERM || sig === SIGCONT) return this.everyProcess(sig);
      if (kill(this.pid, sig)) return;
      // The first process has just exited: the signal is for what remains.
    }
    if (!HARMLESS.has(sig)) this.signalAfterFirst = sig;
    this.everyProcess(sig);
  }

  /** Stops every process of the container (SIGSTOP); a forwarded CONT resumes them. */
  suspend(): void {
    this.everyProcess(SIGSTOP);
  }

  everyProcess(sig: number): void {
    if (this.cgroup) signalCgroup(this.cgroup, sig);
    else kill(-this.pid, sig);
  }
}

/** What must happen around tsnet stopping itself: a -it session gives the caller's terminal back. */
export interface StopHooks {
  stopping(): void;
  resumed(): void;
}

/**
 * Handles every forwardable signal from now on, so that none kills tsnet while its command
 * lives. A signal that arrives before the command exists is held and delivered once `flush` is
 * called. TSTP, TTIN and TTOU stop the container and then tsnet itself, as they would stop a
 * command run straight from the shell; the shell's CONT (fg, bg) resumes both.
 */
export function forwardSignals(target: () => SignalRoute | undefined, around?: StopHooks): { flush: () => void; stop: () => void } {
  const pending: number[] = [];
  const handle = (name: NodeJS.Signals) => {
    const sig = SIG[name]!;
    const route = target();
    try {
      if (STOPS.has(sig)) {
        route?.suspend();
        around?.stopping();
        // The stop takes effect before kill returns: from here on tsnet has been continued.
        kill(process.pid, SIGSTOP);
        around?.resumed();
        return;
      }
      if (route) route.forward(sig);
      else if (!pending.includes(sig)) pending.push(sig);
    } catch (e) {
      // A handler that threw would end tsnet with its command still running.
      warn(`forwarding ${name}: ${(e as Error).message}`);
    }
  };
  for (const s of UNHANDLED) ignoreSignal(s);
  for (const s of FORWARDED) process.on(s, handle);
  return {
    flush() {
      const route = target();
      if (route) for (const sig of pending.splice(0)) route.forward(sig);
    },
    stop() {
      for (const s of FORWARDED) process.off(s, handle);
    },
  };
}
