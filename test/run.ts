// npm test's runner: every test file in a throwaway host of its own (test/sandbox.sh), several at
// once. Most of the suite waits (for a container to stop, a restart back-off, a DNS upstream to
// time out) rather than computes, so N files side by side take about 1/N of the time on two cores.
//
//   bun test/run.ts [--jobs N] [--record] [FILE...]
//
// Files are handed out longest first (test/durations.json, measured; a file not in it counts as
// DEFAULT_SECONDS), each to the next free worker, so the long ones do not end up last. Each file's
// output is streamed as it comes, every line prefixed with the file's name; at the end come the
// failures again and one summary in bun test's own format (" N pass", " N fail", ...), the lines
// .ci/run reads. The release build (`bun build.ts --release --xz=0`) runs alongside the first
// files; the files that test its output wait for it.
//
// Each sandbox has its own network, mount and PID namespaces, /run, /tmp and state directories, and
// its own cgroup parent (tsnet-test-PID of its sandbox.sh), so files running at once share nothing
// but the CPU and the kernel.
//
// --record rewrites test/durations.json with the wall and CPU time each file took in this run
// (run it with --jobs 1 for wall times that balance well).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const DURATIONS = `${ROOT}/test/durations.json`;
/** What a file not yet in durations.json is assumed to take. */
const DEFAULT_SECONDS = 5;
/** The files that read the release build's output (dist/tsnet-linux-*, the archives, SHA256SUMS). */
const NEEDS_RELEASE = new Set(["test/release.test.ts"]);
const BUN = process.execPath;

function usage(message: string): never {
  console.error(`test/run.ts: ${message}\nusage: bun test/run.ts [--jobs N] [--record] [--no-release] [FILE...]`);
  process.exit(2);
}

let jobs = Number(process.env.TSNET_TEST_JOBS ?? 2);
let record = false;
let releaseBuild = true;
const named: string[] = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]!;
  if (a === "--jobs" || a === "-j") jobs = Number(argv[++i]);
  else if (a.startsWith("--jobs=")) jobs = Number(a.slice("--jobs=".length));
  else if (a === "--record") record = true;
  else if (a === "--no-release") releaseBuild = false;
  else if (a.startsWith("-")) usage(`unknown option ${a}`);
  else named.push(a);
}
if (!Number.isInteger(jobs) || jobs < 1) usage(`--jobs (or TSNET_TEST_JOBS) must be a whole number of at least 1, not ${jobs}`);

/** The files bun test itself would find: *.test.ts and the like, outside node_modules. */
function discover(): string[] {
  const glob = new Bun.Glob("**/*{.test,_test,.spec,_spec}.{ts,tsx,js,jsx,mts,cts,mjs,cjs}");
  return [...glob.scanSync({ cwd: ROOT })].filter((f) => !f.split("/").includes("node_modules")).sort();
}

const files = named.length
  ? named.map((f) => {
      const rel = relative(ROOT, resolve(f));
      if (!existsSync(`${ROOT}/${rel}`)) usage(`no test file ${f}`);
      return rel;
    })
  : discover();
/** Per file: the wall time it took, alone (--jobs 1), and the CPU time all its processes used. */
type Measured = Record<string, { wall: number; cpu: number }>;
const known: Measured = existsSync(DURATIONS) ? JSON.parse(readFileSync(DURATIONS, "utf8")) : {};
const estimate = (f: string) => known[f]?.wall ?? DEFAULT_SECONDS;
const queue = [...files].sort((a, b) => estimate(b) - estimate(a) || a.localeCompare(b));

interface Counts {
  pass: number;
  fail: number;
  skip: number;
  todo: number;
  error: number;
  expects: number;
  tests: number;
}
const total: Counts = { pass: 0, fail: 0, skip: 0, todo: 0, error: 0, expects: 0, tests: 0 };
const failures: string[] = [];
/** What bun printed before each failing test's "(fail)" line (its error and stack), shown again at
 * the end: CI keeps only the tail of a run's output. */
const details: string[] = [];
/** Lines of a failing test's error kept for the end. */
const DETAIL_LINES = 30;
const took: Measured = {};
const children = new Set<Bun.Subprocess>();
const started = performance.now();
const width = Math.max(...files.map((f) => basename(f).replace(/\.test\.ts$/, "").length), "release build".length);
const label = (name: string) => name.padEnd(width);

/** Copies a stream to stderr line by line, each line behind PREFIX; calls onLine with each line. */
async function relay(stream: ReadableStream<Uint8Array>, prefix: string, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let rest = "";
  const emit = (line: string) => {
    onLine(line);
    process.stderr.write(`${prefix} | ${line}\n`);
  };
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const l of lines) emit(l);
  }
  rest += decoder.decode();
  if (rest) emit(rest);
}

/**
 * Runs CMD with its output relayed behind NAME: its exit status, and the CPU seconds it and every
 * process it waited for used (a sandbox's PID 1 reaps all that ran in it, so that is all of them).
 */
