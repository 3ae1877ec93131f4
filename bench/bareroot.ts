// Time to first container on a bare root (npm run bench:bareroot, inside the throwaway host): from
// copying the release file into a root of glibc and busybox alone (test/bare-root.ts, entered by
// chroot) to `tsnet run --rm -- true` done. The first run on a root pays every first use: state
// directories, the built-in networks' records, the bridge, tsnet's nf_tables table, the cgroup
// parent. A second run on the same root is shown beside it. Each round is a fresh root and host;
// medians over the rounds.
import { chrootRoot, copyIn } from "../test/bare-root.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const rows: { copy: number; first: number; second: number }[] = [];

for (let i = 0; i < ROUNDS; i++) {
  const bare = await chrootRoot(false);
  try {
    const t0 = performance.now();
    copyIn(bare.dir);
    const t1 = performance.now();
    const first = bare.tsnet(["run", "--rm", "--", "true"]);
    const t2 = performance.now();
    if (first.code !== 0) throw new Error(`first run: exit ${first.code}: ${first.stderr}`);
    const second = bare.tsnet(["run", "--rm", "--", "true"]);
    const t3 = performance.now();
    if (second.code !== 0) throw new Error(`second run: exit ${second.code}: ${second.stderr}`);
    rows.push({ copy: t1 - t0, first: t2 - t1, second: t3 - t2 });
  } finally {
    await bare.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const ms = (x: number) => `${x.toFixed(0)} ms`;
const copy = median(rows.map((r) => r.copy));
const first = median(rows.map((r) => r.first));
const total = median(rows.map((r) => r.copy + r.first));
console.log(`bare root, ${ROUNDS} rounds (medians):`);
console.log(`  copy the release file in           ${ms(copy)}`);
console.log(`  first run --rm -- true             ${ms(first)}`);
console.log(`  copied in to first container done  ${ms(total)}`);
console.log(`  second run --rm -- true            ${ms(median(rows.map((r) => r.second)))}`);
