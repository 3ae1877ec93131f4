// Every byte tsnet itself prints goes through here, written synchronously to fd 1 or 2.
// Synchronous writes make a failure land where it happens instead of in a stream's 'error'
// event after the fact, so it can end the process the way Unix tools end:
// - stdout closed (EPIPE: `tsnet ps | head -1`): exit at once with 141, as a program killed by
//   SIGPIPE does (`yes | head`), with no message: the reader left on purpose.
// - any other failure (ENOSPC, EIO): one line on stderr, exit 125.
// (process.stdout is also avoided because creating it costs several milliseconds at start-up.)
import { writeAllSync as writeAll } from "../../ffi/fs.ts";

/** 128 + SIGPIPE: what a shell reports for a writer whose reader went away. */
export const EXIT_PIPE_CLOSED = 141;

let finishTheWork = false;
let stdoutClosed = false;

/**
 * For commands that act on several objects and print each one's name once it is done (stop, rm,
 * kill, restart, network rm): a closed stdout ends the printing, not the work. Every object is
 * still acted on; then the command exits 141, or with its own failure's code if one failed.
 */
export async function actOnAll(work: () => Promise<number>): Promise<number> {
  finishTheWork = true;
  const code = await work();
  return code === 0 && stdoutClosed ? EXIT_PIPE_CLOSED : code;
}

/** Writes data to stdout; a closed or full stdout ends tsnet (see above). */
export function out(text: string | Uint8Array): void {
  data(1, text);
}

/** Writes data that belongs on stderr (what a container's command wrote there: `tsnet logs`), as `out` does. */
export function outStderr(text: string | Uint8Array): void {
  data(2, text);
}

function data(fd: 1 | 2, text: string | Uint8Array): void {
  if (fd === 1 && stdoutClosed) return;
  try {
    writeAll(fd, text);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EPIPE" && fd === 1 && finishTheWork) {
      stdoutClosed = true;
      return;
    }
    if (code === "EPIPE") process.exit(EXIT_PIPE_CLOSED);
    const what = code === "ENOSPC" ? "no space left on device (ENOSPC)" : code ?? (e as Error).message;
    err(`tsnet: cannot write output: ${what}\n`);
    process.exit(125);
  }
}

/** Writes a message to stderr; if stderr itself is gone there is no one to tell. */
export function err(text: string): void {
  try {
    writeAll(2, text);
  } catch {}
}

export { printable } from "../errors/notice.ts";
