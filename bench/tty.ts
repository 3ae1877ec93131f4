// `-t`'s costs (README, "A terminal: -t"), inside the throwaway host (`npm run bench:tty`):
//   - keystroke echo latency: the bench holds a pty (the person's terminal), runs `cat` behind it
//     through `tsnet run -it` and through a bare `script` session, and times each key from the
//     write on the master until its echo comes back (one key at a time, interleaved rounds);
//   - output throughput: `head -c 100M /dev/zero` with -t and without (the same command's stdout
//     straight to /dev/null), and under `script`, each timed whole (start-up included) and
//     reported beside `true` with the same options, whose difference is the copy.
import { resolve } from "node:path";

const TSNET = resolve(import.meta.dir, "../dist/tsnet");
const KEYS = Number(process.env.TTY_KEYS ?? 300);
const ROUNDS = Number(process.env.TTY_ROUNDS ?? 5);
/** termios c_lflag's ECHO (asm-generic/termbits.h). */
const ECHO = 0x8;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Echo latency of `KEYS` keys typed into `cmd` (which runs cat on a terminal), in ms. */
async function echoLatency(cmd: string[]): Promise<number[]> {
  let got = "";
  let wake: (() => void) | undefined;
  const proc = Bun.spawn(cmd, {
    env: { ...process.env, TERM: "xterm" },
    terminal: { cols: 80, rows: 24, data: (_t, d) => { got += new TextDecoder().decode(d); wake?.(); } },
  });
  const term = proc.terminal!;
  const until = async (s: string) => {
    while (!got.includes(s)) await new Promise<void>((r) => { wake = r; setTimeout(r, 50); });
  };
  // Ready once the bench's terminal is raw (so no echo is its own: each comes from the session's
  // terminal, through the relay) and a first key comes back.
  while (term.localFlags & ECHO) await Bun.sleep(10);
  for (;;) {
    term.write("r");
    await Bun.sleep(100);
    if (got.includes("r")) break;
  }
  const times: number[] = [];
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < KEYS; i++) {
    const k = letters[i % letters.length]!;
    got = "";
    const t0 = Bun.nanoseconds();
    term.write(k);
    await until(k);
    times.push((Bun.nanoseconds() - t0) / 1e6);
  }
  term.write("\x04\x04");
  await Promise.race([proc.exited, Bun.sleep(3000)]);
  proc.kill("SIGKILL");
  term.close();
  return times;
}

/** Wall time of `cmd` with stdout on /dev/null, in ms. */
async function wall(cmd: string[]): Promise<number> {
  const t0 = Bun.nanoseconds();
  const p = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error(`${cmd.join(" ")} failed`);
  return (Bun.nanoseconds() - t0) / 1e6;
}

const med = (xs: number[]) => pct(xs, 50);

const lat: Record<string, number[]> = { "tsnet run -it": [], "script": [] };
for (let r = 0; r < ROUNDS; r++) {
  lat["tsnet run -it"]!.push(...(await echoLatency([TSNET, "run", "-it", "--rm", "--network", "none", "--", "cat"])));
  lat["script"]!.push(...(await echoLatency(["script", "-qc", "cat", "/dev/null"])));
}
console.log(`Keystroke echo latency (${ROUNDS} x ${KEYS} keys, one at a time)\n`);
console.log("| session | median | p99 |\n|---|---|---|");
for (const [k, v] of Object.entries(lat)) console.log(`| ${k} | ${med(v).toFixed(3)} ms | ${pct(v, 99).toFixed(3)} ms |`);

const BIG = ["head", "-c", "100000000", "/dev/zero"];
const base = [TSNET, "run", "--rm", "--network", "none"];
const cases: Record<string, string[]> = {
  "tsnet run -t (pty)": [...base, "-t", "--", ...BIG],
  "tsnet run -t true": [...base, "-t", "--", "true"],
  "tsnet run (no pty)": [...base, "--", ...BIG],
  "tsnet run true": [...base, "--", "true"],
  "script (pty)": ["script", "-qc", BIG.join(" "), "/dev/null"],
  "script true": ["script", "-qc", "true", "/dev/null"],
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) for (const [k, cmd] of Object.entries(cases)) times[k]!.push(await wall(cmd));
const copy = (a: string, b: string) => Math.max(1e-3, med(times[a]!) - med(times[b]!));
console.log(`\n100 MB of output to /dev/null (median of ${ROUNDS} interleaved rounds)\n`);
console.log("| how | wall | of which the copy | MB/s |\n|---|---|---|---|");
for (const [k, t] of [["tsnet run -t (pty)", "tsnet run -t true"], ["tsnet run (no pty)", "tsnet run true"], ["script (pty)", "script true"]] as const) {
  const c = copy(k, t);
  console.log(`| ${k} | ${med(times[k]!).toFixed(0)} ms | ${c.toFixed(0)} ms | ${(100 / (c / 1000)).toFixed(0)} |`);
}
