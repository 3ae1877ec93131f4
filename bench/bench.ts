// The side-by-side benchmark (npm run bench), run inside a throwaway host by bench/run.sh.
// Every tool does the same work, measured in interleaved rounds (every row once per round, the
// order rotated each round), so a change in the machine's load hits all rows alike; figures are
// medians. Sections:
//   cycle    `run --rm ... true` on a bridge, with and without -p 8080:80, every tool; start-up
//   growth   each tool's -p cycle while 0, 100, 500 ... of its own containers run, one tool after
//            the other, interleaved with `unshare -n true` as the machine's drift reference;
//            memory per running container
//   traffic  connection rate and iperf3 throughput through each tool's published port and
//            straight to the container
// Writes bench/results/raw.json (BENCH_OUT=DIR elsewhere), then bench/render.ts makes the tables
// and charts. Knobs: BENCH_ROUNDS, BENCH_LEVEL_ROUNDS, BENCH_CONN_ROUNDS, BENCH_IPERF_ROUNDS,
// BENCH_IPERF_SECONDS, BENCH_<TSNET|HAND|CNI|PODMAN|DOCKER>_LEVELS=0,100,..., BENCH_SECTIONS=cycle,growth,traffic,
// BENCH_SKIP=podman,cni,docker,..., BENCH_QUICK=1 (a few rounds and small levels, for development).
import { cpus, release, totalmem } from "node:os";
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { Interrupted, run, timeMs, tryRun, type Memory } from "./lib/proc.ts";
import { discover, waitPort, type Ctx, type Missing, type Row, type RowInfo, type Tool } from "./lib/tools.ts";

const quick = process.env.BENCH_QUICK === "1";
const num = (name: string, dflt: number, quickValue: number) => Number(process.env[name] ?? (quick ? quickValue : dflt));
if (quick) {
  for (const k of ["TSNET", "HAND", "CNI", "PODMAN", "DOCKER"]) process.env[`BENCH_${k}_LEVELS`] ??= "0,20";
}
const config = {
  rounds: num("BENCH_ROUNDS", 30, 3),
  levelRounds: num("BENCH_LEVEL_ROUNDS", 15, 3),
  connRounds: num("BENCH_CONN_ROUNDS", 15, 2),
  connCount: num("BENCH_CONN_COUNT", 500, 200),
  iperfRounds: num("BENCH_IPERF_ROUNDS", 3, 1),
  iperfSeconds: num("BENCH_IPERF_SECONDS", 2, 1),
  sections: (process.env.BENCH_SECTIONS ?? "cycle,growth,traffic").split(","),
  skip: new Set((process.env.BENCH_SKIP ?? "").split(",").filter(Boolean)),
};

const root = realpathSync(`${import.meta.dir}/..`);
const outDir = process.env.BENCH_OUT ?? `${root}/bench/results`;
const ctx: Ctx = { root, tsnet: realpathSync(process.env.TSNET ?? `${root}/dist/tsnet`), work: process.env.BENCH_WORK ?? "/run/bench" };
const say = (s: string) => console.error(`bench: ${s}`);
const started = Date.now();

const info = (r: Row): RowInfo => ({ id: r.id, tool: r.tool, label: r.label, publish: r.publish, group: r.group });

/**
 * Interleaved rounds over rows: one untimed warm-up round, then ROUNDS rounds in which every row
 * runs once, the starting row rotated each round. A row that fails 3 times is dropped.
 */
