// /proc/PID/stat, read in one place: "pid (comm) state ppid pgrp ... starttime ...". The command
// name may hold spaces and parentheses, so the fields are counted from after the last ')'.
import { readFileSync } from "../../ffi/fs.ts";

export interface ProcStat {
  comm: string;
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Clock ticks since boot when it started: with the pid, names one process across pid reuse. */
  startTime: number;
}

/** The process's stat line parsed; throws when it cannot be read (it has exited, say). */
export function procStat(pid: number | "self"): ProcStat {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const close = stat.lastIndexOf(")");
  // After the name: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) ... starttime(19).
  const f = stat.slice(close + 2).split(" ");
  return { comm: stat.slice(stat.indexOf("(") + 1, close), ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]), startTime: Number(f[19]) };
}
