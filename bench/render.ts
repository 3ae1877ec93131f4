// Turns bench/results/raw.json (written by bench/bench.ts) into the report: results.md (tables
// of medians with ratios to tsnet, the machine, the peers missing) and two charts drawn as plain
// SVG text: cycle.svg (cycle time per tool, bars) and growth.svg (cost against running
// containers, one line per tool). With bench/results/README.md markers `<!-- bench:begin -->` and
// `<!-- bench:end -->`, the same report replaces what is between them.
//
//   bun bench/render.ts [DIR]        DIR holds raw.json (default bench/results; only that one
//                                    updates the README, or any with BENCH_README=1)
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { median } from "./lib/proc.ts";
import type { RowInfo } from "./lib/tools.ts";

interface Mem {
  processes: number;
  rssKiB: number;
  pssKiB: number;
  privateKiB: number;
  anonKiB: number;
  what: string;
}
interface Level {
  level: number;
  samples: Record<string, number[]>;
  failures: Record<string, string[]>;
  memory?: Mem;
  buildSeconds: number;
}
interface Phase {
  tool: string;
  what: string;
  why: string;
  rows: RowInfo[];
  levels: Level[];
  error?: string;
  /** None running again, after the phase removed its containers. */
  after?: { samples: Record<string, number[]> };
}
interface Raw {
  config: { rounds: number; levelRounds: number };
  started: string;
  durationSeconds: number;
  machine: { cpu: string; cores: number; memoryGiB: number; kernel: string; os: string; versions: Record<string, string>; tools: Record<string, string> };
  missing: { id: string; name: string; why: string; install: string }[];
  cycle?: { rows: RowInfo[]; samples: Record<string, number[]>; failures: Record<string, string[]> };
  growth?: Phase[];
  traffic?: {
    connPerSecond: Record<string, number[]>;
    gbits: Record<string, number[]>;
    errors: Record<string, string>;
    connCount: number;
    connRounds: number;
    iperfRounds: number;
    iperfSeconds: number;
  };
}

const dir = process.argv[2] ?? `${import.meta.dir}/results`;
const raw = JSON.parse(readFileSync(`${dir}/raw.json`, "utf8")) as Raw;

// ---- names, colours, numbers --------------------------------------------------------------------

