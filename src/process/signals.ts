// Signals by name or number, as `docker kill -s` reads them: KILL, SIGKILL, kill, 9.
import { constants } from "node:os";
import { UsageError } from "../errors/errors.ts";

const BY_NAME = constants.signals as Record<string, number>;

/** The signal names `kill -s` offers: every signal the kernel has a name for, without SIG. */
export const SIGNAL_NAMES: readonly string[] = Object.entries(BY_NAME)
  .filter(([name, n]) => n > 0 && name !== "SIGIOT" && name !== "SIGPOLL" && name !== "SIGUNUSED")
  .map(([name]) => name.slice(3));

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
