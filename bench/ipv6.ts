// IPv6 dual stack, measured inside a throwaway host (npm run bench:ipv6), beside Podman with
// netavark doing the same work (`podman network create --ipv6`). Every figure is a median and
// every verdict a ratio between rows measured in the same interleaved rounds:
//   1. cycle cost: `tsnet run --rm --network DUALSTACK -- true` vs the same on an IPv4-only
//      network (alternating hyperfine sessions; target <= 1.1x); Podman's same pair for context;
//   2. new-connection rate over IPv6 (bench/connrate.py to bench/listen.py -6, one CPU) through
//      the published port, via [::1] and via the host's IPv6 address, vs straight to the
//      container's IPv6 address (target >= 0.95x), tsnet's and Podman's targets in the same rounds;
//   3. iperf3 throughput over IPv6, the same targets (target >= 0.95x).
// A tool that cannot do its part is reported with its error; if tsnet cannot, the script still
// measures Podman, writes the report, and exits 1: a missing feature is never a skipped figure.
// Traffic goes only to addresses inside the throwaway host; every process started is ended by
// PID (bench/run.sh ends what is left if this script dies). Report: bench/results/ipv6.md, every
// measurement in bench/results/ipv6.json (BENCH_OUT=DIR to write elsewhere: not under /tmp or /run,
// which are the throwaway host's and go with it). TSNET=/path/to/tsnet measures another build.
import { mkdirSync, readFileSync, readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { median, run, tryRun } from "./lib/proc.ts";
import { podmanEnv, type PodmanEnv } from "./lib/tools.ts";

const root = resolve(import.meta.dir, "..");
if (process.env.TSNET_THROWAWAY_HOST !== "1" || readlinkSync("/proc/self/ns/net") === process.env.TSNET_OUTER_NETNS) {
  console.error("bench/ipv6.ts makes links, networks, containers and firewall rules: run it inside test/sandbox.sh (npm run bench:ipv6)");
  process.exit(1);
}
const T = realpathSync(process.env.TSNET ?? `${root}/dist/tsnet`);
const work = process.env.BENCH_WORK ?? "/run/bench";
const outDir = process.env.BENCH_OUT ?? `${root}/bench/results`;
const num = (k: string, d: number) => Number(process.env[k] ?? d);
const CYCLE_ROUNDS = num("CYCLE_ROUNDS", 10); // alternating hyperfine sessions ...
const CYCLE_RUNS = num("CYCLE_RUNS", 20); //      ... of this many runs per command
const PODMAN_CYCLE_RUNS = num("PODMAN_CYCLE_RUNS", 5);
const CONN_ROUNDS = num("CONN_ROUNDS", 30); // interleaved rounds over every target ...
const CONNS = num("CONNS", 500); //              ... this many sequential connections each
const CONN_SECONDS = num("CONN_SECONDS", 3);
const IPERF_ROUNDS = num("IPERF_ROUNDS", 5);
const IPERF_SECONDS = num("IPERF_SECONDS", 3);
const PIN_CPU = process.env.PIN_CPU ?? "0";
// The host's IPv6 address on a veth of its own (ULA, only inside the throwaway host).
const HOST6 = "fd00:b6::1";
const raw = `${work}/ipv6`;
mkdirSync(raw, { recursive: true });

const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}x` : "n/a");
const bracket = (a: string) => (a.includes(":") ? `[${a}]` : a);
/** A failed step's own message: for a command run by proc.ts's run(), what it printed, not its argv. */
const errText = (e: unknown) => {
  const m = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
  return (/: (?:exit \d+|killed \([^)]*\)): (.*)$/.exec(m)?.[1] ?? m).slice(0, 300);
};

interface Verdict {
  target: string;
  measured: string;
  met: boolean;
}
const verdicts: Verdict[] = [];
/** Every measurement as taken, written beside the report (the work directory goes with the throwaway host). */
const rawData: Record<string, unknown> = {};
const lines: string[] = [];
const say = (s = "") => {
  lines.push(s);
  console.log(s);
};

/** One server behind published ports, per tool: the IPv6 targets, or why there are none. */
interface Side {
  tool: "tsnet" | "podman";
  label: string;
  version: string;
  error?: string;
  conn: Record<string, string>; // lo6 / host6 / direct6 -> [ADDR]:PORT
  iperf: Record<string, string>;
  unreachable: string[]; // "lo6 ([::1]:18081): nothing answered"
}

/** Opens one TCP connection, retrying for up to `seconds`; the error text of the last try, or "". */
async function reach(target: string, seconds = 10): Promise<string> {
  const i = target.lastIndexOf(":");
  const hostname = target.slice(0, i).replace(/^\[|\]$/g, "");
  const port = Number(target.slice(i + 1));
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      const s = await Promise.race([
        Bun.connect({ hostname, port, socket: { data() {} } }),
        Bun.sleep(2000).then(() => {
          throw new Error("no answer within 2 s");
        }),
      ]);
      s.end();
      return "";
    } catch (e) {
      if (Date.now() > deadline) return errText(e);
      await Bun.sleep(100);
    }
  }
}

// ---- the host's IPv6 address -------------------------------------------------------------------
run(["ip", "link", "add", "b6h", "type", "veth", "peer", "name", "b6p"]);
run(["ip", "-6", "addr", "add", `${HOST6}/64`, "dev", "b6h", "nodad"]);
run(["ip", "link", "set", "b6h", "up"]);
run(["ip", "link", "set", "b6p", "up"]);

let pod: PodmanEnv | undefined;
const sides: Side[] = [];
let failed = false;

try {
  // ---- tsnet -----------------------------------------------------------------------------------
  const ts: Side = {
    tool: "tsnet",
    label: "tsnet",
    version: `${(tryRun([T, "--version"]) ?? "").trim().split("\n")[0]} (${(tryRun(["git", "-C", root, "rev-parse", "--short", "HEAD"]) ?? "").trim()})`,
    conn: {},
    iperf: {},
    unreachable: [],
  };
  sides.push(ts);
  try {
    run([T, "network", "create", "--subnet", "10.96.4.0/24", "bench4"]);
    run([T, "network", "create", "--ipv6", "--subnet", "10.96.6.0/24", "--subnet", "fd00:96:6::/64", "bench6"]);
  } catch (e) {
    ts.error = `a dual-stack network could not be made: ${errText(e)}`;
  }

  // ---- Podman with netavark ------------------------------------------------------------------
  const ctx = { root, tsnet: T, work };
  const env = await podmanEnv(ctx);
  const pm: Side = { tool: "podman", label: "Podman + netavark", version: "", conn: {}, iperf: {}, unreachable: [] };
  sides.push(pm);
  if ("install" in env) {
    pm.error = `${env.why} (to include it: ${env.install})`;
  } else {
    pod = env;
    pm.version = env.version;
    try {
      // One container keeps each bridge up (netavark removes a bridge with its last container),
      // as tsnet's bridges stay.
      run([...env.P, "network", "create", "--disable-dns", "--subnet", "10.96.14.0/24", "podv4"]);
      run([...env.P, "network", "create", "--disable-dns", "--ipv6", "--subnet", "10.96.16.0/24", "--subnet", "fd00:96:16::/64", "podv6"]);
      for (const n of ["podv4", "podv6"]) run([...env.P, "run", "-d", "--name", `keep-${n}`, "--network", n, "--rootfs", env.rootfs, "sleep", "inf"]);
    } catch (e) {
      pm.error = `its networks could not be made: ${errText(e)}`;
    }
  }

  // ---- 1. cycle cost ---------------------------------------------------------------------------
  say(`# IPv6 dual stack (\`npm run bench:ipv6\`)`);
  say();
  say(`Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${(tryRun(["nproc"]) ?? "?").trim()} CPUs, Linux ${(tryRun(["uname", "-r"]) ?? "?").trim()}; load average at the start ${loadavg()} (the machine's, shared with whatever else runs: ratios hold up under load, milliseconds do not).`);
  say();
  for (const s of sides) say(`- ${s.label}: ${s.error ? `**could not be measured: ${s.error}**` : s.version}`);
  say();
  say("## 1. Cycle cost: `run --rm --network DUALSTACK -- true` vs the same on an IPv4-only network");
  say();
  const hyperfineRounds = (cmds: Record<string, string>, rounds: number, runs: number, tag: string): Record<string, number[]> => {
    const names = Object.keys(cmds);
    const per: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? names : [...names].reverse();
      const json = `${raw}/cycle-${tag}-${i}.json`;
      const args = order.flatMap((n) => ["-n", n, cmds[n]!]);
      run(["hyperfine", "-N", "--warmup", "2", "--runs", String(runs), "--export-json", json, ...args], { timeoutMs: 900_000 });
      for (const r of JSON.parse(readFileSync(json, "utf8")).results as { command: string; median: number }[]) per[r.command]!.push(r.median * 1000);
    }
    rawData[`cycle-${tag}`] = { commands: cmds, medianMsPerRound: per };
    return per;
  };
  say("| tool | IPv4-only network, median ms | dual-stack network, median ms | dual / IPv4: median of per-round ratios | rounds x runs |");
  say("|---|---:|---:|---:|---|");
  if (!ts.error) {
    try {
      run([T, "run", "--rm", "--network", "bench4", "--", "true"]);
      run([T, "run", "--rm", "--network", "bench6", "--", "true"]);
      const per = hyperfineRounds({ v4: `${T} run --rm --network bench4 -- true`, dual: `${T} run --rm --network bench6 -- true` }, CYCLE_ROUNDS, CYCLE_RUNS, "tsnet");
      const ratio = median(per.dual!.map((d, i) => d / per.v4![i]!));
      say(`| tsnet | ${median(per.v4!).toFixed(1)} | ${median(per.dual!).toFixed(1)} | ${x(ratio)} | ${CYCLE_ROUNDS} x ${CYCLE_RUNS} |`);
      verdicts.push({ target: "tsnet: a dual-stack `run --rm -- true` costs <= 1.1x the IPv4-only one", measured: x(ratio), met: ratio <= 1.1 });
    } catch (e) {
      say(`| tsnet | **the cycle failed: ${errText(e)}** | | | |`);
      verdicts.push({ target: "tsnet: a dual-stack `run --rm -- true` costs <= 1.1x the IPv4-only one", measured: `failed: ${errText(e)}`, met: false });
    }
  } else {
    say(`| tsnet | **${ts.error}** | | | |`);
  }
  if (pod && !pm.error) {
    try {
      // --rootfs DIR goes right before the command (Podman 4.3 takes what follows as the command).
      const p = `${pod.P.join(" ")} run --rm --network`;
      const per = hyperfineRounds({ v4: `${p} podv4 --rootfs ${pod.rootfs} true`, dual: `${p} podv6 --rootfs ${pod.rootfs} true` }, Math.max(2, Math.round(CYCLE_ROUNDS / 2)), PODMAN_CYCLE_RUNS, "podman");
      const ratio = median(per.dual!.map((d, i) => d / per.v4![i]!));
      say(`| Podman + netavark (bridges kept up) | ${median(per.v4!).toFixed(1)} | ${median(per.dual!).toFixed(1)} | ${x(ratio)} | ${Math.max(2, Math.round(CYCLE_ROUNDS / 2))} x ${PODMAN_CYCLE_RUNS} |`);
    } catch (e) {
      say(`| Podman + netavark | **the cycle failed: ${errText(e)}** | | | |`);
    }
  } else {
    say(`| Podman + netavark | **${pm.error}** | | | |`);
  }

  // ---- the servers -----------------------------------------------------------------------------
  const serve = `${root}/bench/serve.sh`;
  if (!ts.error) {
    try {
      run([T, "run", "-d", "--rm", "--name", "b6srv", "--network", "bench6", "-p", "18080:80", "-p", "15201:5201", "--", "bash", serve, "-6"], { env: { ...process.env, PIN_CPU } });
      const [eth0] = JSON.parse(run(["ip", "-n", "tsnet-b6srv", "-j", "-6", "addr", "show", "dev", "eth0", "scope", "global"]) || "[]");
      const addr = eth0?.addr_info?.[0]?.local as string | undefined;
      if (!addr) throw new Error("the server container has no global IPv6 address on eth0 (ip -6 addr)");
      ts.conn = { lo6: "[::1]:18080", host6: `[${HOST6}]:18080`, direct6: `${bracket(addr)}:80` };
      ts.iperf = { lo6: "[::1]:15201", host6: `[${HOST6}]:15201`, direct6: `${bracket(addr)}:5201` };
    } catch (e) {
      ts.error = `the server could not be started: ${errText(e)}`;
    }
  }
  if (pod && !pm.error) {
    try {
      run([...pod.P, "run", "-d", "--name", "b6srv", "--network", "podv6", "-e", `PIN_CPU=${PIN_CPU}`, "-p", "18081:80", "-p", "15202:5201", "--rootfs", pod.rootfs, "bash", serve, "-6"]);
      const addr = run([...pod.P, "inspect", "b6srv", "--format", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}"]).trim();
      if (!addr) throw new Error("podman inspect shows no GlobalIPv6Address for the server");
      pm.conn = { lo6: "[::1]:18081", host6: `[${HOST6}]:18081`, direct6: `${bracket(addr)}:80` };
      pm.iperf = { lo6: "[::1]:15202", host6: `[${HOST6}]:15202`, direct6: `${bracket(addr)}:5201` };
    } catch (e) {
      pm.error = `the server could not be started: ${errText(e)}`;
    }
  }
  // Every target must answer before it is measured; one that does not is reported, not measured.
  for (const s of sides) {
    for (const kind of ["conn", "iperf"] as const) {
      for (const [k, target] of Object.entries(s[kind])) {
        const why = await reach(target, k === "direct6" ? 15 : 5);
        if (why) {
          s.unreachable.push(`${kind === "conn" ? "listen.py" : "iperf3"} via ${k} (${target}): ${why}`);
          delete s[kind][k];
        }
      }
    }
  }

  const labels: Record<string, string> = { lo6: "published port via [::1]", host6: `published port via the host's IPv6 address (${HOST6})`, direct6: "the container's IPv6 address (no NAT)" };
  /** Median over rounds of published/direct, each round's pair measured back to back. */
  const paired = (pub: number[] | undefined, direct: number[] | undefined) =>
    pub && direct ? median(pub.map((v, i) => v / direct[i]!).filter((r) => Number.isFinite(r))) : Number.NaN;

  // ---- 2. connection rate ------------------------------------------------------------------------
  say();
  say("## 2. New connections per second over IPv6: through the published port vs straight to the container");
  say();
  const connTargets = sides.flatMap((s) => Object.entries(s.conn).map(([k, t]) => `${s.tool}-${k}=${t}`));
  let rates: Record<string, number[]> = {};
  if (connTargets.length) {
    rates = JSON.parse(run(["taskset", "-c", PIN_CPU, "python3", `${root}/bench/connrate.py`, String(CONN_ROUNDS), String(CONNS), String(CONN_SECONDS), ...connTargets], { timeoutMs: 3_600_000 }));
    rawData.connrate = { targets: connTargets, perRound: rates };
    say(`${CONNS} sequential connections (connect, read EOF, close) per measurement, at most ${CONN_SECONDS} s; ${CONN_ROUNDS} interleaved rounds, every target of both tools once per round; client and servers on CPU ${PIN_CPU}.`);
    say();
  }
  // Each tool's targets as ratios to its direct target, paired round by round; tsnet's are verdicts.
  const table = (values: Record<string, number[]>, column: string, what: string, cell: (r: number[]) => string) => {
    say(`| tool | target | ${column} | x direct: median of per-round ratios |`);
    say("|---|---|---:|---:|");
    for (const s of sides) {
      if (s.error) {
        say(`| ${s.label} | **${s.error}** | | |`);
        continue;
      }
      for (const k of ["lo6", "host6", "direct6"]) {
        const r = values[`${s.tool}-${k}`];
        if (!r) continue;
        const ratio = k === "direct6" ? 1 : paired(r, values[`${s.tool}-direct6`]);
        say(`| ${s.label} | ${labels[k]} | ${cell(r)} | ${x(ratio)} |`);
        if (s.tool === "tsnet" && k !== "direct6") verdicts.push({ target: `tsnet: ${what} ${labels[k]} >= 0.95x direct`, measured: x(ratio), met: ratio >= 0.95 });
      }
    }
  };
  table(rates, "median connections/s", "connections/s", (r) => median(r).toFixed(0));

  // ---- 3. throughput -------------------------------------------------------------------------------
  say();
  say(`## 3. Throughput over IPv6 (iperf3, one TCP stream, ${IPERF_SECONDS} s per run): through the published port vs straight to the container`);
  say();
  const iperfTargets = sides.flatMap((s) => Object.entries(s.iperf).map(([k, t]) => ({ label: `${s.tool}-${k}`, target: t })));
  const bps: Record<string, number[]> = Object.fromEntries(iperfTargets.map((t) => [t.label, []]));
  const iperfFailures: string[] = [];
  for (let r = 0; r < IPERF_ROUNDS && iperfTargets.length; r++) {
    for (let i = 0; i < iperfTargets.length; i++) {
      const { label, target } = iperfTargets[(r + i) % iperfTargets.length]!;
      const j = target.lastIndexOf(":");
      const out = tryRun(["iperf3", "-c", target.slice(0, j).replace(/^\[|\]$/g, ""), "-p", target.slice(j + 1), "-t", String(IPERF_SECONDS), "--connect-timeout", "2000", "-J"], {
        timeoutMs: (IPERF_SECONDS + 10) * 1000,
      });
      let v: unknown;
      try {
        v = out ? JSON.parse(out)?.end?.sum_received?.bits_per_second : undefined;
      } catch {
        v = undefined;
      }
      bps[label]!.push(typeof v === "number" ? v : Number.NaN);
      if (typeof v !== "number") {
        // iperf3 -J prints its error inside the JSON (or nothing at all if it was killed).
        const why = (() => {
          const p = Bun.spawnSync(["iperf3", "-c", target.slice(0, j).replace(/^\[|\]$/g, ""), "-p", target.slice(j + 1), "-t", "1", "--connect-timeout", "2000"], { stdout: "pipe", stderr: "pipe", timeout: 15_000 });
          const all = `${p.stderr}\n${p.stdout}`.split("\n").map((l) => l.trim()).filter(Boolean);
          return all.find((l) => /error/i.test(l)) ?? (p.exitCode === 0 ? "a second run of 1 s succeeded" : all.at(-1) ?? `exit ${p.exitCode}`);
        })();
        iperfFailures.push(`${label} (${target}), round ${r}: ${why}`);
        console.error(`iperf3 to ${target} failed in round ${r}: ${why}`);
      }
      await Bun.sleep(200); // the server takes a moment to be ready for the next test
    }
  }
  rawData.iperf = { targets: iperfTargets, bitsPerSecondPerRound: bps };
  table(bps, "median Gbit/s", "throughput", (r) => {
    const ok = r.filter(Number.isFinite);
    return `${ok.length ? (median(ok) / 1e9).toFixed(2) : "**failed**"}${ok.length < r.length ? ` (${r.length - ok.length} of ${r.length} runs failed)` : ""}`;
  });

  if (iperfFailures.length) {
    say();
    say("iperf3 runs that failed (counted as no figure):");
    for (const f of iperfFailures) say(`- ${f}`);
  }

  // ---- verdicts ----------------------------------------------------------------------------------
  const unreachable = sides.flatMap((s) => s.unreachable.map((u) => `${s.label}: ${u}`));
  if (unreachable.length) {
    say();
    say("Targets that did not answer (not measured):");
    for (const u of unreachable) say(`- ${u}`);
  }
  // A tsnet target that does not answer is a target not met, not a row left out.
  for (const u of ts.unreachable) verdicts.push({ target: `tsnet: ${u.split(":")[0]} answers`, measured: "no answer", met: false });
  if (ts.error) verdicts.push({ target: "tsnet runs the IPv6 benchmark", measured: ts.error, met: false });
  say();
  say(`Load average at the end: ${loadavg()}.`);
  say();
  say("## Targets");
  say();
  say("| target | measured | verdict |");
  say("|---|---:|---|");
  for (const v of verdicts) say(`| ${v.target} | ${v.measured} | ${v.met ? "MET" : "**NOT MET**"} |`);
  say();
  say("(every measurement: bench/results/ipv6.json)");
  failed = Boolean(ts.error) || ts.unreachable.length > 0 || verdicts.some((v) => v.target.startsWith("tsnet") && v.measured.startsWith("failed"));
} finally {
  tryRun([T, "rm", "-f", "b6srv"]);
  for (const n of ["bench4", "bench6"]) tryRun([T, "network", "rm", n]);
  if (pod) {
    tryRun([...pod.P, "rm", "-a", "-f", "-t", "0"], { timeoutMs: 300_000 });
    for (const n of ["podv4", "podv6"]) tryRun([...pod.P, "network", "rm", "-f", n]);
    await pod.endHolder();
  }
  tryRun(["ip", "link", "del", "b6h"]);
}

mkdirSync(outDir, { recursive: true });
writeFileSync(`${outDir}/ipv6.md`, `${lines.join("\n")}\n`);
writeFileSync(`${outDir}/ipv6.json`, `${JSON.stringify({ ...rawData, sides: sides.map(({ tool, version, error, unreachable }) => ({ tool, version, error, unreachable })) }, null, 1)}\n`);
console.error(`bench/ipv6.ts: report written to ${outDir}/ipv6.md`);
if (failed) {
  console.error("bench/ipv6.ts: FAILED: tsnet could not do its part of the IPv6 benchmark (see the report); Podman's figures were measured");
  process.exit(1);
}
