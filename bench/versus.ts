// Two builds of tsnet on the same command, before/after a change: hyperfine rounds in alternating
// order (A then B, B then A, ...), so load on the machine shifts both alike; the verdict is the
// median of the per-round ratios B/A. Run inside a throwaway host:
//   bash test/sandbox.sh bun bench/versus.ts OLD_TSNET NEW_TSNET [-- ARGS...]
// (ARGS default: run --rm -- true). ROUNDS and RUNS set the size.
import { mkdtempSync, readFileSync } from "node:fs";

const [a, b, ...rest] = process.argv.slice(2);
if (!a || !b) throw new Error("usage: bun bench/versus.ts OLD_TSNET NEW_TSNET [-- ARGS...]");
const args = rest[0] === "--" ? rest.slice(1) : rest.length ? rest : ["run", "--rm", "--", "true"];
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const RUNS = Number(process.env.RUNS ?? 30);
const dir = mkdtempSync("/tmp/tsnet-versus-");

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const quote = (w: string) => `'${w.replace(/'/g, "'\\''")}'`;
const line = (exe: string) => [exe, ...args].map(quote).join(" ");

const perA: number[] = [];
const perB: number[] = [];
const ratios: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const order = i % 2 === 0 ? [a, b] : [b, a];
  const json = `${dir}/round${i}.json`;
  const p = Bun.spawnSync(["hyperfine", "-N", "--warmup", "3", "--runs", String(RUNS), "--export-json", json, ...order.map(line)], { stdout: "ignore", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`hyperfine failed: ${p.stderr}`);
  const results = JSON.parse(readFileSync(json, "utf8")).results as { command: string; median: number }[];
  const ms = (exe: string) => results.find((r) => r.command === line(exe))!.median * 1000;
  perA.push(ms(a));
  perB.push(ms(b));
  ratios.push(ms(b) / ms(a));
}
const sorted = [...ratios].sort((x, y) => x - y);
console.log(`tsnet ${args.join(" ")}: ${ROUNDS} alternating hyperfine rounds of ${RUNS} runs each`);
console.log(`| build | median ms |\n|---|---:|\n| A ${a} | ${median(perA).toFixed(2)} |\n| B ${b} | ${median(perB).toFixed(2)} |`);
console.log(`B/A: median of per-round ratios ${median(ratios).toFixed(3)} (rounds ${sorted[0]!.toFixed(3)}-${sorted.at(-1)!.toFixed(3)}); difference of medians ${(median(perB) - median(perA)).toFixed(2)} ms`);