function rounds(rows: Row[], n: number, tag: string): { samples: Record<string, number[]>; failures: Record<string, string[]> } {
  const samples: Record<string, number[]> = Object.fromEntries(rows.map((r) => [r.id, []]));
  const failures: Record<string, string[]> = {};
  const live = [...rows];
  const attempt = (r: Row, keep: boolean) => {
    try {
      const ms = timeMs(() => r.cycle());
      if (keep) samples[r.id]!.push(ms);
    } catch (e) {
      if (e instanceof Interrupted) throw e;
      (failures[r.id] ??= []).push((e as Error).message);
      say(`${tag}: ${r.label} failed: ${(e as Error).message}`);
      if (failures[r.id]!.length >= 3) {
        live.splice(live.indexOf(r), 1);
        say(`${tag}: dropping ${r.label} after 3 failures`);
      }
    }
  };
  for (const r of [...live]) attempt(r, false);
  let lastReport = Date.now();
  for (let k = 0; k < n && live.length; k++) {
    const order = [...live.slice(k % live.length), ...live.slice(0, k % live.length)];
    for (const r of order) if (live.includes(r)) attempt(r, true);
    if (Date.now() - lastReport > 15_000) {
      say(`${tag}: round ${k + 1}/${n}`);
      lastReport = Date.now();
    }
  }
  return { samples, failures };
}

// ---- the machine -------------------------------------------------------------------------------

function machine(tools: Tool[]): Record<string, unknown> {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const os = /^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "?";
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "?",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os: `${os} (Debian ${tryRun(["cat", "/etc/debian_version"])?.trim() ?? "?"})`,
    versions: Object.fromEntries(tools.map((t) => [t.id, t.version])),
    tools: {
      iperf3: tryRun(["iperf3", "--version"])?.split("\n")[0]?.trim(),
      python3: tryRun(["python3", "--version"])?.trim(),
    },
  };
}

// ---- sections ----------------------------------------------------------------------------------

const result: Record<string, unknown> = { config: { ...config, skip: [...config.skip] } };

function save(): void {
  result.durationSeconds = Math.round((Date.now() - started) / 1000);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(`${outDir}/raw.json`, `${JSON.stringify(result, null, 1)}\n`);
}

function cycleSection(tools: Tool[]): void {
  const rows = tools.flatMap((t) => t.rows);
  say(`cycle: ${rows.length} rows, ${config.rounds} interleaved rounds`);
  const { samples, failures } = rounds(rows, config.rounds, "cycle");
  result.cycle = { rows: rows.map(info), samples, failures };
  save();
}

interface Level {
  level: number;
  samples: Record<string, number[]>;
  failures: Record<string, string[]>;
  memory?: Memory & { what: string };
  buildSeconds: number;
}

