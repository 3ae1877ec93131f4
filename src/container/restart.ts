// Restart policies (`run -d --restart`), as Docker's restart manager applies them: whether a
// container whose last process has ended is started again, and after how long.
import { UsageError } from "../errors/errors.ts";
import type { RestartPolicy } from "../state/containers.ts";

const NAMES = ["no", "on-failure", "always", "unless-stopped"] as const;

/** no | on-failure[:N] | always | unless-stopped */
export function parseRestart(spec: string): RestartPolicy {
  const [name, count, ...more] = spec.split(":");
  const bad = (why: string) => new UsageError(`invalid --restart "${spec}": ${why}; use no, on-failure[:N], always or unless-stopped`);
  if (!(NAMES as readonly string[]).includes(name!) || more.length) throw bad(`"${name}" is not a restart policy`);
  if (count === undefined) return { name: name as RestartPolicy["name"], max: 0 };
  if (name !== "on-failure") throw bad(`a maximum retry count is for on-failure only`);
  if (!/^\d{1,9}$/.test(count)) throw bad(`"${count}" is not a number of retries`);
  return { name: "on-failure", max: Number(count) };
}

/** Docker's first delay, its factor, its ceiling, and how long a run must last to reset them. */
export const FIRST_DELAY_MS = 100;
export const MAX_DELAY_MS = 60_000;
export const RESET_AFTER_MS = 10_000;

/**
 * The delays between restarts: 100 ms, doubling each time up to a minute; a run that lasted 10 s
 * or more starts the series again.
 */
export class Backoff {
  private delay = 0;

  next(ranMs: number): number {
    if (ranMs >= RESET_AFTER_MS) this.delay = 0;
    this.delay = this.delay === 0 ? FIRST_DELAY_MS : Math.min(this.delay * 2, MAX_DELAY_MS);
    return this.delay;
  }
}

/**
 * Whether a container that exited with `code` is started again. A container stopped by hand never
 * is (the caller checks); `always` and `unless-stopped` differ only across a restart of Docker's
 * daemon, which tsnet does not have: here they are the same.
 */
export function shouldRestart(policy: RestartPolicy | undefined, code: number, restarts: number): boolean {
  switch (policy?.name) {
    case "always":
    case "unless-stopped":
      return true;
    case "on-failure":
      return code !== 0 && (policy.max === 0 || restarts < policy.max);
    default:
      return false;
  }
}
