// Prints a hyperfine JSON export as a table of medians and ratios against the first command.
export {};
const file = process.argv[2];
if (!file) throw new Error("usage: bun bench/report.ts HYPERFINE.json");
const { results } = (await Bun.file(file).json()) as { results: { command: string; median: number; min: number; max: number }[] };
const base = results[0]!;
const ms = (s: number) => (s * 1000).toFixed(1).padStart(7);
console.log(`| command | median ms | min ms | x ${base.command} |`);
console.log("|---|---:|---:|---:|");
for (const r of results) {
  console.log(`| ${r.command} | ${ms(r.median)} | ${ms(r.min)} | ${(r.median / base.median).toFixed(2)} |`);
}
const byHand = results.find((r) => r.command.startsWith("ip by hand"));
const bridge = results.find((r) => r.command === "tsnet run (bridge)");
if (byHand && bridge) console.log(`\ntsnet run (bridge) is ${(byHand.median / bridge.median).toFixed(2)}x faster than the ip sequence`);
