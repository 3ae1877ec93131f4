// tsnet as a CNI plugin against the reference plugins on the same work (issue 12: ADD + DEL with
// one port mapping at least 10x faster than bridge + portmap). Run inside a throwaway host:
// npm run bench:cni.
//
// Each tool is driven as libcni drives a network configuration list: ADD runs each plugin in
// order, each given the previous result as prevResult; DEL runs them in reverse, each given the
// ADD's final result. One exec per plugin, the configuration on stdin, CNI_* in the environment;
// the runtime is this process, so a cycle's time is the plugins'. The work is the same for both:
// a bridge with the gateway address, masquerade, hairpin mode, an address from the plugin's
// IPAM, a default route, and one port mapping (8080 -> 80/tcp) with hairpin and localhost
// masquerade. The namespace is made before and removed after each cycle, untimed, as a runtime
// does around its plugin calls.
//
// Rounds alternate which tool goes first. Reported: medians of ADD, DEL, ADD + DEL, and the
// median of the per-round ratios with its range. As a runtime does, the namespace is removed
// after DEL (`ip netns del`); a tsnet DEL whose namespace has no process in it leaves the veth to
// the namespace's removal (the kernel's cleanup worker deletes it), where the reference DEL
// deletes it, waiting for the kernel's rcu_barrier(). So "DEL, then the namespace removed, until
// the veth is gone" is measured too, by polling a sysfs mounted here (the one at /sys shows the
// machine's namespace, not the throwaway host's); before the next cycle starts every veth of the
// last one must be gone, so no tool's leftover work runs during another's cycle.
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { referenceConfList, type ConfList } from "./lib/cni.ts";

const ROOT = `${import.meta.dir}/..`;
const ROUNDS = Number(process.env.ROUNDS ?? 40);
const WORK = "/run/bench-cni";
const REF_DIR = ["/usr/lib/cni", "/opt/cni/bin"].find((d) => ["bridge", "host-local", "portmap"].every((p) => existsSync(`${d}/${p}`)));

if (process.env.TSNET_THROWAWAY_HOST !== "1") {
  console.error("bench/cni.ts makes bridges, namespaces and firewall rules: run it inside test/sandbox.sh (npm run bench:cni)");
  process.exit(1);
}
if (!REF_DIR) {
  console.error("bench/cni.ts: the reference plugins (bridge, host-local, portmap) are not in /usr/lib/cni or /opt/cni/bin: apt-get install containernetworking-plugins");
  process.exit(1);
}
if (!Bun.which("iptables")) {
  console.error("bench/cni.ts: iptables is missing (the reference portmap and bridge's ipMasq use it): apt-get install iptables");
  process.exit(1);
}

type Plugin = ConfList["plugins"][number];
interface Tool {
  name: string;
  dir: string;
  list: ConfList;
}

rmSync(WORK, { recursive: true, force: true });
mkdirSync(`${WORK}/bin`, { recursive: true });
mkdirSync(`${WORK}/sys`);
if (Bun.spawnSync(["mount", "-t", "sysfs", "bench-sysfs", `${WORK}/sys`]).exitCode !== 0) throw new Error("cannot mount sysfs");
copyFileSync(`${ROOT}/dist/tsnet`, `${WORK}/bin/tsnet`);
Bun.spawnSync(["chmod", "755", `${WORK}/bin/tsnet`]);

const reference: Tool = { name: "bridge + host-local + portmap", dir: REF_DIR, list: referenceConfList("bench-ref", `${WORK}/ipam`) };
const tsnet: Tool = {
  name: "tsnet",
  dir: `${WORK}/bin`,
  list: {
    cniVersion: "1.0.0",
    name: "bench-tsnet",
    plugins: [{ type: "tsnet", bridge: "tsnet-bench", subnet: "10.98.0.0/16", isGateway: true, ipMasq: true, hairpinMode: true, capabilities: { portMappings: true } }],
  },
};

const PORTS = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }];
const BASE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CNI_")));

function exec(tool: Tool, command: "ADD" | "DEL", plugin: Plugin, id: string, netns: string, ports: boolean, prev?: unknown): unknown {
  const { capabilities, ...rest } = plugin;
  const conf: Record<string, unknown> = { cniVersion: tool.list.cniVersion, name: tool.list.name, ...rest };
  if (prev) conf.prevResult = prev;
  if (capabilities?.portMappings && ports) conf.runtimeConfig = { portMappings: PORTS };
  const p = Bun.spawnSync([`${tool.dir}/${plugin.type}`], {
    stdin: Buffer.from(JSON.stringify(conf)),
    env: { ...BASE_ENV, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: "eth0", CNI_PATH: tool.dir },
  });
  if (p.exitCode !== 0) throw new Error(`${plugin.type} ${command} failed (${p.exitCode}): ${p.stdout} ${p.stderr}`);
  return command === "ADD" ? JSON.parse(p.stdout.toString()) : undefined;
}