async function growthSection(tools: Tool[]): Promise<void> {
  const floorRow = tools.find((t) => t.id === "floor")!.rows[0]!;
  const phases: unknown[] = [];
  result.growth = phases;
  for (const t of tools) {
    const pop = t.population;
    if (!pop) continue;
    const levels: Level[] = [];
    const phase = {
      tool: t.id,
      what: pop.what,
      why: pop.why,
      rows: [...pop.rows, floorRow].map(info),
      levels,
      error: undefined as string | undefined,
      after: undefined as ReturnType<typeof rounds> | undefined,
    };
    phases.push(phase);
    try {
      for (const level of pop.levels) {
        const t0 = Date.now();
        say(`growth: ${t.id}: starting ${level - pop.size()} more containers (to ${level})`);
        await pop.grow(level);
        const buildSeconds = (Date.now() - t0) / 1000;
        say(`growth: ${t.id} at ${level} running containers (${buildSeconds.toFixed(0)} s to get there)`);
        const m = level > 0 && pop.memory ? pop.memory() : undefined;
        const { samples, failures } = rounds([...pop.rows, floorRow], config.levelRounds, `growth ${t.id}@${level}`);
        levels.push({ level, samples, failures, memory: m, buildSeconds });
        save();
      }
    } catch (e) {
      if (e instanceof Interrupted) throw e;
      phase.error = (e as Error).message;
      say(`growth: ${t.id} stopped: ${phase.error}`);
    } finally {
      const t0 = Date.now();
      await pop.clear();
      say(`growth: ${t.id}: its containers removed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    // None running again: how far the machine drifted over the phase.
    if (levels.length > 1) phase.after = rounds([...pop.rows, floorRow], config.levelRounds, `growth ${t.id}, none again`);
    save();
  }
}

async function trafficSection(tools: Tool[]): Promise<void> {
  const servers: { tool: string; stop: () => Promise<void> }[] = [];
  const conn: string[] = [];
  const iperf: [string, string][] = [];
  const errors: Record<string, string> = {};
  try {
    for (const t of tools) {
      if (!t.server) continue;
      try {
        const s = await t.server();
        servers.push({ tool: t.id, stop: s.stop });
        for (const target of [s.published.conn, s.direct.conn, s.published.iperf, s.direct.iperf]) await waitPort(target);
        conn.push(`${t.id}/published=${s.published.conn}`, `${t.id}/direct=${s.direct.conn}`);
        iperf.push([`${t.id}/published`, s.published.iperf], [`${t.id}/direct`, s.direct.iperf]);
      } catch (e) {
        if (e instanceof Interrupted) throw e;
        errors[t.id] = (e as Error).message;
        say(`traffic: ${t.id}: ${errors[t.id]}`);
      }
    }
    say(`traffic: connection rate, ${config.connRounds} interleaved rounds of ${config.connCount} connections to ${conn.length} targets`);
    // Client and servers share one CPU: on this 2-vCPU VM a client and server left to the
    // scheduler flip between sharing a CPU and not, a 2x swing that has nothing to do with NAT.
    const connOut = run(["taskset", "-c", process.env.PIN_CPU ?? "0", "python3", `${root}/bench/connrate.py`, String(config.connRounds), String(config.connCount), "3", ...conn], {
      timeoutMs: 1_800_000,
    });
    say(`traffic: iperf3, ${config.iperfRounds} interleaved rounds of ${config.iperfSeconds} s to ${iperf.length} targets`);
    const gbits: Record<string, number[]> = Object.fromEntries(iperf.map(([l]) => [l, []]));
    for (let r = 0; r < config.iperfRounds; r++) {
      const order = [...iperf.slice(r % iperf.length), ...iperf.slice(0, r % iperf.length)];
      for (const [label, target] of order) {
        const [host, port] = [target.slice(0, target.lastIndexOf(":")), target.slice(target.lastIndexOf(":") + 1)];
        const out = tryRun(["iperf3", "-c", host, "-p", port, "-t", String(config.iperfSeconds), "-J", "--connect-timeout", "2000"], {
          timeoutMs: (config.iperfSeconds + 15) * 1000,
        });
        if (out) gbits[label]!.push((JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9);
        else (errors[label] ??= `iperf3 to ${target} failed`), say(`traffic: iperf3 to ${target} failed`);
        await Bun.sleep(200); // iperf3's server takes a moment to accept the next test
      }
    }
    result.traffic = { connPerSecond: JSON.parse(connOut), gbits, errors, connCount: config.connCount, connRounds: config.connRounds, iperfRounds: config.iperfRounds, iperfSeconds: config.iperfSeconds };
  } finally {
    for (const s of servers) await s.stop().catch((e) => say(`traffic: stopping ${s.tool}'s server: ${(e as Error).message}`));
    save();
  }
}

// ---- main --------------------------------------------------------------------------------------

let tools: Tool[] = [];
let cleaning = false;
async function cleanup(): Promise<void> {
  if (cleaning) return;
  cleaning = true;
  for (const t of [...tools].reverse()) {
    try {
      await t.teardown();
    } catch (e) {
      say(`clean-up of ${t.id}: ${(e as Error).message}`);
    }
  }
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    say(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

try {
  mkdirSync(ctx.work, { recursive: true });
  let missing: Missing[];
  ({ tools, missing } = await discover(ctx, config.skip));
  result.missing = missing;
  result.machine = machine(tools);
  result.started = new Date(started).toISOString();
  say(`measuring: ${tools.map((t) => t.id).join(", ")}`);
  for (const m of missing) say(`missing ${m.name}: ${m.why}. Install: ${m.install}`);
  save();
  if (config.sections.includes("cycle")) cycleSection(tools);
  if (config.sections.includes("growth")) await growthSection(tools);
  if (config.sections.includes("traffic")) await trafficSection(tools);
} finally {
  await cleanup();
  save();
  say(`done in ${Math.round((Date.now() - started) / 1000)} s; raw figures in ${outDir}/raw.json`);
}
