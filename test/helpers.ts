// Shared by the kernel tests. Everything is observed from outside tsnet: ip -j, /proc, curl, ping.
import { afterAll, beforeAll } from "bun:test";
import { readlinkSync, readdirSync, existsSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";

export const TSNET = resolve(import.meta.dir, "../dist/tsnet");

/**
 * The tests create bridges, namespaces and rules: they must never run in the machine's own
 * network namespace. Refuse loudly (a failing test, never a skip).
 */
export function assertThrowawayHost(): void {
  const mine = readlinkSync("/proc/self/ns/net");
  const outer = process.env.TSNET_OUTER_NETNS;
  if (!outer || mine === outer || process.env.TSNET_THROWAWAY_HOST !== "1") {
    throw new Error(
      "refusing to run kernel tests in this machine's own network namespace: run them with `npm test` (test/sandbox.sh makes a throwaway host)",
    );
  }
  if (!existsSync(TSNET)) throw new Error(`${TSNET} is missing: npm test builds it first`);
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Result {
  const p = Bun.spawnSync(cmd, {
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    env: { ...process.env, ...opts.env },
  });
  const signal = p.signalCode ? (require("node:os").constants.signals as Record<string, number>)[p.signalCode] ?? 0 : 0;
  return { code: p.exitCode ?? 128 + signal, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

export function tsnet(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Result {
  return sh([TSNET, ...args], opts);
}

/** `tsnet ARGS` that must succeed: its stdout; a failure throws, naming the command and its message. */
export function tsnetOk(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): string {
  const r = tsnet(args, opts);
  if (r.code !== 0) throw new Error(`tsnet ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** `ip -j ...` parsed. */
export function ipj<T = any>(args: string[], netns?: string): T {
  const cmd = netns ? ["ip", "-n", netns, "-j", ...args] : ["ip", "-j", ...args];
  const r = sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout || "[]") as T;
}

/**
 * tsnet's veths on the host (the tests' own helper links are not counted). A container's veth pair
 * goes with its namespace, which the kernel destroys in its cleanup worker some milliseconds after
 * tsnet has let go of it (as after `ip netns del`): veths of containers that have ended are waited
 * for, up to 10 s (the worker batches dying namespaces, and is slow under load), so a veth still
 * there after that is a real leak.
 */
export function veths(): string[] {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = ipj<any[]>(["link", "show", "type", "veth"]).map((l) => l.ifname).filter((n: string) => /^veth[0-9a-f]{7}(-\d+)?$/.test(n));
    const live = new Set(records().filter((r) => r.status !== "exited").flatMap((r) => (r.endpoints ?? []).map((e: any) => e.hostVeth)));
    if (now.every((v: string) => live.has(v)) || Date.now() > deadline) return now;
    Bun.sleepSync(10);
  }
}

/** tsnet's namespaces under /run/netns (the tests' own helper hosts are not counted). */
export function netnsNames(): string[] {
  return existsSync("/run/netns") ? readdirSync("/run/netns").filter((n) => n.startsWith("tsnet-")) : [];
}

/** Every leased address, on every network. */
export function leases(): string[] {
  const root = "/run/tsnet/networks";
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((id) => (existsSync(`${root}/${id}/leases`) ? readdirSync(`${root}/${id}/leases`) : []));
}

export function records(): any[] {
  const dir = "/run/tsnet/containers";
  if (!existsSync(dir)) return [];
  // A record may be removed between the listing and its read (a --rm container ending).
  const read = (f: string) => {
    try {
      return [JSON.parse(readFileSync(`${dir}/${f}`, "utf8"))];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  };
  return readdirSync(dir).filter((f) => f.endsWith(".json")).flatMap(read);
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 10000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** A foreground `tsnet run` in the background of the test, ready once its command runs. */
export async function startContainer(name: string, args: string[], command: string[]) {
  const proc = Bun.spawn([TSNET, "run", "--rm", "--name", name, ...args, "--", ...command], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  await waitFor(`container ${name} to run`, () => records().find((r) => r.name === name && r.status === "running"));
  return {
    proc,
    name,
    netns: `tsnet-${name}`,
    async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
      proc.kill(signal);
      return await proc.exited;
    },
  };
}

/** eth0's IPv4 address inside a container namespace, read by ip, not by tsnet. */
export function containerAddress(netns: string): { address: string; prefix: number } {
  const [eth0] = ipj<any[]>(["-4", "addr", "show", "eth0"], netns);
  const a = eth0.addr_info[0];
  return { address: a.local, prefix: a.prefixlen };
}

/**
 * A directory with an nginx config serving index.html with `body`, listening on port 80.
 * `daemon: true` leaves out `daemon off;`: nginx then daemonizes as Debian's does by default (the
 * command exits at once, a master and its workers stay), and writes its master's pid to
 * `${dir}/nginx.pid`. `ipv6: true` listens on [::]:80 and [::]:81 as well (IPv6 only on those
 * sockets: nginx's default).
 */
export function nginxSite(body: string, opts: { daemon?: boolean; ipv6?: boolean } = {}): { dir: string; command: string[] } {
  const { mkdtempSync, writeFileSync, mkdirSync, chmodSync } = require("node:fs") as typeof import("node:fs");
  const dir = mkdtempSync("/tmp/tsnet-nginx-");
  chmodSync(dir, 0o755);
  mkdirSync(`${dir}/www`);
  writeFileSync(`${dir}/www/index.html`, body);
  writeFileSync(
    `${dir}/nginx.conf`,
    [
      "worker_processes 1;",
      "user root;",
      `pid ${dir}/nginx.pid;`,
      "error_log stderr;",
      "events { worker_connections 64; }",
      "http {",
      "  access_log off;",
      `  client_body_temp_path ${dir}/tmp;`,
      `  proxy_temp_path ${dir}/tmp;`,
      `  fastcgi_temp_path ${dir}/tmp;`,
      `  uwsgi_temp_path ${dir}/tmp;`,
      `  scgi_temp_path ${dir}/tmp;`,
      `  server { listen 80; listen 81; ${opts.ipv6 ? "listen [::]:80; listen [::]:81; " : ""}root ${dir}/www; }`,
      "}",
    ].join("\n"),
  );
  const command = ["nginx", "-c", `${dir}/nginx.conf`, "-p", dir];
  return { dir, command: opts.daemon ? command : [...command, "-g", "daemon off;"] };
}

export function curl(url: string, netns?: string, seconds = 2): Result {
  const cmd = ["curl", "-sS", "--max-time", String(seconds), url];
  return sh(netns ? ["ip", "netns", "exec", netns, ...cmd] : cmd);
}

/** A UDP round trip: sends "ping" and returns what came back, or "" on timeout. */
export function udpAsk(host: string, port: number, netns?: string): string {
  const py = `import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"ping",("${host}",${port}))
try: print(s.recvfrom(100)[0].decode())
except Exception: pass`;
  const cmd = ["python3", "-c", py];
  return sh(netns ? ["ip", "netns", "exec", netns, ...cmd] : cmd).stdout.trim();
}

export const UDP_ECHO = ["python3", "-c", `import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("0.0.0.0",53))
while True:
    d,a=s.recvfrom(100); s.sendto(b"echo:"+d,a)`];

/**
 * A neighbour host: namespace `nb` joined to the throwaway host by a veth, host side 192.0.2.1/24,
 * neighbour 192.0.2.2/24 with its default route via the host (TEST-NET-1, only inside namespaces
 * the tests made).
 */
export function makeNeighbour(): () => void {
  const steps = [
    "ip netns add nb",
    "ip link add nb0 type veth peer name eth0 netns nb",
    "ip addr add 192.0.2.1/24 dev nb0",
    "ip link set nb0 up",
    "ip -n nb link set lo up",
    "ip -n nb addr add 192.0.2.2/24 dev eth0",
    "ip -n nb link set eth0 up",
    "ip -n nb route add default via 192.0.2.1",
  ];
  for (const s of steps) {
    const r = sh(s.split(" "));
    if (r.code !== 0) throw new Error(`${s}: ${r.stderr}`);
  }
  return () => {
    sh(["ip", "link", "del", "nb0"]);
    sh(["ip", "netns", "del", "nb"]);
  };
}

/** Asks 127.0.0.11 inside the namespace for NAME's A record over UDP, as a client's stub would. */
export function resolveIn(netns: string, name: string): string {
  const py = `import socket, struct, sys
q = struct.pack(">HHHHHH", 0x2b2b, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(q, ("127.0.0.11", 53))
r = s.recv(512)
print(socket.inet_ntoa(r[-4:]) if struct.unpack(">H", r[6:8])[0] else "no answer")`;
  const r = sh(["ip", "netns", "exec", netns, "python3", "-c", py, name]);
  return r.code === 0 ? r.stdout.trim() : `failed: ${r.stderr.trim()}`;
}

/**
 * The neighbour host for the whole test file: made once the host is checked to be a throwaway one
 * (before the file's own beforeAll hooks, which may add to it), removed after its tests.
 */
export function useNeighbour(): void {
  let remove: () => void = () => {};
  beforeAll(() => {
    assertThrowawayHost();
    remove = makeNeighbour();
  });
  afterAll(() => remove());
}

/** The unified cgroup hierarchy's mount point, read from mountinfo (not from tsnet). */
export function cgroupMount(): string {
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [left, right] = line.split(" - ");
    if (right?.startsWith("cgroup2 ")) return left!.split(" ")[4]!;
  }
  throw new Error("no cgroup2 mount: the cgroup tests need a cgroup v2 hierarchy");
}

/** The cgroup parent of this test run's containers (test/sandbox.sh sets it). */
export function cgroupParent(): string {
  const parent = process.env.TSNET_CGROUP_PARENT;
  if (!parent) throw new Error("TSNET_CGROUP_PARENT is not set: run the tests through test/sandbox.sh");
  return `${cgroupMount()}/${parent}`;
}

/** Container cgroups that exist now (directories under this run's parent). */
export function containerCgroups(): string[] {
  const dir = cgroupParent();
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
}

/** The process's state letter (R, S, T, Z...), or undefined once it is gone and reaped. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

/** Alive: exists and is not a zombie. */
export function alive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== "Z";
}

export function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(" ").filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** Processes whose argv is exactly `argv`, found in /proc. */
export function pidsByArgv(argv: string[]): number[] {
  const want = `${argv.join("\0")}\0`;
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8") === want && alive(p);
    } catch {
      return false;
    }
  });
}

/** nginx's master pid (from its pid file) and its workers (the master's children). */
export function nginxProcesses(dir: string): { master: number; workers: number[] } {
  const master = Number(readFileSync(`${dir}/nginx.pid`, "utf8").trim());
  return { master, workers: childrenOf(master) };
}

/**
 * The process managing a container (the supervisor for `run -d`), from its record: the record
 * names its manager as PID-STARTTIME. Another supervisor may still be on its way out.
 */
export function managerPid(name: string): number {
  const rec = records().find((r) => r.name === name);
  if (!rec?.manager) throw new Error(`no manager recorded for container ${name}`);
  return Number(String(rec.manager).split("-")[0]);
}

/** Removes every container of this sandbox, exited ones too, so each test starts from none. */
/**
 * A fake server (a resolver, an upstream) run as cmd: it prints "ready" once it listens and
 * appends each name it is asked to log. What it was asked, and how to stop it (then cleanup).
 */
export async function askedServer(cmd: string[], log: string, what: string, cleanup?: () => void): Promise<{ asked(): string[]; stop(): Promise<void> }> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "inherit" });
  const first = await (p.stdout as ReadableStream<Uint8Array>).getReader().read();
  if (!new TextDecoder().decode(first.value).includes("ready")) throw new Error(`${what} did not start`);
  return {
    asked: () => readFileSync(log, "utf8").trim().split("\n").filter(Boolean),
    async stop() {
      p.kill();
      await p.exited;
      cleanup?.();
    },
  };
}

/** Bind-mounts a resolv.conf over the throwaway host's /etc/resolv.conf while fn runs. */
export async function withHostResolvConf(text: string, fn: () => Promise<void> | void): Promise<void> {
  const dir = mkdtempSync("/tmp/tsnet-resolv-");
  writeFileSync(`${dir}/resolv.conf`, text);
  const m = sh(["mount", "--bind", `${dir}/resolv.conf`, "/etc/resolv.conf"]);
  if (m.code !== 0) throw new Error(`mount: ${m.stderr}`);
  try {
    await fn();
  } finally {
    sh(["umount", "/etc/resolv.conf"]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The names of the networks `network create` made (not bridge, host, none). */
export function userNetworks(): string[] {
  return tsnet(["network", "ls", "--format", "json"]).stdout.trim().split("\n").filter(Boolean)
    .map((l) => JSON.parse(l)).filter((n) => !["bridge", "host", "none"].includes(n.Name)).map((n) => n.Name);
}

export function removeAllContainers(): void {
  const ids = tsnet(["ps", "-aq"]).stdout.trim().split("\n").filter(Boolean);
  if (ids.length) tsnet(["rm", "-f", ...ids]);
}

/** `tsnet run -d ARGS`: the new container's id; a failure throws, naming the command and its message. */
export function runDetached(args: string[], env?: Record<string, string>): string {
  const r = tsnet(["run", "-d", ...args], { env });
  if (r.code !== 0) throw new Error(`run -d ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * `nft -j` output with what a reload changes by itself taken out: handles, counters, element order.
 * `renamed`: the table's name is taken as "tsnet" (a copy loaded under another name).
 */
export function normalizeNft(j: any, renamed?: string): unknown {
  const strip = (v: any): any => {
    if (renamed !== undefined && v === renamed) return "tsnet";
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === "object") {
      const o: any = {};
      for (const [k, x] of Object.entries(v)) {
        if (k === "handle") continue;
        // Counters count what passed since the rule was made.
        if (k === "counter" && x && typeof x === "object") { o[k] = { packets: 0, bytes: 0 }; continue; }
        o[k] = strip(x);
      }
      // A set's elements are a set: their order in a dump is the hash table's.
      if (Array.isArray(o.elem)) o.elem = [...o.elem].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      return o;
    }
    return v;
  };
  return strip(j.nftables.filter((x: any) => !x.metainfo));
}
