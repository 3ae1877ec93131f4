// Signals by name or number, as `docker kill -s` reads them: KILL, SIGKILL, kill, 9.
import { UsageError } from "../errors/errors.ts";

// Linux's signal numbers (asm-generic/signal.h; x86_64 uses the same numbers), in order. Defined
// here rather than read from node:os, whose module costs every process that loads it 0.7 ms.
const NAMES = [
  "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
  "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP",
  "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
] as const;

/** Signal numbers by name (SIGTERM: 15), with the kernel's aliases SIGIOT and SIGPOLL. */
export const SIGNALS: Readonly<Record<string, number>> = {
  ...Object.fromEntries(NAMES.map((name, i) => [name, i + 1])),
  SIGIOT: 6,
  SIGPOLL: 29,
};
const BY_NAME = SIGNALS;

/** The signal names `kill -s` offers: every signal the kernel has a name for, without SIG. */
export const SIGNAL_NAMES: readonly string[] = NAMES.map((name) => name.slice(3));

/** A signal number from a name (with or without SIG, any case) or a number from 1 to 64. */
export function parseSignal(text: string, flag = "--signal"): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = text.toUpperCase();
    const n = BY_NAME[name.startsWith("SIG") ? name : `SIG${name}`];
    if (n !== undefined && n > 0) return n;
  }
  throw new UsageError(`invalid ${flag} "${text}": give a signal name (KILL, TERM, HUP, SIGUSR1...) or a number from 1 to 64`);
}
