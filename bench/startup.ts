// Start-up of the command line against the floor of any Bun executable: a compiled hello world
// built with the same flags (npm run bench:startup). Short alternating hyperfine rounds, one
// ratio per round against the reference measured in that round, medians reported, so load from
// elsewhere on the machine shifts both sides alike.
//   tsnet --version            what a script that checks the version pays (target: 1.3x)
//   tsnet ps --help            the option table, help renderer and registry
//   tsnet _complete ... (bash) what one <TAB> costs
//   a template over 1,000 rows the Go-template engine in the same executable
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const RUNS = Number(process.env.RUNS ?? 30);
const T = resolve(import.meta.dir, "../dist/tsnet");
const dir = mkdtempSync(join(tmpdir(), "tsnet-startup-"));

function compile(name: string, source: string): string {
  writeFileSync(join(dir, `${name}.ts`), source);
  const out = join(dir, name);
  const r = Bun.spawnSync([process.execPath, "build", "--compile", "--minify", "--bytecode", join(dir, `${name}.ts`), "--outfile", out], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`building ${name}: ${r.stderr}`);
  return out;
}

try {
  const hello = compile("hello", 'console.log("hello");\n');
  // The engine alone, in an executable of its own, over the rows ps would give it.
  const engine = compile("engine", `import { compile } from ${JSON.stringify(resolve(import.meta.dir, "../src/template/exec.ts"))};
const rows = Array.from({ length: 1000 }, (_, i) => ({ ID: i.toString(16).padStart(12, "0"), Names: "c" + i, State: "running", Ports: "0.0.0.0:" + (8000 + i) + "->80/tcp" }));
const t = compile("{{.ID}} {{.Names}} {{if eq .State \\"running\\"}}{{upper .State}}{{end}} {{.Ports}}");
let n = 0; for (const r of rows) n += t.execute(r).length;
console.log(n);
`);
  const commands: [string, string][] = [
    ["hello (reference)", hello],
    ["tsnet --version", `${T} --version`],
    ["tsnet ps --help", `${T} ps --help`],
    ["tsnet _complete (one TAB)", `${T} _complete bash = "tsnet ps --f"`],
    ["template over 1,000 rows", engine],
  ];
  const ratios = new Map<string, number[]>();
  const medians = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    const json = join(dir, `round${round}.json`);
    const args = ["-N", "--warmup", "3", "--runs", String(RUNS), "--export-json", json];
    for (const [name, cmd] of commands) args.push("-n", name, cmd);
    const r = Bun.spawnSync(["hyperfine", ...args], { stdout: "ignore", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error("hyperfine failed");
    const results = (JSON.parse(await Bun.file(json).text()) as { results: { command: string; median: number }[] }).results;
    const ref = results[0]!.median;
    for (const x of results) {
      ratios.set(x.command, [...(ratios.get(x.command) ?? []), x.median / ref]);
      medians.set(x.command, [...(medians.get(x.command) ?? []), x.median * 1000]);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`| command | median ms | x hello (median of ${ROUNDS} rounds) | range of rounds |`);
  console.log("|---|---:|---:|---|");
  for (const [name] of commands) {
    const r = ratios.get(name)!;
    console.log(`| ${name} | ${median(medians.get(name)!).toFixed(1)} | ${median(r).toFixed(2)} | ${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
