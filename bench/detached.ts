// Detached containers: what tsnet keeps resident per container (the supervisor's RSS over the
// number of containers), and the time of `run -d` with 1 and with 100 containers running,
// interleaved. Run inside a throwaway host: npm run bench:detached.
import { readFileSync, readdirSync } from "node:fs";

const T = `${import.meta.dir}/../dist/tsnet`;

function sh(cmd: string[]): string {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${p.stderr}`);
  return p.stdout.toString();
}

function statusKiB(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith(`${field}:`))!;
  return Number(line.split(/\s+/)[1]);
}
const rssKiB = (pid: number) => statusKiB(pid, "VmRSS");

function pidsOf(word: string): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").includes(word);
    } catch {
      return false;
    }
  });
}

let started = 0;
function runD(): void {
  sh([T, "run", "-d", "--rm", "--name", `b${started++}`, "--", "sleep", "600"]);
}

/** Median wall ms of `run -d` (each followed by removing it, so the count stays put). */
function timeRunD(rounds: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const name = `probe${started++}`;
    const t0 = performance.now();
    sh([T, "run", "-d", "--rm", "--name", name, "--", "sleep", "600"]);
    out.push(performance.now() - t0);
    sh([T, "rm", "-f", name]);
  }
  return out;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// [containers, VmRSS KiB, RssAnon KiB]: most of the RSS is the executable's pages, shared with
// every other tsnet process through the page cache; RssAnon is what this process alone holds.
const memory: [number, number, number][] = [];
runD();
const at1: number[] = [];
const at100: number[] = [];
at1.push(...timeRunD(15));
for (const target of [10, 100]) {
  while (started < target + at1.length) runD(); // `started` also counted the probes
  await Bun.sleep(500); // the supervisor settles (it collects garbage after a burst)
  const sup = pidsOf("_supervise");
  const kib = sup.reduce((s, p) => s + rssKiB(p), 0);
  const anon = sup.reduce((s, p) => s + statusKiB(p, "RssAnon"), 0);
  memory.push([target, kib, anon]);
}
at100.push(...timeRunD(15));

console.log("| containers | supervisor RSS MiB | RSS MiB per container | private (RssAnon) MiB | private per container |");
console.log("|---:|---:|---:|---:|---:|");
for (const [n, kib, anon] of memory) {
  console.log(`| ${n} | ${(kib / 1024).toFixed(1)} | ${(kib / 1024 / n).toFixed(2)} | ${(anon / 1024).toFixed(1)} | ${(anon / 1024 / n).toFixed(3)} |`);
}
const conmon = pidsOf("conmon");
console.log(conmon.length ? `\nconmon: ${(conmon.reduce((s, p) => s + rssKiB(p), 0) / 1024 / conmon.length).toFixed(2)} MiB each` : "\n(podman's conmon: not running here, nothing to compare)");
const m1 = median(at1);
const m100 = median(at100);
console.log(`\n| running containers | run -d median ms |\n|---:|---:|\n| 1 | ${m1.toFixed(1)} |\n| 100 | ${m100.toFixed(1)} |`);
console.log(`\nrun -d at 100 / at 1: ${(m100 / m1).toFixed(2)}x (target 1.2x) ${m100 / m1 <= 1.2 ? "MET" : "NOT MET"}`);
const per100 = memory.find(([n]) => n === 100)![1] / 1024 / 100;
console.log(`memory per container at 100: ${per100.toFixed(2)} MiB (target 0.5) ${per100 <= 0.5 ? "MET" : "NOT MET"}`);
sh([T, "rm", "-f", ...sh([T, "ps", "-q"]).trim().split("\n").filter(Boolean)]);
