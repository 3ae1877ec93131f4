// The loopback guard that needs no process (CVE-2020-8558; issue 16). route_localnet stays on
// each tsnet bridge (published ports answer at 127.0.0.1); with only CNI attachments no tsnet
// process runs, so after `nft flush ruleset` nothing puts nf_tables' guard back. A container with
// CAP_NET_RAW then sends a SYN for 127.0.0.1:PORT to its gateway's MAC (test/syn-probe.py): the
// host must not answer. The guard is a cls_bpf filter on the ingress of each container's veth
// (host end). Witnesses: the SYN-ACK that does or does not come back, `tc -j filter show`,
// /proc/sys, curl, /proc (no tsnet process).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { TSNET, assertThrowawayHost, curl, ipj, managerPid, nginxSite, sh, tsnet, waitFor } from "./helpers.ts";

const PROBE = resolve(import.meta.dir, "syn-probe.py");
/** A host service bound to 127.0.0.1 only: what no container may reach. */
const LOOPBACK_PORT = 17777;
const GUARD_HANDLE = "0x74736e74";
const site = nginxSite("guarded\n");
let BIN = "";
let listener: Bun.Subprocess | undefined;
const namespaces = new Set<string>();
const servers: Bun.Subprocess[] = [];

beforeAll(async () => {
  assertThrowawayHost();
  BIN = mkdtempSync("/run/cni-bin-");
  copyFileSync(TSNET, `${BIN}/tsnet`);
  chmodSync(`${BIN}/tsnet`, 0o755);
  listener = Bun.spawn(["python3", "-c", `import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", ${LOOPBACK_PORT})); s.listen(64); time.sleep(3600)`], { stdio: ["ignore", "ignore", "inherit"] });
  await waitFor("the loopback-only service", () => sh(["ss", "-ltnH", `sport = :${LOOPBACK_PORT}`]).stdout.includes("127.0.0.1"));
});

afterAll(() => {
  listener?.kill();
  for (const s of servers) s.kill("SIGKILL");
  tsnet(["rm", "-f", "gprobe"]);
  for (const ns of namespaces) sh(["ip", "netns", "del", ns]);
  for (const n of ["gcni", "gcni2", "grun"]) tsnet(["network", "rm", n]);
  rmSync(site.dir, { recursive: true, force: true });
  rmSync(BIN, { recursive: true, force: true });
});

let seq = 0;
function netns(): string {
  const name = `guard${seq++}`;
  expect(sh(["ip", "netns", "add", name]).code).toBe(0);
  namespaces.add(name);
  return name;
}

/** CNI ADD or DEL as a runtime calls the plugin: CNI_ variables and the configuration on stdin. */
function cni(command: "ADD" | "DEL", id: string, ns: string, conf: unknown): any {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
  Object.assign(env, { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: "eth0", CNI_PATH: BIN });
  const p = Bun.spawnSync([`${BIN}/tsnet`], { stdin: Buffer.from(JSON.stringify(conf)), env });
  if (p.exitCode !== 0) throw new Error(`CNI ${command} failed (${p.exitCode}): ${p.stdout} ${p.stderr}`);
  const out = p.stdout.toString().trim();
  return out ? JSON.parse(out) : undefined;
}

function bridgeOf(network: string): string {
  return JSON.parse(tsnet(["network", "inspect", network]).stdout)[0].Options["com.docker.network.bridge.name"];
}

const macOf = (link: string): string => ipj(["link", "show", "dev", link])[0].address;
const localnet = (bridge: string) => readFileSync(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, "utf8").trim();

/** The filters on a link's ingress as tc reads them (the per-priority heads left out). */
function ingressFilters(link: string): any[] {
  const r = sh(["tc", "-j", "filter", "show", "dev", link, "ingress"]);
  if (r.code !== 0) throw new Error(`tc filter show dev ${link} ingress: ${r.stderr}`);
  return (JSON.parse(r.stdout || "[]") as any[]).filter((f) => f.options);
}

/** The link's ingress holds one filter, and it is the guard. */
function guardOn(link: string): boolean {
  const f = ingressFilters(link);
  return f.length === 1 && f[0].kind === "bpf" && f[0].pref === 1 && f[0].protocol === "all" && f[0].options.handle === GUARD_HANDLE &&
    f[0].options["direct-action"] === true && f[0].options.bytecode?.length === 30;
}

/** The link's clsact qdiscs. */
const clsacts = (link: string): unknown[] => JSON.parse(sh(["tc", "-j", "qdisc", "show", "dev", link]).stdout).filter((q: any) => q.kind === "clsact");

/** The veths attached to a bridge (the containers' ways in). */
const portsOf = (bridge: string): string[] => ipj(["link", "show", "master", bridge, "type", "veth"]).map((l: any) => l.ifname);

