// Tables and verdicts for bench/publish.sh. Every figure is a median, and every verdict a ratio
// against a reference measured in the same script run.
//
//   bun bench/publish-report.ts ports -            HOST_PORT CONTAINER_IP:PORT of every published port
//   bun bench/publish-report.ts cost OUT           section 1: -p 8080:80 vs no -p (hyperfine)
//   bun bench/publish-report.ts constant OUT       section 2: none published vs 1,000 (rounds)
//   bun bench/publish-report.ts connrate OUT       section 3: first vs last port, tsnet vs linear
//   bun bench/publish-report.ts iperf OUT          section 4: throughput vs direct (iperf3 -J files)
//   bun bench/publish-report.ts summary OUT        every target, MET / NOT MET
//
// Sections append their verdicts to OUT/verdicts.jsonl; summary prints them.
import { appendFileSync, existsSync, readdirSync, readFileSync } from "node:fs";

interface Verdict {
  target: string;
  measured: string;
  met: boolean;
}

const [cmd, arg] = process.argv.slice(2);
if (!cmd || !arg) throw new Error("usage: bun bench/publish-report.ts ports|cost|constant|connrate|iperf|summary ARG");
const out: string = arg;

const median = (xs: number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const json = (file: string): any => JSON.parse(readFileSync(file, "utf8"));
const verdict = (v: Verdict) => appendFileSync(`${out}/verdicts.jsonl`, `${JSON.stringify(v)}\n`);
const x = (r: number) => `${r.toFixed(2)}x`;
const ms = (s: number) => (s * 1000).toFixed(1);

interface HyperfineResult {
  command: string;
  times: number[];
}
const hyperfine = (file: string): HyperfineResult[] => json(file).results;

/** "HOST_PORT CONTAINER_IP:CONTAINER_PORT" for every published port, from tsnet's records. */
function ports(): void {
  const dir = "/run/tsnet/containers";
  for (const f of readdirSync(dir)) {
    const rec = json(`${dir}/${f}`);
    if (!rec.endpoint || !rec.ports) continue;
    const a = rec.endpoint.address >>> 0;
    const ip = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join(".");
    for (const p of rec.ports) console.log(`${p.hostPort} ${ip}:${p.containerPort}`);
  }
}

function cost(): void {
  const [plain, published] = hyperfine(`${out}/cost.json`);
  if (!plain || !published) throw new Error("cost.json needs two commands");
  const ratio = median(published.times) / median(plain.times);
  console.log("| command | median ms | min ms | x no -p |");
  console.log("|---|---:|---:|---:|");
  for (const r of [plain, published]) {
    console.log(`| \`${r.command}\` | ${ms(median(r.times))} | ${ms(Math.min(...r.times))} | ${x(median(r.times) / median(plain.times))} |`);
  }
  verdict({ target: "publishing one port costs within 1.1x of a run without -p", measured: x(ratio), met: ratio <= 1.1 });
}

function constant(): void {
  // OUT/constant-<round>-<none|1000>.json: one hyperfine session per state per round, the states
  // alternating; OUT/conn2-<round>-<none|1000>.json: connection rates measured right after each.
  // Verdicts take the median of per-round ratios: the two states of a round are seconds apart,
  // so what drifts on the machine over a minute cancels.
  const files = readdirSync(out).filter((f) => /^constant-\d+-(none|1000)\.json$/.test(f)).sort();
  const pooled = new Map<string, number[]>(); // "<command>|<state>" -> times
  const perRound = new Map<string, { none?: number; k?: number }[]>();
  const commands: string[] = [];
  for (const f of files) {
    const [, round, state] = /^constant-(\d+)-(none|1000)\.json$/.exec(f)!;
    for (const r of hyperfine(`${out}/${f}`)) {
      if (!commands.includes(r.command)) commands.push(r.command);
      const key = `${r.command}|${state}`;
      pooled.set(key, [...(pooled.get(key) ?? []), ...r.times]);
      const rounds = perRound.get(r.command) ?? [];
      const slot = (rounds[Number(round)] ??= {});
      if (state === "none") slot.none = median(r.times);
      else slot.k = median(r.times);
      perRound.set(r.command, rounds);
    }
  }
  const info = existsSync(`${out}/big.json`) ? json(`${out}/big.json`) : { how: "?" };
  console.log(`1,000 ports published by: ${info.how}\n`);
  console.log("| command | none published: median ms (runs) | 1,000 published: median ms (runs) | ratio of pooled medians | median of per-round ratios | per-round ratios |");
  console.log("|---|---:|---:|---:|---:|---|");
  for (const c of commands) {
    const none = pooled.get(`${c}|none`) ?? [];
    const k = pooled.get(`${c}|1000`) ?? [];
    const rounds = (perRound.get(c) ?? []).filter((r) => r?.none && r.k).map((r) => r.k! / r.none!);
    const paired = median(rounds);
    console.log(
      `| \`${c}\` | ${ms(median(none))} (${none.length}) | ${ms(median(k))} (${k.length}) | ${x(median(k) / median(none))} | ${x(paired)} | ${rounds.map((r) => r.toFixed(2)).join(", ")} |`,
    );
    if (c.includes("-p 8080:80")) {
      verdict({ target: "with 1,000 ports published by other containers, the same run costs within 1.2x", measured: x(paired), met: paired <= 1.2 });
    }
  }
  const rate = (round: string, state: string, key: string): number[] => {
    const f = `${out}/conn2-${round}-${state}.json`;
    return existsSync(f) ? ((json(f) as Record<string, number[]>)[key] ?? []) : [];
  };
  const rounds = [...new Set(files.map((f) => /^constant-(\d+)-/.exec(f)![1]!))];
  const single = rounds.flatMap((r) => rate(r, "none", "single"));
  const singleWith1000 = rounds.flatMap((r) => rate(r, "1000", "single"));
  const last = rounds.flatMap((r) => rate(r, "1000", "last"));
  const pairedBy = (key: string) => median(rounds.map((r) => median(rate(r, "1000", key)) / median(rate(r, "none", "single"))).filter((v) => !Number.isNaN(v)));
  if (single.length && last.length) {
    const r = pairedBy("last");
    console.log("\n| connection rate, via 127.0.0.1 | median connections/s (measurements) | x single port alone: pooled | median of per-round ratios |");
    console.log("|---|---:|---:|---:|");
    console.log(`| a single published port (127.0.0.1:19999), none other published | ${median(single).toFixed(0)} (${single.length}) | 1.00x | 1.00x |`);
    console.log(`| the same port, while 1,000 more are published | ${median(singleWith1000).toFixed(0)} (${singleWith1000.length}) | ${x(median(singleWith1000) / median(single))} | ${x(pairedBy("single"))} |`);
    console.log(`| the 1,000th of 1,000 published ports (127.0.0.1:20999) | ${median(last).toFixed(0)} (${last.length}) | ${x(median(last) / median(single))} | ${x(r)} |`);
    verdict({ target: "connection rate to the last of 1,000 published ports equals a single published port's (>= 0.95x)", measured: x(r), met: r >= 0.95 });
  }
  verdict({
    target: "one container publishes 1,000 ports (-p 20000-20999:20000-20999)",
    measured: info.single ? "yes" : `no: ${info.error ?? "?"}`,
    met: info.single === true,
  });
}

function connrate(): void {
  const rates: Record<string, number[]> = json(`${out}/connrate.json`);
  const med = (k: string) => median(rates[k] ?? []);
  const direct = med("direct");
  const labels: Record<string, string> = {
    "tsnet-first-lo": "tsnet, 1st port (127.0.0.1:20000)",
    "tsnet-last-lo": "tsnet, 1,000th port (127.0.0.1:20999)",
    "tsnet-first-host": "tsnet, 1st port (192.0.2.1:20000)",
    "tsnet-last-host": "tsnet, 1,000th port (192.0.2.1:20999)",
    "linear-first-lo": "linear chain, 1st rule (127.0.0.1:30000)",
    "linear-last-lo": "linear chain, 1,000th rule (127.0.0.1:30999)",
    "linear-first-host": "linear chain, 1st rule (192.0.2.1:30000)",
    "linear-last-host": "linear chain, 1,000th rule (192.0.2.1:30999)",
    direct: "direct to the container (no NAT)",
  };
  console.log("| target | median connections/s | rounds | x direct |");
  console.log("|---|---:|---:|---:|");
  for (const [k, label] of Object.entries(labels)) {
    if (!rates[k]) continue;
    console.log(`| ${label} | ${med(k).toFixed(0)} | ${rates[k]!.length} | ${x(med(k) / direct)} |`);
  }
  // Paired: first and last are measured next to each other in every round, so the median of
  // the per-round ratios cancels what drifts between rounds.
  console.log("\n| path | last / first port: median of per-round ratios | ratio of medians | per-round ratios, 10th-90th percentile |");
  console.log("|---|---:|---:|---|");
  const pairs: [string, string][] = [
    ["tsnet via 127.0.0.1", "tsnet-%-lo"],
    ["tsnet via host address", "tsnet-%-host"],
    ["linear chain via 127.0.0.1", "linear-%-lo"],
    ["linear chain via host address", "linear-%-host"],
  ];
  for (const [label, pat] of pairs) {
    const first = rates[pat.replace("%", "first")] ?? [];
    const last = rates[pat.replace("%", "last")] ?? [];
    const perRound = first.map((f, i) => last[i]! / f).sort((a, b) => a - b);
    const pct = (q: number) => perRound[Math.min(perRound.length - 1, Math.floor(q * perRound.length))]!.toFixed(2);
    const r = median(perRound);
    console.log(`| ${label} | ${x(r)} | ${x(median(last) / median(first))} | ${pct(0.1)}-${pct(0.9)} |`);
    if (label.startsWith("tsnet")) {
      verdict({ target: `connection rate to the 1,000th published port equals the 1st (${label.slice(6)}; >= 0.95x)`, measured: x(r), met: r >= 0.95 });
    }
  }
}

function iperf(): void {
  // OUT/iperf-<round>-<lo|host|direct>.json, iperf3 -J output, one client run each. Verdicts take
  // the median of per-round ratios (the three targets of a round run back to back).
  const bps: Record<string, Record<string, number>> = {}; // target -> round -> bits/s
  for (const f of readdirSync(out).sort()) {
    const m = /^iperf-(\d+)-(lo|host|direct)\.json$/.exec(f);
    if (!m) continue;
    let v: unknown;
    try {
      v = json(`${out}/${f}`)?.end?.sum_received?.bits_per_second;
    } catch {
      continue; // a failed run (reported by publish.sh) left no JSON
    }
    if (typeof v === "number") (bps[m[2]!] ??= {})[m[1]!] = v;
  }
  const all = (k: string) => Object.values(bps[k] ?? {});
  const paired = (k: string) => {
    const d = bps.direct ?? {};
    return median(Object.entries(bps[k] ?? {}).filter(([r]) => d[r]).map(([r, v]) => v / d[r]!));
  };
  const direct = median(all("direct"));
  const labels: Record<string, string> = {
    lo: "published port via 127.0.0.1:5201",
    host: "published port via host address 192.0.2.1:5201",
    direct: "container address directly (no NAT)",
  };
  console.log("| target | median Gbit/s | rounds | x direct: ratio of medians | median of per-round ratios |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [k, label] of Object.entries(labels)) {
    const v = median(all(k));
    console.log(`| ${label} | ${(v / 1e9).toFixed(2)} | ${all(k).length} | ${x(v / direct)} | ${x(k === "direct" ? 1 : paired(k))} |`);
  }
  for (const k of ["lo", "host"]) {
    const r = paired(k);
    verdict({ target: `throughput through the published port (${k === "lo" ? "127.0.0.1" : "host address"}) >= 0.9x direct`, measured: x(r), met: r >= 0.9 });
  }
}

function summary(): void {
  const file = `${out}/verdicts.jsonl`;
  const all: Verdict[] = existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
  console.log("| target | measured | verdict |");
  console.log("|---|---:|---|");
  for (const v of all) console.log(`| ${v.target} | ${v.measured} | ${v.met ? "MET" : "**NOT MET**"} |`);
}

const commands: Record<string, (arg: string) => void> = { ports, cost, constant, connrate, iperf, summary };
const fn = commands[cmd];
if (!fn) throw new Error(`unknown report ${cmd}`);
fn(out);