const TOOL: Record<string, { name: string; short: string; color: string }> = {
  floor: { name: "`unshare -n true` (the floor)", short: "unshare -n true", color: "#8c959f" },
  "hand-netns-del": { name: "by hand: 9 `ip` processes ending in `ip netns del`", short: "by hand (ip netns del)", color: "#2da44e" },
  tsnet: { name: "**tsnet**", short: "tsnet", color: "#0969da" },
  "hand-link-del": { name: "by hand with `ip link del` (9 processes)", short: "by hand (ip link del)", color: "#4ac26b" },
  cni: { name: "CNI reference plugins: bridge + host-local (+ portmap), ADD + exec + DEL", short: "CNI bridge + portmap", color: "#bf8700" },
  podman: { name: "Podman + netavark, bridge kept up by another container", short: "Podman + netavark", color: "#8250df" },
  "podman-made": { name: "Podman + netavark, bridge made and removed each run", short: "Podman (bridge made each run)", color: "#c297ff" },
  docker: { name: "Docker: dockerd + containerd + runc, busybox image, docker-proxy on", short: "Docker", color: "#1f8ec9" },
};
const plain = (s: string) => s.replaceAll("**", "").replaceAll("`", "");
const toolName = (id: string) => TOOL[id]?.name ?? id;
const short = (id: string) => TOOL[id]?.short ?? id;
const color = (id: string) => TOOL[id]?.color ?? "#57606a";
const ms = (x: number) => (Number.isNaN(x) ? "n/a" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const ratio = (x: number) => (Number.isNaN(x) ? "n/a" : `${x.toFixed(2)}x`);
const count = (n: number) => n.toLocaleString("en-US");
const kib = (k: number) => (Number.isNaN(k) ? "n/a" : k >= 1024 ? `${(k / 1024).toFixed(2)} MiB` : `${k.toFixed(0)} kB`);
const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
const med = (xs: number[] | undefined) => median(xs ?? []);

// ---- the cycle -------------------------------------------------------------------------------

interface CycleLine {
  tool: string;
  plain: number;
  published: number;
  plainLabel?: string;
  publishedLabel?: string;
}

function cycleLines(): CycleLine[] {
  const c = raw.cycle;
  if (!c) return [];
  const byTool = new Map<string, CycleLine>();
  for (const r of c.rows.filter((r) => r.group === "cycle")) {
    const line = byTool.get(r.tool) ?? { tool: r.tool, plain: Number.NaN, published: Number.NaN };
    if (r.publish) [line.published, line.publishedLabel] = [med(c.samples[r.id]), r.label];
    else [line.plain, line.plainLabel] = [med(c.samples[r.id]), r.label];
    byTool.set(r.tool, line);
  }
  return [...byTool.values()].sort((a, b) => a.plain - b.plain);
}

function cycleTable(lines: CycleLine[]): string {
  const ts = lines.find((l) => l.tool === "tsnet");
  const out = [
    "| `run --rm ... true`, bridge | ms | x tsnet | with `-p 8080:80`, ms | x tsnet |",
    "|---|---:|---:|---:|---:|",
  ];
  for (const l of lines) {
    const p = Number.isNaN(l.published) ? ["", ""] : [ms(l.published), ratio(l.published / (ts?.published ?? Number.NaN))];
    out.push(`| ${toolName(l.tool)} | ${ms(l.plain)} | ${ratio(l.plain / (ts?.plain ?? Number.NaN))} | ${p[0]} | ${p[1]} |`);
  }
  const c = raw.cycle!;
  const failed = Object.entries(c.failures ?? {});
  const notes = failed.map(([id, errs]) => `- ${c.rows.find((r) => r.id === id)?.label ?? id} failed ${errs.length} time(s): ${errs[0]}`);
  return [...out, "", ...notes].join("\n").trimEnd();
}

function startupTable(): string {
  const c = raw.cycle;
  const rows = c?.rows.filter((r) => r.group === "startup") ?? [];
  if (rows.length < 2) return "";
  const hello = med(c!.samples["bun-hello"]);
  return [
    "| start-up alone | ms | x hello world |",
    "|---|---:|---:|",
    ...rows.map((r) => `| ${r.id === "bun-hello" ? r.label : `\`${r.label}\``} | ${ms(med(c!.samples[r.id]))} | ${ratio(med(c!.samples[r.id]) / hello)} |`),
  ].join("\n");
}

function cycleSvg(lines: CycleLine[]): string {
  const W = 860;
  const labelW = 330;
  const barX = labelW + 10;
  const barMax = W - barX - 150;
  const rowH = 34;
  const top = 58;
  const H = top + lines.length * rowH + 20;
  const max = Math.max(...lines.flatMap((l) => [l.plain, l.published]).filter((x) => !Number.isNaN(x)));
  const ts = lines.find((l) => l.tool === "tsnet");
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="10" y="20" font-size="14" font-weight="600" fill="#1f2328">run --rm ... true on a bridge: median ms, ${raw.config.rounds} interleaved rounds</text>`);
  o.push(`<text x="10" y="38" fill="#57606a">${esc(`${raw.machine.cpu}, ${raw.machine.cores} cores, Linux ${raw.machine.kernel}`)}</text>`);
  o.push(`<rect x="${W - 290}" y="28" width="12" height="10" fill="#57606a"/><text x="${W - 274}" y="37" fill="#1f2328">without -p</text>`);
  o.push(`<rect x="${W - 190}" y="28" width="12" height="10" fill="#57606a" fill-opacity="0.45"/><text x="${W - 174}" y="37" fill="#1f2328">with -p 8080:80</text>`);
  lines.forEach((l, i) => {
    const y = top + i * rowH;
    const name = plain(toolName(l.tool));
    const words = name.length > 48 ? [name.slice(0, name.lastIndexOf(" ", 48)), name.slice(name.lastIndexOf(" ", 48) + 1)] : [name];
    words.forEach((w, k) =>
      o.push(`<text x="${labelW}" y="${y + 12 + k * 13 - (words.length - 1) * 5}" text-anchor="end" fill="#1f2328"${l.tool === "tsnet" ? ' font-weight="700"' : ""}>${esc(w)}</text>`),
    );
    const bar = (v: number, ref: number | undefined, dy: number, opacity: number) => {
      if (Number.isNaN(v)) return;
      const w = Math.max(1, (v / max) * barMax);
      o.push(`<rect x="${barX}" y="${y + dy}" width="${w.toFixed(1)}" height="12" fill="${color(l.tool)}" fill-opacity="${opacity}"/>`);
      const r = ref && !Number.isNaN(ref) ? ` (${ratio(v / ref)} tsnet)` : "";
      o.push(`<text x="${(barX + w + 6).toFixed(1)}" y="${y + dy + 10}" fill="#1f2328">${ms(v)} ms${r}</text>`);
    };
    bar(l.plain, ts?.plain, 0, 1);
    bar(l.published, ts?.published, 14, 0.45);
  });
  o.push("</svg>");
  return o.join("\n");
}

// ---- growth ------------------------------------------------------------------------------------

function growthTable(): string {
  const phases = raw.growth ?? [];
  if (!phases.length) return "";
  const levels = [...new Set(phases.flatMap((p) => p.levels.map((l) => l.level)))].sort((a, b) => a - b);
  const out = [
    `| running containers: | ${levels.map(count).join(" | ")} | largest / at 0 | 0 again, after |`,
    `|---|${levels.map(() => "---:").join("|")}|---:|---:|`,
  ];
  for (const p of phases) {
    for (const r of p.rows) {
      const isFloor = r.tool === "floor";
      const cells = levels.map((lv) => {
        const l = p.levels.find((x) => x.level === lv);
        return l && l.samples[r.id]?.length ? ms(med(l.samples[r.id])) : "";
      });
      const measured = p.levels.filter((l) => l.samples[r.id]?.length);
      const first = measured[0];
      const last = measured.at(-1);
      const grow = first && last && last !== first ? `${ratio(med(last.samples[r.id]) / med(first.samples[r.id]))} (at ${count(last.level)})` : "";
      const name = isFloor ? `&nbsp;&nbsp;reference in the same rounds: \`${r.label}\`` : `${short(p.tool)}: \`${r.label}\``;
      const again = p.after?.samples[r.id]?.length ? ms(med(p.after.samples[r.id])) : "";
      out.push(`| ${name} | ${cells.join(" | ")} | ${grow} | ${again} |`);
    }
  }
  const notes = phases.map((p) => {
    const built = p.levels.filter((l) => l.level > 0).map((l) => `${count(l.level)} in ${l.buildSeconds.toFixed(0)} s`);
    return `- ${short(p.tool)}: one running container is ${p.what}; stops at ${count(p.levels.at(-1)?.level ?? 0)}: ${p.why}.${built.length ? ` Reached ${built.join(", ")}.` : ""}${p.error ? ` **Stopped early: ${p.error}**` : ""}`;
  });
  return [...out, "", ...notes].join("\n");
}

function growthSvg(): string {
  const phases = (raw.growth ?? []).filter((p) => p.levels.length);
  const levels = [...new Set(phases.flatMap((p) => p.levels.map((l) => l.level)))].sort((a, b) => a - b);
  const W = 860;
  const H = 440;
  const [x0, x1, y0, y1] = [70, 560, 60, 390];
  const series = phases.map((p) => {
    const r = p.rows[0]!;
    return { tool: p.tool, label: r.label, points: p.levels.filter((l) => l.samples[r.id]?.length).map((l) => [l.level, med(l.samples[r.id])] as [number, number]) };
  });
  const ts = phases.find((p) => p.tool === "tsnet");
  const floorRow = ts?.rows.find((r) => r.tool === "floor");
  if (ts && floorRow) {
    series.push({ tool: "floor", label: floorRow.label, points: ts.levels.filter((l) => l.samples[floorRow.id]?.length).map((l) => [l.level, med(l.samples[floorRow.id])]) });
  }
  const all = series.flatMap((s) => s.points.map(([, v]) => v));
  // Log scale over whole 1-2-5 steps, so every line's relative growth reads alike.
  const steps = [1, 2, 5];
  const ticks: number[] = [];
  for (let d = 0.1; d < 1e5; d *= 10) for (const s of steps) ticks.push(Number((s * d).toPrecision(2)));
  const lo = Math.max(...ticks.filter((t) => t <= Math.min(...all)));
  const hi = Math.min(...ticks.filter((t) => t >= Math.max(...all)));
  const y = (v: number) => y1 - ((Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * (y1 - y0);
  const x = (lv: number) => x0 + (levels.length === 1 ? 0 : (levels.indexOf(lv) / (levels.length - 1)) * (x1 - x0));
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(`<text x="10" y="20" font-size="14" font-weight="600" fill="#1f2328">run --rm -p 8080:80 ... true while N of the tool's own containers run: median ms (log scale)</text>`);
  o.push(`<text x="10" y="38" fill="#57606a">${esc(`${raw.config.levelRounds} interleaved rounds per point, with unshare -n true as the machine's reference; ${raw.machine.cores} cores`)}</text>`);
  for (const t of ticks.filter((t) => t >= lo && t <= hi)) {
    o.push(`<line x1="${x0}" x2="${x1}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#d0d7de" stroke-width="1"/>`);
    o.push(`<text x="${x0 - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" fill="#57606a">${t}</text>`);
  }
  for (const lv of levels) {
    o.push(`<line x1="${x(lv).toFixed(1)}" x2="${x(lv).toFixed(1)}" y1="${y0}" y2="${y1}" stroke="#eaeef2" stroke-width="1"/>`);
    o.push(`<text x="${x(lv).toFixed(1)}" y="${y1 + 18}" text-anchor="middle" fill="#1f2328">${count(lv)}</text>`);
  }
  o.push(`<text x="${(x0 + x1) / 2}" y="${y1 + 38}" text-anchor="middle" fill="#57606a">running containers (levels evenly spaced)</text>`);
  o.push(`<text x="18" y="${(y0 + y1) / 2}" text-anchor="middle" fill="#57606a" transform="rotate(-90 18 ${(y0 + y1) / 2})">ms</text>`);
  series.forEach((s, i) => {
    const dash = s.tool === "floor" ? ' stroke-dasharray="5 4"' : "";
    const pts = s.points.map(([lv, v]) => `${x(lv).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    o.push(`<polyline points="${pts}" fill="none" stroke="${color(s.tool)}" stroke-width="${s.tool === "tsnet" ? 3 : 2}"${dash}/>`);
    for (const [lv, v] of s.points) o.push(`<circle cx="${x(lv).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${color(s.tool)}"/>`);
    const ly = y0 + i * 40;
    const name = s.tool === "floor" ? "floor: unshare -n true" : short(s.tool);
    o.push(`<line x1="610" x2="634" y1="${ly + 6}" y2="${ly + 6}" stroke="${color(s.tool)}" stroke-width="3"${dash}/>`);
    o.push(`<text x="640" y="${ly + 10}" fill="#1f2328"${s.tool === "tsnet" ? ' font-weight="700"' : ""}>${esc(name)}</text>`);
    const f = s.points[0];
    const l = s.points.at(-1);
    if (f && l && l !== f) o.push(`<text x="640" y="${ly + 25}" fill="#57606a">${esc(`${ratio(l[1] / f[1])} at ${count(l[0])} vs none`)}</text>`);
  });
  // Each line's last value at its end, nudged apart so that close lines stay readable.
  const ends = series
    .map((s) => ({ s, p: s.points.at(-1) }))
    .filter((e): e is { s: (typeof series)[number]; p: [number, number] } => e.p !== undefined)
    .map((e) => ({ ...e, ty: y(e.p[1]) + 4 }))
    .sort((a, b) => a.ty - b.ty);
  for (let i = 1; i < ends.length; i++) {
    const prev = ends[i - 1]!;
    const cur = ends[i]!;
    if (x(cur.p[0]) === x(prev.p[0]) && cur.ty - prev.ty < 13) cur.ty = prev.ty + 13;
  }
  for (const e of ends) o.push(`<text x="${(x(e.p[0]) + 7).toFixed(1)}" y="${e.ty.toFixed(1)}" fill="${color(e.s.tool)}">${ms(e.p[1])}</text>`);
  o.push("</svg>");
  return o.join("\n");
}

// ---- memory and traffic ------------------------------------------------------------------------

function memoryTable(): string {
  const rows: string[] = [];
  for (const p of raw.growth ?? []) {
    for (const l of p.levels) {
      const m = l.memory;
      if (!m || l.level === 0) continue;
      const n = l.level + (p.tool === "podman" ? 1 : 0); // Podman's count includes the container keeping its bridge up
      rows.push(
        `| ${short(p.tool)}: ${m.what} | ${count(n)} | ${m.processes} | ${kib(m.rssKiB / n)} | ${kib(m.pssKiB / n)} | ${kib(m.anonKiB / n)} |`,
      );
    }
  }
  if (!rows.length) return "";
  return [
    "| processes | running containers | processes | RSS per container | PSS per container | anonymous per container |",
    "|---|---:|---:|---:|---:|---:|",
    ...rows,
  ].join("\n");
}

function trafficTable(): string {
  const t = raw.traffic;
  if (!t) return "";
  const tools = [...new Set(Object.keys(t.connPerSecond).concat(Object.keys(t.gbits)).map((k) => k.split("/")[0]!))];
  const conn = (k: string) => med(t.connPerSecond[k]);
  const gb = (k: string) => med(t.gbits[k]);
  const out = [
    "| path | connections/s | x direct | x tsnet | Gbit/s (iperf3) | x direct | x tsnet |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const tool of tools) {
    for (const path of ["published", "direct"]) {
      const k = `${tool}/${path}`;
      const how = path === "published" ? "through its published port on 127.0.0.1" : "straight to the container's address";
      out.push(
        `| ${short(tool)}, ${how} | ${conn(k).toFixed(0)} | ${ratio(conn(k) / conn(`${tool}/direct`))} | ${ratio(conn(k) / conn(`tsnet/${path}`))} | ${gb(k).toFixed(2)} | ${ratio(gb(k) / gb(`${tool}/direct`))} | ${ratio(gb(k) / gb(`tsnet/${path}`))} |`,
      );
    }
  }
  const errs = Object.entries(t.errors ?? {}).map(([k, e]) => `- ${k}: ${e}`);
  return [
    ...out,
    "",
    `Connections: ${t.connRounds} interleaved rounds of ${t.connCount} sequential connections per path (connect, read the server's close, close), client and server on one CPU (bench/connrate.py, bench/listen.py). Throughput: ${t.iperfRounds} interleaved rounds of ${t.iperfSeconds} s of one iperf3 TCP stream per path.`,
    ...errs,
  ].join("\n");
}

// ---- the report --------------------------------------------------------------------------------

function report(svgBase: string): string {
  const m = raw.machine;
  const lines = cycleLines();
  const parts: string[] = [];
  parts.push(
    `Measured ${raw.started.slice(0, 10)} in one run of \`npm run bench\` (${Math.round(raw.durationSeconds / 60)} min) on: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Linux ${m.kernel}, ${m.os}. ` +
      "Every figure is a median over interleaved rounds (each row once per round, the order rotated); every ratio compares rows measured in the same rounds.",
  );
  parts.push(["| tool | version |", "|---|---|", ...Object.entries(m.versions).map(([k, v]) => `| ${toolName(k)} | ${v} |`)].join("\n"));
  if (raw.missing.length) parts.push(["Not measured (missing here):", ...raw.missing.map((x) => `- ${x.name}: ${x.why}. To include it: ${x.install}.`)].join("\n"));
  if (lines.length) {
    parts.push(`#### The container cycle\n\n${cycleTable(lines)}\n\n![run --rm ... true per tool](${svgBase}cycle.svg)`);
    const st = startupTable();
    if (st) parts.push(st);
  }
  const g = growthTable();
  if (g) parts.push(`#### Cost with running containers\n\n${g}\n\n![cost against running containers](${svgBase}growth.svg)`);
  const mem = memoryTable();
  if (mem) parts.push(`#### Memory per running container\n\n${mem}`);
  const tr = trafficTable();
  if (tr) parts.push(`#### Through a published port\n\n${tr}`);
  return parts.join("\n\n");
}

const lines = cycleLines();
if (lines.length) writeFileSync(`${dir}/cycle.svg`, `${cycleSvg(lines)}\n`);
if ((raw.growth ?? []).some((p) => p.levels.length)) writeFileSync(`${dir}/growth.svg`, `${growthSvg()}\n`);
const body = report("");
writeFileSync(`${dir}/results.md`, `# tsnet beside its peers\n\n${body}\n`);
console.log(body);

// The README shows the committed run: only the default results directory updates it.
const readme = `${import.meta.dir}/results/README.md`;
const defaultDir = `${import.meta.dir}/results`;
if ((existsSync(defaultDir) && realpathSync(dir) === realpathSync(defaultDir)) || process.env.BENCH_README === "1") {
  const text = existsSync(readme) ? readFileSync(readme, "utf8") : "";
  const [b, e] = ["<!-- bench:begin -->", "<!-- bench:end -->"];
  if (text.includes(b) && text.includes(e)) {
    const updated = `${text.slice(0, text.indexOf(b) + b.length)}\n${report("bench/results/")}\n${text.slice(text.indexOf(e))}`;
    writeFileSync(readme, updated);
    console.error("render: bench/results/README.md updated between the bench markers");
  }
}