/** What the host answers a raw SYN for 127.0.0.1:LOOPBACK_PORT sent from `ns` to its gateway's MAC. */
function probe(ns: string, gatewayMac: string, vlanTags = 0): string {
  const r = sh(["ip", "netns", "exec", ns, "python3", PROBE, "eth0", gatewayMac, String(LOOPBACK_PORT), String(vlanTags), "0.5"]);
  if (r.code !== 0) throw new Error(`syn-probe in ${ns}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Processes running a tsnet executable (by /proc/PID/exe). */
function tsnetProcesses(): number[] {
  const exes = new Set([TSNET, `${BIN}/tsnet`]);
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      return exes.has(readlinkSync(`/proc/${p}/exe`));
    } catch {
      return false;
    }
  });
}

/** The host learns the container's MAC (as any traffic from it would teach it), so replies can leave. */
function greet(ns: string, gateway: string): void {
  expect(sh(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", gateway]).code).toBe(0);
}

describe("CVE-2020-8558 with no tsnet process running", () => {
  test("CNI-only host: after nft flush ruleset a pod's raw SYN to 127.0.0.1 via its gateway gets no SYN-ACK (also under VLAN 0 tags); the guard is on its veth; the port works again after firewall-reload", async () => {
    const ns = netns();
    const conf = { cniVersion: "1.0.0", name: "gcni", type: "tsnet", runtimeConfig: { portMappings: [{ hostPort: 8480, containerPort: 80, protocol: "tcp" }] } };
    const res = cni("ADD", "guard-cni-1", ns, conf);
    const bridge = bridgeOf("gcni");
    const veth = res.interfaces[1].name;
    const gateway = res.ips[0].gateway;
    servers.push(Bun.spawn(["ip", "netns", "exec", ns, ...site.command], { stdio: ["ignore", "ignore", "inherit"] }));
    await waitFor("the published port", () => curl("http://127.0.0.1:8480/").stdout === "guarded\n");
    // No tsnet process (a supervisor left by an earlier test file idles out within seconds).
    await waitFor("no tsnet process", () => tsnetProcesses().length === 0);
    expect(localnet(bridge)).toBe("1");
    greet(ns, gateway);
    const mac = macOf(bridge);

    // Right after the flush, with nothing in between: nobody is there to react, so route_localnet
    // stays on and nf_tables' guard stays gone.
    expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
    expect(probe(ns, mac)).toBe("none");
    expect(guardOn(veth)).toBe(true);
    expect(ingressFilters(bridge)).toEqual([]);
    expect(localnet(bridge)).toBe("1");
    expect(sh(["nft", "list", "table", "inet", "tsnet"]).code).not.toBe(0);
    // The host strips VLAN 0 (priority) tags and still delivers to IP on the bridge.
    for (const tags of [1, 2, 3]) expect(`${tags} tag(s): ${probe(ns, mac, tags)}`).toBe(`${tags} tag(s): none`);

    // The probe itself works: without the veth's guard the same frames get their SYN-ACK.
    expect(sh(["tc", "filter", "del", "dev", veth, "ingress", "pref", "1", "handle", GUARD_HANDLE, "bpf"]).code).toBe(0);
    for (const tags of [0, 1, 3]) expect(`${tags} tag(s): ${probe(ns, mac, tags)}`).toBe(`${tags} tag(s): syn-ack`);

    // firewall-reload puts back tsnet's table, the port and the guard, once.
    const r = tsnet(["firewall-reload"]);
    expect(r.code).toBe(0);
    expect(guardOn(veth)).toBe(true);
    expect(clsacts(veth).length).toBe(1);
    expect(probe(ns, mac)).toBe("none");
    expect(curl("http://127.0.0.1:8480/").stdout).toBe("guarded\n");
    // And once more through a flush: the port from the host's 127.0.0.1, the guard still alone.
    expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
    expect(tsnet(["firewall-reload"]).code).toBe(0);
    expect(curl("http://127.0.0.1:8480/").stdout).toBe("guarded\n");
    expect(guardOn(veth)).toBe(true);
    expect(probe(ns, mac)).toBe("none");
    cni("DEL", "guard-cni-1", ns, conf);
  });

  test("a bridge made by tsnet run: with its manager stopped, a flush leaves route_localnet on and the guard holds", async () => {
    expect(tsnet(["network", "create", "--subnet", "10.94.0.0/24", "grun"]).code).toBe(0);
    const bridge = bridgeOf("grun");
    expect(tsnet(["run", "-d", "--name", "gprobe", "--network", "grun", "--", "sleep", "600"]).code).toBe(0);
    const ns = "tsnet-gprobe";
    const [veth] = portsOf(bridge);
    expect(localnet(bridge)).toBe("1");
    greet(ns, "10.94.0.1");
    const mac = macOf(bridge);
    const sup = managerPid("gprobe");
    process.kill(sup, "SIGSTOP");
    try {
      expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
      expect(probe(ns, mac)).toBe("none");
      expect(probe(ns, mac, 2)).toBe("none");
      expect(localnet(bridge)).toBe("1");
      expect(guardOn(veth!)).toBe(true);
    } finally {
      process.kill(sup, "SIGCONT");
    }
    // The manager restores the table; the guard is still there once.
    await waitFor("tsnet's table back", () => sh(["nft", "list", "table", "inet", "tsnet"]).code === 0, 2000);
    await waitFor("route_localnet on", () => localnet(bridge) === "1", 2000);
    expect(guardOn(veth!)).toBe(true);
    expect(tsnet(["rm", "-f", "gprobe"]).code).toBe(0);
  });

  test("each veth has the guard once, through repeated ADDs, runs and reloads; an older or missing one is put back before route_localnet goes on; it goes with the veth", async () => {
    const conf = { cniVersion: "1.0.0", name: "gcni2", type: "tsnet" };
    const added: [string, string, string][] = [];
    for (let i = 0; i < 3; i++) {
      const ns = netns();
      const res = cni("ADD", `guard-many-${i}`, ns, conf);
      added.push([`guard-many-${i}`, ns, res.interfaces[1].name]);
    }
    const bridge = bridgeOf("gcni2");
    const run = Bun.spawn([TSNET, "run", "--rm", "--network", "gcni2", "--", "sleep", "30"], { stdio: ["ignore", "ignore", "inherit"] });
    try {
      await waitFor("the run's veth", () => portsOf(bridge).length === 4);
      for (let i = 0; i < 2; i++) {
        expect(tsnet(["run", "--rm", "--network", "gcni2", "--", "true"]).code).toBe(0);
        expect(tsnet(["firewall-reload"]).code).toBe(0);
        expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
        expect(tsnet(["firewall-reload"]).code).toBe(0);
      }
      const ports = portsOf(bridge);
      expect(ports.length).toBe(4);
      for (const p of ports) {
        expect(`${p}: ${guardOn(p)}`).toBe(`${p}: true`);
        expect(clsacts(p).length).toBe(1);
      }
      // Runs started at once: each adds its veth's guard while the others' restores check every
      // veth of the bridge (a run's first check comes 50 ms after it starts); still one each.
      const many = Array.from({ length: 6 }, () => Bun.spawn([TSNET, "run", "--rm", "--network", "gcni2", "--", "sleep", "1"], { stdio: ["ignore", "ignore", "pipe"] }));
      await waitFor("the six runs' veths", () => portsOf(bridge).length === 10);
      for (const p of portsOf(bridge)) {
        // A run whose `sleep 1` ended meanwhile took its veth along (seen on a loaded machine).
        const on = (() => {
          try {
            return guardOn(p);
          } catch (e) {
            if (sh(["ip", "link", "show", p]).code !== 0) return "gone";
            throw e;
          }
        })();
        if (on !== "gone") expect(`${p}: ${on}`).toBe(`${p}: true`);
      }
      for (const p of many) expect(await p.exited).toBe(0);
      await waitFor("the six runs' veths to go", () => portsOf(bridge).length === 4);
      // The bridge itself carries none (see src/network/guard.ts).
      expect(ingressFilters(bridge)).toEqual([]);
      const ours = ingressFilters(ports[0]!)[0].options.bytecode;

      // A program at the guard's handle that guards nothing (an older tsnet's, or tampering), and
      // a veth whose qdisc was deleted by hand: both are put back before route_localnet goes on.
      const [first, second] = [added[0]![2], added[1]![2]];
      expect(sh(["tc", "filter", "replace", "dev", first, "ingress", "pref", "1", "handle", GUARD_HANDLE, "protocol", "all", "bpf", "da", "bytecode", "1,6 0 0 4294967295"]).code).toBe(0);
      expect(ingressFilters(first)[0].options.bytecode).not.toEqual(ours);
      expect(sh(["tc", "qdisc", "del", "dev", second, "clsact"]).code).toBe(0);
      expect(ingressFilters(second)).toEqual([]);
      expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
      expect(tsnet(["firewall-reload"]).code).toBe(0);
      for (const p of [first, second]) {
        expect(`${p}: ${guardOn(p)}`).toBe(`${p}: true`);
        expect(ingressFilters(p)[0].options.bytecode).toEqual(ours);
        expect(clsacts(p).length).toBe(1);
      }
    } finally {
      run.kill();
      await run.exited;
    }

    for (const [id, ns] of added) cni("DEL", id, ns, conf);
    for (const [, ns] of added) {
      sh(["ip", "netns", "del", ns]);
      namespaces.delete(ns);
    }
    await waitFor("the veths to go", () => portsOf(bridge).length === 0);
    for (const [, , veth] of added) expect(sh(["tc", "filter", "show", "dev", veth, "ingress"]).code).not.toBe(0);
    expect(tsnet(["network", "rm", "gcni2"]).code).toBe(0);
  });
});