let seq = 0;
interface Cycle {
  add: number;
  del: number;
  gone: number;
}

function cycle(tool: Tool, ports: boolean): Cycle {
  const ns = `bcni${seq}`;
  const id = `bench${seq++}`;
  const netns = `/run/netns/${ns}`;
  if (Bun.spawnSync(["ip", "netns", "add", ns]).exitCode !== 0) throw new Error(`ip netns add ${ns} failed`);
  try {
    const t0 = performance.now();
    let result: unknown;
    for (const p of tool.list.plugins) result = exec(tool, "ADD", p, id, netns, ports, result);
    const t1 = performance.now();
    const veths = ((result as { interfaces?: { name: string; sandbox?: string }[] }).interfaces ?? []).filter((i) => !i.sandbox && i.name.startsWith("veth")).map((i) => i.name);
    if (veths.length !== 1) throw new Error(`${tool.name}: the ADD result names no host veth: ${JSON.stringify(result)}`);
    for (const p of [...tool.list.plugins].reverse()) exec(tool, "DEL", p, id, netns, ports, result);
    const t2 = performance.now();
    // What a runtime does next: the namespace goes. Then, until the host end is gone from this
    // namespace's sysfs (polled every 0.2 ms).
    Bun.spawnSync(["ip", "netns", "del", ns]);
    const deadline = t2 + 5000;
    while (veths.some((v) => existsSync(`${WORK}/sys/class/net/${v}`))) {
      if (performance.now() > deadline) throw new Error(`${tool.name}: ${veths.join(", ")} still there 5 s after DEL`);
      Bun.sleepSync(0.2);
    }
    const t3 = performance.now();
    return { add: t1 - t0, del: t2 - t1, gone: t3 - t1 };
  } finally {
    if (existsSync(netns)) Bun.spawnSync(["ip", "netns", "del", ns]);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const q = (xs: number[], f: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * f))]!;

// Warm-up: bridges, tables, the plugins' pages in the page cache.
for (let i = 0; i < 3; i++) for (const t of [reference, tsnet]) for (const ports of [true, false]) cycle(t, ports);

console.log(`CNI ADD + DEL, ${ROUNDS} interleaved rounds, medians (ms); CNI_IFNAME eth0, a fresh namespace per cycle`);
console.log(`reference plugins: ${REF_DIR}; tsnet: dist/tsnet as ${WORK}/bin/tsnet\n`);
console.log("| work | tool | ADD | DEL | ADD + DEL | DEL, then the namespace removed, until the veth is gone | reference / tsnet, ADD + DEL (median of rounds, 10th-90th pct) | the same, until the veth is gone |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|");
const verdict: string[] = [];
for (const ports of [true, false]) {
  const ref: Cycle[] = [];
  const ts: Cycle[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    if (i % 2 === 0) {
      ref.push(cycle(reference, ports));
      ts.push(cycle(tsnet, ports));
    } else {
      ts.push(cycle(tsnet, ports));
      ref.push(cycle(reference, ports));
    }
  }
  const ratios = ref.map((r, i) => (r.add + r.del) / (ts[i]!.add + ts[i]!.del));
  const ratiosGone = ref.map((r, i) => (r.add + r.gone) / (ts[i]!.add + ts[i]!.gone));
  const work = ports ? "one port mapping" : "no port mapping";
  const row = (t: Tool, cs: Cycle[], last: string) =>
    console.log(`| ${work} | ${t.name} | ${median(cs.map((c) => c.add)).toFixed(1)} | ${median(cs.map((c) => c.del)).toFixed(1)} | ${median(cs.map((c) => c.add + c.del)).toFixed(1)} | ${median(cs.map((c) => c.gone)).toFixed(1)} | ${last}`);
  row(reference, ref, " | |");
  row(tsnet, ts, ` **${median(ratios).toFixed(1)}x** (${q(ratios, 0.1).toFixed(1)}-${q(ratios, 0.9).toFixed(1)}) | ${median(ratiosGone).toFixed(1)}x (${q(ratiosGone, 0.1).toFixed(1)}-${q(ratiosGone, 0.9).toFixed(1)}) |`);
  if (ports) verdict.push(`ADD + DEL with one port mapping: tsnet ${median(ratios).toFixed(1)}x faster than bridge + portmap (target 10x): ${median(ratios) >= 10 ? "MET" : "NOT MET"}`);
}
console.log(`\n${verdict.join("\n")}`);
Bun.spawnSync(["umount", `${WORK}/sys`]);
rmSync(WORK, { recursive: true, force: true });
