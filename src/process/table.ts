// What `ps` shows of a process, read from /proc (tsnet never runs ps): user, CPU time, command.
import { readFileSync } from "../../ffi/fs.ts";
import { clockTicks } from "../../ffi/libc.ts";
import { procStat } from "./stat.ts";

export interface ProcessRow {
  pid: number;
  user: string;
  /** CPU time (user + system) as ps prints it: [DD-]HH:MM:SS. */
  time: string;
  command: string;
}

let users: Map<number, string> | undefined;
function userName(uid: number): string {
  if (!users) {
    users = new Map();
    try {
      for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
        const [name, , id] = line.split(":");
        if (name && id !== undefined && !users.has(Number(id))) users.set(Number(id), name);
      }
    } catch {} // no passwd file: numeric ids
  }
  return users.get(uid) ?? String(uid);
}

function cpuTime(ticks: number): string {
  const total = Math.floor(ticks / clockTicks());
  const days = Math.floor(total / 86400);
  const hms = [Math.floor(total / 3600) % 24, Math.floor(total / 60) % 60, total % 60].map((n) => String(n).padStart(2, "0")).join(":");
  return days ? `${days}-${hms}` : hms;
}

/** One row per pid that still exists (a process may exit while it is read). */
export function processRows(pids: number[]): ProcessRow[] {
  const rows: ProcessRow[] = [];
  for (const pid of pids) {
    try {
      const { comm, cpuTicks: ticks } = procStat(pid);
      const uidLine = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("Uid:"));
      const euid = Number(uidLine?.split(/\s+/)[2] ?? -1);
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0$/, "").split("\0").join(" ");
      rows.push({ pid, user: userName(euid), time: cpuTime(ticks), command: argv || `[${comm}]` });
    } catch {} // exited meanwhile
  }
  return rows;
}
