// Shared by the kernel tests. Everything is observed from outside tsnet: ip -j, /proc, curl, ping.
import { readlinkSync, readdirSync, existsSync, readFileSync } from "node:fs";
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
  return { code: p.exitCode ?? 128, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

export function tsnet(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Result {
  return sh([TSNET, ...args], opts);
}

/** `ip -j ...` parsed. */
export function ipj<T = any>(args: string[], netns?: string): T {
  const cmd = netns ? ["ip", "-n", netns, "-j", ...args] : ["ip", "-j", ...args];
  const r = sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout || "[]") as T;
}

export function veths(): string[] {
  return ipj<any[]>(["link", "show", "type", "veth"]).map((l) => l.ifname);
}

export function netnsNames(): string[] {
  return existsSync("/run/netns") ? readdirSync("/run/netns") : [];
}

export function leases(): string[] {
  const dir = "/run/tsnet/networks/bridge/leases";
  return existsSync(dir) ? readdirSync(dir) : [];
}

export function records(): any[] {
  const dir = "/run/tsnet/containers";
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(`${dir}/${f}`, "utf8")));
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