async function spawnRelayed(name: string, cmd: string[], onLine: (line: string) => void = () => {}): Promise<{ code: number; cpu: number }> {
  const p = Bun.spawn(cmd, { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  children.add(p);
  const prefix = label(name);
  await Promise.all([relay(p.stdout, prefix, onLine), relay(p.stderr, prefix, onLine)]);
  const code = await p.exited;
  children.delete(p);
  const usage = p.resourceUsage();
  const cpu = usage ? Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6 : 0;
  return { code, cpu };
}

/** One file in a sandbox of its own; its counts are added to the total. */
async function runFile(file: string): Promise<void> {
  const name = basename(file).replace(/\.test\.ts$/, "");
  const counts: Partial<Counts> = {};
  let inError = false;
  // Lines since the last test's result line: the next failing test's error.
  let since: string[] = [];
  const t0 = performance.now();
  const { code, cpu } = await spawnRelayed(name, ["bash", "test/sandbox.sh", BUN, "test", "--timeout", "60000", `./${file}`], (line) => {
    const m = /^ (\d+) (pass|fail|skip|todo|error)$/.exec(line);
    if (m) counts[m[2] as keyof Counts] = Number(m[1]);
    const e = /^ (\d+) expect\(\) calls$/.exec(line);
    if (e) counts.expects = Number(e[1]);
    const r = /^Ran (\d+) tests? across/.exec(line);
    if (r) counts.tests = Number(r[1]);
    // bun prints each failing test again at the end of its output: listed once here.
    if (line.startsWith("(fail) ") && !failures.includes(`${file}: ${line}`)) {
      failures.push(`${file}: ${line}`);
      const shown = since.filter((l) => l.trim()).slice(-DETAIL_LINES);
      details.push(`${file}: ${line}\n${shown.map((l) => `  ${l}`).join("\n")}`);
    }
    if (/^\((pass|fail|skip|todo)\) /.test(line)) since = [];
    else since.push(line);
    if (line === "# Unhandled error between tests") inError = true;
    else if (inError && line.startsWith("error: ")) {
      failures.push(`${file}: unhandled error: ${line.slice("error: ".length)}`);
      inError = false;
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  took[file] = { wall: Math.round(seconds * 10) / 10, cpu: Math.round(cpu * 10) / 10 };
  // A file that exits non-zero must count as failing even when bun printed no failing test (it
  // crashed, was killed, or never got to its summary).
  if (code !== 0 && !counts.fail) {
    counts.fail = 1;
    counts.tests = (counts.tests ?? 0) + 1;
    failures.push(`${file}: exited with status ${code} without reporting a failing test`);
  }
  for (const k of Object.keys(total) as (keyof Counts)[]) total[k] += counts[k] ?? 0;
  console.error(
    `${label(name)} = ${counts.pass ?? 0} pass, ${counts.fail ?? 0} fail${counts.skip ? `, ${counts.skip} skip` : ""} in ${seconds.toFixed(1)} s, ${cpu.toFixed(1)} s of CPU` +
      ` (${++done} of ${files.length} files done)`,
  );
}

let done = 0;
let release: Promise<number> | undefined;
let releaseOk = false;
if (releaseBuild && files.some((f) => NEEDS_RELEASE.has(f))) {
  const t0 = performance.now();
  release = spawnRelayed("release build", [BUN, "build.ts", "--release", "--xz=0"]).then(({ code, cpu }) => {
    releaseOk = code === 0;
    console.error(`${label("release build")} = exit ${code} in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${cpu.toFixed(1)} s of CPU`);
    return code;
  });
}

/** The next file to run: the longest one whose prerequisites are done. */
async function next(): Promise<string | undefined> {
  for (;;) {
    const i = queue.findIndex((f) => !NEEDS_RELEASE.has(f) || !release || releaseOk);
    if (i >= 0) return queue.splice(i, 1)[0];
    if (!queue.length) return undefined;
    // Only files waiting for the release build are left.
    await release;
    if (!releaseOk) {
      for (const f of queue.splice(0)) {
        total.fail += 1;
        total.tests += 1;
        failures.push(`${f}: not run: the release build failed`);
      }
      return undefined;
    }
  }
}

async function worker(): Promise<void> {
  for (let file = await next(); file; file = await next()) {
    await runFile(file);
  }
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    // sandbox.sh ends its namespace (and everything in it) and removes its cgroups on TERM.
    for (const p of children) p.kill("SIGTERM");
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[signal]);
  });
}

console.error(`test/run.ts: ${files.length} files, ${Math.min(jobs, files.length)} at a time, each in its own test/sandbox.sh`);
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));
const releaseCode = release ? await release : 0;

const wall = (performance.now() - started) / 1000;
if (record) {
  const merged = { ...known, ...took };
  const sorted = Object.fromEntries(Object.keys(merged).sort().filter((f) => existsSync(`${ROOT}/${f}`)).map((f) => [f, merged[f]]));
  writeFileSync(DURATIONS, `${JSON.stringify(sorted, null, 2)}\n`);
  console.error(`test/run.ts: wrote ${relative(ROOT, DURATIONS)}`);
}
if (details.length) console.error(`\nwhat the failing tests printed:\n${details.join("\n\n")}`);
if (failures.length) console.error(`\n${failures.length} failed:\n${failures.join("\n")}`);
if (releaseCode !== 0) console.error(`\nthe release build failed (exit ${releaseCode})`);
const lines = [`\n ${total.pass} pass`];
if (total.skip) lines.push(` ${total.skip} skip`);
if (total.todo) lines.push(` ${total.todo} todo`);
lines.push(` ${total.fail} fail`);
if (total.error) lines.push(` ${total.error} error`);
lines.push(` ${total.expects} expect() calls`);
lines.push(`Ran ${total.tests} tests across ${files.length} files. [${wall.toFixed(2)}s]`);
console.error(lines.join("\n"));
process.exit(total.fail || total.error || releaseCode ? 1 : 0);
