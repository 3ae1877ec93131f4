// Processes are named by pid plus start time (field 22 of /proc/PID/stat, in clock ticks since
// boot), so a recycled pid is never mistaken for the container's command.
import { readFileSync } from "node:fs";
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
