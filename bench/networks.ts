// Networks: the cost of a user network against the default bridge (`run --rm --network NAME --
// true` beside `run --rm -- true`, interleaved, medians and their ratio), and how fast a
// container's name is answered (1,000 queries from a container to its resolver, median).
// Run inside a throwaway host: npm run bench:networks.
const T = `${import.meta.dir}/../dist/tsnet`;
const ROUNDS = Number(process.env.ROUNDS ?? 60);
const QUERIES = Number(process.env.QUERIES ?? 1000);

function sh(cmd: string[]): string {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${p.stderr}`);
  return p.stdout.toString();
}

function timed(cmd: string[]): number {
  const t0 = performance.now();
  sh(cmd);
  return performance.now() - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

sh([T, "network", "create", "benchnet"]);
sh([T, "run", "--rm", "--", "true"]);
sh([T, "run", "--rm", "--network", "benchnet", "--", "true"]);

const bridge: number[] = [];
const user: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  // Alternate which goes first, so neither always follows the other.
  const pair = [() => bridge.push(timed([T, "run", "--rm", "--", "true"])), () => user.push(timed([T, "run", "--rm", "--network", "benchnet", "--", "true"]))];
  if (i % 2) pair.reverse();
  for (const f of pair) f();
}

// The name of a running container, asked by a client inside another container on the network,
// one query at a time over UDP to 127.0.0.11 (what getent and ping would do), timed there.
sh([T, "run", "-d", "--name", "target", "--network", "benchnet", "--", "sleep", "600"]);
const client = `
import socket, struct, time, statistics
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
q = lambda i: struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0) + b"\\x06target\\x00" + struct.pack(">HH", 1, 1)
times = []
for i in range(${QUERIES}):
    t0 = time.perf_counter_ns(); s.sendto(q(i), ("127.0.0.11", 53)); r = s.recv(512); times.append((time.perf_counter_ns() - t0) / 1e6)
    assert r[3] & 15 == 0 and struct.unpack(">H", r[6:8])[0] == 1, "no answer"
print(statistics.median(times), max(times))
`;
const [dnsMedian, dnsMax] = sh([T, "run", "--rm", "--network", "benchnet", "--", "python3", "-c", client]).trim().split(" ").map(Number);
sh([T, "rm", "-f", "target"]);
sh([T, "network", "rm", "benchnet"]);

const b = median(bridge);
const u = median(user);
const row = (what: string, value: string, target: string, met: boolean) => `| ${what} | ${value} | ${target} | ${met ? "met" : "**missed**"} |`;
console.log(`Networks, ${ROUNDS} interleaved rounds, ${QUERIES} DNS queries (medians):\n`);
console.log("| measure | value | target | |");
console.log("|---|---:|---:|---|");
console.log(row("`run --rm --network NAME -- true` / `run --rm -- true`", `${(u / b).toFixed(2)}x (${u.toFixed(1)} vs ${b.toFixed(1)} ms)`, "<= 1.1x", u / b <= 1.1));
console.log(row("a container's name answered, from a container", `${dnsMedian!.toFixed(3)} ms (max ${dnsMax!.toFixed(1)})`, "< 1 ms", dnsMedian! < 1));
