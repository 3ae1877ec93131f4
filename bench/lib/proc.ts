// Processes for the benchmark: running a step, timing a cycle, reading what a process holds.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

export class StepError extends Error {}

/** A step ended by SIGINT or SIGTERM: the user is stopping the benchmark. */
export class Interrupted extends Error {}

export interface RunOptions {
  stdin?: string;
  env?: Record<string, string | undefined>;
  /** Give up after this many ms (a hung step must not hang the benchmark). */
  timeoutMs?: number;
}

/** Runs argv to completion; returns stdout; throws a StepError naming the command on failure. */
export function run(argv: string[], opts: RunOptions = {}): string {
  const p = Bun.spawnSync(argv, {
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: (opts.env ?? process.env) as Record<string, string>,
    timeout: opts.timeoutMs ?? 120_000,
  });
  if (p.signalCode === "SIGINT" || p.signalCode === "SIGTERM") throw new Interrupted(`${argv[0]} ended by ${p.signalCode}`);
  if (p.exitCode !== 0) {
    const err = (p.stderr.toString().trim() || p.stdout.toString().trim()).split("\n").slice(-3).join(" | ");
    const how = p.exitCode === null ? `killed (${p.signalCode ?? "timeout"})` : `exit ${p.exitCode}`;
    throw new StepError(`${argv.join(" ")}: ${how}${err ? `: ${err.slice(0, 400)}` : ""}`);
  }
  return p.stdout.toString();
}

/** Like run, but returns null instead of throwing. */
export function tryRun(argv: string[], opts: RunOptions = {}): string | null {
  try {
    return run(argv, opts);
  } catch {
    return null;
  }
}

/** Wall milliseconds of fn (one cycle: all its processes, start to finish). */
export function timeMs(fn: () => void): number {
  const t0 = Bun.nanoseconds();
  fn();
  return (Bun.nanoseconds() - t0) / 1e6;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function which(cmd: string): string | null {
  return Bun.which(cmd, { PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin:/usr/lib/podman` });
}

/** PIDs whose executable is EXE (a resolved path), read from /proc. */
export function pidsByExe(exe: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/exe`) === exe) out.push(Number(d));
    } catch {
      // gone, or a kernel thread
    }
  }
  return out;
}

/** What a set of processes holds resident, in KiB, from /proc/PID/smaps_rollup. */
export interface Memory {
  processes: number;
  rssKiB: number;
  /** Proportional: each shared page divided among the processes that map it. */
  pssKiB: number;
  /** Pages no other process maps (clean + dirty), including executable pages nobody else maps. */
  privateKiB: number;
  /** Anonymous pages (heap, stacks): what the processes themselves allocated. */
  anonKiB: number;
}

export function memoryOf(pids: number[]): Memory {
  const m: Memory = { processes: 0, rssKiB: 0, pssKiB: 0, privateKiB: 0, anonKiB: 0 };
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    if (field("Rss") === 0) continue; // a zombie
    m.processes++;
    m.rssKiB += field("Rss");
    m.pssKiB += field("Pss");
    m.privateKiB += field("Private_Clean") + field("Private_Dirty");
    m.anonKiB += field("Anonymous");
  }
  return m;
}

/** Runs tasks with at most `width` in flight; rejects with the first failure after all settle. */
export async function pool<T>(items: T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < items.length && failure === null) {
      const item = items[next++]!;
      try {
        await task(item);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failure !== null) throw failure;
}

/** Async run, for building populations of containers in parallel. */
export async function runAsync(argv: string[], opts: RunOptions = {}): Promise<string> {
  const p = Bun.spawn(argv, {
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: (opts.env ?? process.env) as Record<string, string>,
  });
  const timer = setTimeout(() => p.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new StepError(`${argv.join(" ")}: exit ${code}: ${(err.trim() || out.trim()).slice(0, 400)}`);
  return out;
}
