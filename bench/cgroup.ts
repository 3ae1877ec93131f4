// What the container's cgroup costs the `tsnet run --rm -- true` cycle (issue 7: at most 1 ms).
// Run inside a throwaway host: npm run bench:cgroup.
//
// The reference is the same executable with TSNET_NO_CGROUP=1, which takes the no-cgroup path:
// everything else (setsid, signal handlers, subreaper, network) is identical; what it leaves out
// is exactly the cgroup's share: making the parent (already there) and the container's cgroup,
// one more record write, joining the cgroup at spawn (clone3 with CLONE_INTO_CGROUP), reading
// cgroup.events after the command exits, and removing the cgroup. The two are interleaved, in
// alternating order, round by round, so load on the machine shifts both alike; the verdict is on
// the median of the per-round differences, with a bootstrap 95% interval.
export {};

const T = `${import.meta.dir}/../dist/tsnet`;
const ROUNDS = Number(process.env.ROUNDS ?? 150);

function runOnce(args: string[], noCgroup: boolean): number {
  const env = { ...process.env, ...(noCgroup ? { TSNET_NO_CGROUP: "1" } : {}) };
  const t0 = performance.now();
  const p = Bun.spawnSync([T, ...args], { env, stdout: "ignore", stderr: "pipe" });
  const ms = performance.now() - t0;
  if (p.exitCode !== 0) throw new Error(`tsnet ${args.join(" ")} failed: ${p.stderr}`);
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function bootstrapMedian(xs: number[], iterations = 2000): [number, number] {
  const meds: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const sample = xs.map(() => xs[Math.floor(Math.random() * xs.length)]!);
    meds.push(median(sample));
  }
  meds.sort((a, b) => a - b);
  return [meds[Math.floor(iterations * 0.025)]!, meds[Math.floor(iterations * 0.975)]!];
}

const cases: [string, string[]][] = [
  ["run --rm -- true (bridge)", ["run", "--rm", "--", "true"]],
  ["run --rm --network none -- true", ["run", "--rm", "--network", "none", "--", "true"]],
];

runOnce(cases[0]![1], false); // makes tsnet0 once, as a user's first run would
for (const [, args] of cases) for (let i = 0; i < 5; i++) runOnce(args, i % 2 === 0); // warm-up

console.log(`| cycle (${ROUNDS} interleaved rounds) | with cgroup, median ms | without (TSNET_NO_CGROUP=1) | cgroup's cost, median of per-round differences | 95% interval |`);
console.log("|---|---:|---:|---:|---|");
let verdictMs = 0;
for (const [name, args] of cases) {
  const withCg: number[] = [];
  const without: number[] = [];
  const diffs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let a: number, b: number;
    if (i % 2 === 0) {
      a = runOnce(args, false);
      b = runOnce(args, true);
    } else {
      b = runOnce(args, true);
      a = runOnce(args, false);
    }
    withCg.push(a);
    without.push(b);
    diffs.push(a - b);
  }
  const d = median(diffs);
  const [lo, hi] = bootstrapMedian(diffs);
  if (name.includes("bridge")) verdictMs = d;
  console.log(`| ${name} | ${median(withCg).toFixed(2)} | ${median(without).toFixed(2)} | ${d >= 0 ? "+" : ""}${d.toFixed(2)} ms | ${lo.toFixed(2)} .. ${hi.toFixed(2)} |`);
}
console.log(`\ncgroup cost on run --rm -- true: ${verdictMs.toFixed(2)} ms (target <= 1 ms) ${verdictMs <= 1 ? "MET" : "NOT MET"}`);
