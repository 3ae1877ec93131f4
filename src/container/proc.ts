// Processes are named by pid plus start time (field 22 of /proc/PID/stat, in clock ticks since
// boot), so a recycled pid is never mistaken for the container's command.
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { kill } from "../../ffi/libc.ts";

export function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

export function isSameProcess(pid: number | undefined, start: number | undefined): boolean {
  return pid !== undefined && start !== undefined && startTime(pid) === start;
}

/** Signals the container's command: its whole process group when it leads one (detached runs). */
export function signalCommand(pid: number, start: number | undefined, group: boolean, signal: number): boolean {
  if (!isSameProcess(pid, start)) return false;
  return kill(group ? -pid : pid, signal);
}

/** tsnet's exit status for an ended command: its own, or 128+N when signal N killed it. */
export function exitStatus(child: Bun.Subprocess): number {
  if (child.exitCode !== null) return child.exitCode;
  return 128 + ((constants.signals as Record<string, number>)[String(child.signalCode)] ?? 0);
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;

/**
 * Forwards INT, TERM, HUP and QUIT to the command from now on. A signal that arrives before the
 * command exists is held and delivered once `target()` returns it (call the returned `flush`).
 * Returns a function that stops forwarding.
 */
export function forwardSignals(target: () => Bun.Subprocess | undefined): { flush: () => void; stop: () => void } {
  let pending: NodeJS.Signals | undefined;
  const forward = (sig: NodeJS.Signals) => {
    const child = target();
    if (child) child.kill(sig);
    else pending ??= sig;
  };
  for (const s of FORWARDED) process.on(s, forward);
  return {
    flush() {
      const child = target();
      if (child && pending) child.kill(pending);
      pending = undefined;
    },
    stop() {
      for (const s of FORWARDED) process.off(s, forward);
    },
  };
}
