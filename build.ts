// Builds the single executable dist/tsnet with `bun build --compile`. Never strip the result:
export {};
// stripping removes the embedded program and leaves the plain bun CLI.
const started = performance.now();
const result = await Bun.build({
  entrypoints: ["./src/cli/main.ts"],
  compile: { outfile: "./dist/tsnet" },
  minify: true,
  sourcemap: "none",
  bytecode: true,
  target: "bun",
});
if (!result.success) {
  for (const m of result.logs) console.error(m);
  process.exit(1);
}
console.error(`build: dist/tsnet in ${Math.round(performance.now() - started)} ms`);
