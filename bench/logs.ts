// What detached containers' logs cost the supervisor, for two builds of tsnet side by side (before
// and after a change to how logs are written). Run inside a throwaway host:
//   bash test/sandbox.sh bun bench/logs.ts OLD_TSNET NEW_TSNET
// Measured for each build in turn, ROUNDS times, alternating which goes first:
//   - memory: the supervisor's RSS and anonymous memory with N idle containers (`sleep inf`,
//     --network none), per container: (at N - at 1) / (N - 1);
//   - CPU: the supervisor's user+system time (from /proc/PID/stat) while one container writes
//     WRITES lines one write(2) each (a shell's echo), alternating stdout and stderr, and while one
//     writes 20 MB through stdio's buffer (seq), with the command's own wall time.
// N (default 1000), WRITES (default 20000) and ROUNDS (default 2) set the sizes.
import { readFileSync } from "node:fs";
import { clockTicks } from "../ffi/libc.ts";
import { memoryOf, pool, run, runAsync } from "./lib/proc.ts";

const [oldExe, newExe] = process.argv.slice(2);
if (!oldExe || !newExe) throw new Error("usage: bun bench/logs.ts OLD_TSNET NEW_TSNET");
const N = Number(process.env.N ?? 1000);
const WRITES = Number(process.env.WRITES ?? 20000);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const TICK_MS = 1000 / clockTicks();

function supervisorPid(exe: string): number {
  const name = run([exe, "ps", "-aq"]).trim().split("\n")[0];
  if (!name) throw new Error("no container");
  const rec = JSON.parse(run(["sh", "-c", `cat /run/tsnet/containers/${run([exe, "inspect", "-f", "{{.Id}}", name]).trim()}.json`]));
  return Number(String(rec.manager).split("-")[0]);
}

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime
}

function clean(exe: string): void {
  const ids = run([exe, "ps", "-aq"]).trim().split("\n").filter(Boolean);
  for (let i = 0; i < ids.length; i += 200) run([exe, "rm", "-f", ...ids.slice(i, i + 200)]);
}

async function waitEnded(exe: string, name: string): Promise<void> {
  while (run([exe, "inspect", "-f", "{{.State.Status}}", name]).trim() !== "exited") await Bun.sleep(20);
}

async function memory(exe: string): Promise<{ rss: number; anon: number }> {
  run([exe, "run", "-d", "--network", "none", "--name", "m0", "--", "sleep", "inf"]);
  const pid = supervisorPid(exe);
  await Bun.sleep(500);
  const one = memoryOf([pid]);
  await pool(Array.from({ length: N - 1 }, (_, i) => i + 1), 4, async (i) => {
    await runAsync([exe, "run", "-d", "--network", "none", "--name", `m${i}`, "--", "sleep", "inf"]);
  });
  await Bun.sleep(2500); // the supervisor gives memory back 200 ms after a burst
  const at = memoryOf([pid]);
  clean(exe);
  return { rss: (at.rssKiB - one.rssKiB) / (N - 1), anon: (at.anonKiB - one.anonKiB) / (N - 1) };
}

async function cpu(exe: string, command: string): Promise<{ supervisorMs: number; wallMs: number }> {
  // A container that stays, so that the same supervisor serves the measured one.
  run([exe, "run", "-d", "--network", "none", "--name", "keep", "--", "sleep", "inf"]);
  const pid = supervisorPid(exe);
  await Bun.sleep(300);
  const before = cpuMs(pid);
  const t0 = performance.now();
  run([exe, "run", "-d", "--network", "none", "--name", "chatty", "--", "sh", "-c", command]);
  await waitEnded(exe, "chatty");
  const wallMs = performance.now() - t0;
  const supervisorMs = cpuMs(pid) - before;
  if (process.env.DEBUG) {
    const chatty = JSON.parse(readFileSync(`/run/tsnet/containers/${run([exe, "inspect", "-f", "{{.Id}}", "chatty"]).trim()}.json`, "utf8"));
    console.error(`supervisor ${pid} (chatty's: ${chatty.manager}): ${before} -> ${cpuMs(pid)} ms`);
  }
  clean(exe);
  return { supervisorMs, wallMs };
}

const lines = `i=0; while [ $i -lt ${WRITES} ]; do echo "out $i"; echo "err $i" >&2; i=$((i+2)); done`;
const bulk = "seq 1 2500000";
const results: Record<string, { rss: number[]; anon: number[]; linesCpu: number[]; linesWall: number[]; bulkCpu: number[]; bulkWall: number[] }> = {};
for (const exe of [oldExe, newExe]) results[exe] = { rss: [], anon: [], linesCpu: [], linesWall: [], bulkCpu: [], bulkWall: [] };

for (let r = 0; r < ROUNDS; r++) {
  for (const exe of r % 2 === 0 ? [oldExe, newExe] : [newExe, oldExe]) {
    const res = results[exe]!;
    const m = await memory(exe);
    res.rss.push(m.rss);
    res.anon.push(m.anon);
    const l = await cpu(exe, lines);
    res.linesCpu.push(l.supervisorMs);
    res.linesWall.push(l.wallMs);
    const b = await cpu(exe, bulk);
    res.bulkCpu.push(b.supervisorMs);
    res.bulkWall.push(b.wallMs);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
console.log(`${ROUNDS} rounds, alternating; N=${N} idle containers; ${WRITES} single-line writes; seq 1 2500000 (about 20 MB)`);
console.log("| build | RSS per container | anonymous per container | supervisor CPU, line writes | their wall time | supervisor CPU, 20 MB buffered | its wall time |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const [exe, r] of Object.entries(results)) {
  console.log(`| ${exe} | ${median(r.rss).toFixed(1)} kB | ${median(r.anon).toFixed(1)} kB | ${median(r.linesCpu).toFixed(0)} ms | ${median(r.linesWall).toFixed(0)} ms | ${median(r.bulkCpu).toFixed(0)} ms | ${median(r.bulkWall).toFixed(0)} ms |`);
}
