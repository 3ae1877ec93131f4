// tsnet as a CNI plugin (issue 12), driven as a runtime drives a plugin: dist/tsnet installed in a
// CNI_PATH directory as `tsnet`, the request in CNI_* variables and the configuration on stdin.
// Judged from outside: ip -j, nft -j, curl, ping, the reference plugins (loopback, tuning,
// portmap, host-local) chained with it, and Podman 4 with its CNI backend.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import {
  TSNET, assertThrowawayHost, curl, ipj, leases, useNeighbour, nginxSite, sh, startContainer, tsnet, veths, waitFor,
} from "./helpers.ts";

const REFERENCE = "/usr/lib/cni";
const site = nginxSite("hello from a CNI container\n");
let BIN = "";
const namespaces = new Set<string>();
const servers: Bun.Subprocess[] = [];
let natTablesBefore: string[] = [];

useNeighbour();
beforeAll(() => {
  assertThrowawayHost();
  for (const p of ["loopback", "tuning", "portmap", "host-local", "bridge"]) {
    if (!existsSync(`${REFERENCE}/${p}`)) throw new Error(`${REFERENCE}/${p} is missing: test/deps.sh installs containernetworking-plugins`);
  }
  // A runtime's plugin directory: tsnet under the name a configuration's "type" gives it, beside
  // the reference plugins it is chained with.
  BIN = mkdtempSync("/run/cni-bin-");
  copyFileSync(TSNET, `${BIN}/tsnet`);
  chmodSync(`${BIN}/tsnet`, 0o755);
  for (const p of ["loopback", "tuning", "portmap", "host-local", "bridge"]) symlinkSync(`${REFERENCE}/${p}`, `${BIN}/${p}`);
  natTablesBefore = ["ip", "ip6"].filter((f) => sh(["nft", "list", "table", f, "nat"]).code === 0);
});

afterAll(async () => {
  for (const s of servers) s.kill("SIGKILL");
  for (const ns of namespaces) sh(["ip", "netns", "del", ns]);
  // Whatever a failed test left attached goes by GC with nothing valid; the veths' deletion was
  // handed to helpers: wait for them, then remove the networks made here.
  for (const name of cniNetworks()) plugin("tsnet", { CNI_COMMAND: "GC", CNI_PATH: BIN }, { cniVersion: "1.1.0", name, type: "tsnet" });
  await waitFor("the CNI veths to go", () => veths().length === 0);
  for (const n of JSON.parse(tsnet(["network", "inspect", ...cniNetworks()]).stdout || "[]") as { Name: string }[]) tsnet(["network", "rm", n.Name]);
  rmSync(site.dir, { recursive: true, force: true });
  rmSync(BIN, { recursive: true, force: true });
});

/** Networks the plugin made (their label says so). */
function cniNetworks(): string[] {
  return tsnet(["network", "ls", "--format", "json"]).stdout.trim().split("\n").filter(Boolean)
    .map((l) => JSON.parse(l)).filter((n) => n.Labels?.["tsnet.cni"]).map((n) => n.Name);
}

let nsSeq = 0;
/** A namespace as a runtime makes one before ADD. */
function netns(): { name: string; path: string } {
  const name = `cni${process.pid % 1000}-${nsSeq++}`;
  const r = sh(["ip", "netns", "add", name]);
  if (r.code !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
  namespaces.add(name);
  return { name, path: `/run/netns/${name}` };
}
function dropNetns(name: string): void {
  sh(["ip", "netns", "del", name]);
  namespaces.delete(name);
}

interface Call {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json?: any;
}

/**
 * Runs a plugin as a runtime does: exactly the given CNI_ variables (others removed from the
 * environment, so "missing" means missing) and the configuration on stdin.
 */
function plugin(type: string, vars: Record<string, string | undefined>, conf: unknown): Call {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) env[k] = v;
  const p = Bun.spawnSync([`${BIN}/${type}`], { stdin: Buffer.from(typeof conf === "string" ? conf : JSON.stringify(conf)), env });
  const stdout = p.stdout.toString();
  let json: any;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {}
  return { code: p.exitCode ?? -1, stdout, stderr: p.stderr.toString(), json };
}

interface Attachment {
  id: string;
  ns: { name: string; path: string };
  ifname?: string;
}

function vars(command: string, a: Attachment): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: a.id, CNI_NETNS: a.ns.path, CNI_IFNAME: a.ifname ?? "eth0", CNI_PATH: BIN };
}

function tsnetCni(command: string, a: Attachment, conf: unknown): Call {
  return plugin("tsnet", vars(command, a), conf);
}

function mustAdd(a: Attachment, conf: unknown): any {
  const r = tsnetCni("ADD", a, conf);
  if (r.code !== 0) throw new Error(`ADD failed (${r.code}): ${r.stdout} ${r.stderr}`);
  return r.json;
}

/** A configuration list run as libcni runs one: ADD in order with prevResult, DEL in reverse. */
interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}
function request(list: ConfList, p: Record<string, unknown>, prev: unknown, rt: Record<string, unknown>): Record<string, unknown> {
  const { capabilities, ...rest } = p as { capabilities?: Record<string, boolean> };
  const conf: Record<string, unknown> = { cniVersion: list.cniVersion, name: list.name, ...rest };
  const runtimeConfig = Object.fromEntries(Object.entries(rt).filter(([k]) => capabilities?.[k]));
  if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
  if (prev !== undefined) conf.prevResult = prev;
  return conf;
}
function listAdd(list: ConfList, a: Attachment, rt: Record<string, unknown> = {}): any {
  let prev: unknown;
  for (const p of list.plugins) {
    const r = plugin(p.type as string, vars("ADD", a), request(list, p, prev, rt));
    if (r.code !== 0) throw new Error(`${p.type} ADD failed (${r.code}): ${r.stdout} ${r.stderr}`);
    prev = r.json;
  }
  return prev;
}
function listRun(command: "DEL" | "CHECK", list: ConfList, a: Attachment, result: unknown, rt: Record<string, unknown> = {}): Call[] {
  const order = command === "DEL" ? [...list.plugins].reverse() : list.plugins;
  return order.map((p) => plugin(p.type as string, vars(command, a), request(list, p, result, rt)));
}

/** A deep copy: bun's matchers write asymmetric matchers into the object they inspect. */
const copy = <T>(x: T): T => JSON.parse(JSON.stringify(x));

let idSeq = 0;
const newId = () => `c${Date.now().toString(36)}${(idSeq++).toString(36)}`;

const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
// A port's map element (`tcp . 8320 comment ... : ADDRESS . 80`): a plain search for the number
// would also find it inside a bridge's random name.
const elementFor = (port: number) => new RegExp(` \\. ${port} `);
function leasesOf(net: string): string[] {
  const id = JSON.parse(tsnet(["network", "inspect", net]).stdout)[0].Id;
  const dir = `/run/tsnet/networks/${id}/leases`;
  return existsSync(dir) ? readdirSync(dir) : [];
}
/** The attachment records tsnet keeps for a network (one per container and interface). */
function attachmentsOf(net: string): string[] {
  const dir = `/run/tsnet/cni/${net}`;
  return existsSync(dir) ? readdirSync(dir) : [];
}
// Asked of the kernel with ip: /sys/class/net is the sysfs of the machine's namespace, not this one.
const linkGone = (name: string) => sh(["ip", "link", "show", name]).code !== 0;
/**
 * A namespace after DEL: no eth0, no address on anything but lo, no route of either family; only
 * lo and pairs set aside (down, named gone-tsnetN) are left.
 */
function expectBare(ns: string): void {
  const links = ipj<any[]>(["addr", "show"], ns);
  expect(links.map((l) => l.ifname).filter((n) => n !== "lo" && !/^gone-tsnet\d+$/.test(n))).toEqual([]);
  for (const l of links.filter((l) => l.ifname !== "lo")) {
    expect(l.operstate).toBe("DOWN");
    expect(l.addr_info).toEqual([]);
  }
  expect(ipj(["-4", "route", "show", "table", "all"], ns).filter((r: any) => r.dev !== "lo")).toEqual([]);
  expect(ipj(["-6", "route", "show", "table", "all"], ns).filter((r: any) => r.dev !== "lo")).toEqual([]);
}

async function serving(url: string, netns?: string): Promise<string> {
  return await waitFor(`${url} to answer`, () => {
    const r = curl(url, netns);
    return r.code === 0 && r.stdout;
  });
}

/** nginx inside a namespace, as a container's process. */
function serveIn(ns: string): Bun.Subprocess {
  const p = Bun.spawn(["ip", "netns", "exec", ns, ...site.command], { stdio: ["ignore", "ignore", "ignore"] });
  servers.push(p);
  return p;
}

describe("ADD, CHECK and DEL with a configuration of three keys", () => {
  test("ADD makes the network, the veth, the address and the route; the result says so; CHECK passes; DEL removes it all, twice; the veth goes with the namespace", async () => {
    const conf = { cniVersion: "1.0.0", name: "plain", type: "tsnet" };
    const a: Attachment = { id: newId(), ns: netns() };
    const r = tsnetCni("ADD", a, conf);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const res = r.json;
    expect(res.cniVersion).toBe("1.0.0");
    // The network is a tsnet network, made on this first ADD.
    const net = JSON.parse(tsnet(["network", "inspect", "plain"]).stdout)[0];
    const bridge = net.Options["com.docker.network.bridge.name"];
    const [eth0] = ipj(["addr", "show", "eth0"], a.ns.name);
    const v4 = eth0.addr_info.find((x: any) => x.family === "inet");
    expect(copy(res.interfaces)).toEqual([
      { name: bridge, mac: ipj(["link", "show", bridge])[0].address },
      { name: expect.stringMatching(/^veth[0-9a-f]{7}$/), mac: expect.stringMatching(/^[0-9a-f:]{17}$/) },
      { name: "eth0", mac: eth0.address, sandbox: a.ns.path },
    ]);
    const gateway = net.IPAM.Config[0].Gateway;
    expect(res.ips).toEqual([{ address: `${v4.local}/${v4.prefixlen}`, gateway, interface: 2 }]);
    expect(res.routes).toEqual([{ dst: "0.0.0.0/0", gw: gateway }]);
    expect(`${v4.local}/${v4.prefixlen}`.startsWith(net.IPAM.Config[0].Subnet.split(".").slice(0, 3).join("."))).toBe(true);
    // Kernel: eth0 up inside, default route via the bridge's address, host end on the bridge.
    expect(eth0.operstate).toBe("UP");
    expect(ipj(["route", "show", "default"], a.ns.name)[0]).toMatchObject({ gateway, dev: "eth0" });
    const hostEnd = ipj(["link", "show", res.interfaces[1].name])[0];
    expect(hostEnd.master).toBe(bridge);
    expect(ipj(["-4", "addr", "show", bridge])[0].addr_info[0].local).toBe(gateway);
    expect(tsnet(["network", "ls", "--format", "{{.Name}}"]).stdout).toContain("plain\n");
    expect(leasesOf("plain")).toEqual([v4.local]);
    // The container reaches the host through its gateway.
    expect(sh(["ip", "netns", "exec", a.ns.name, "ping", "-c1", "-W2", gateway]).code).toBe(0);

    const check = tsnetCni("CHECK", a, { ...conf, prevResult: res });
    expect(check).toMatchObject({ code: 0, stdout: "", stderr: "" });

    // No process is in the namespace (a runtime stops the container's processes before DEL, and
    // removes the namespace after it). When DEL returns, the namespace has no eth0, address or
    // route left, and the host end is no port of the bridge: the pair is set aside, down, under
    // another name at both ends, and goes with the namespace.
    const hostIndex = hostEnd.ifindex;
    const del = tsnetCni("DEL", a, { ...conf, prevResult: res });
    expect(del).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expectBare(a.ns.name);
    expect(linkGone(res.interfaces[1].name)).toBe(true);
    expect(ipj(["link", "show", "master", bridge])).toEqual([]);
    const aside = ipj(["link", "show"]).find((l: any) => l.ifindex === hostIndex);
    expect(aside).toMatchObject({ ifname: expect.stringMatching(/^gone-tsnet\d+$/), operstate: "DOWN" });
    expect(aside.master).toBeUndefined();
    expect(leasesOf("plain")).toEqual([]);
    expect(attachmentsOf("plain")).toEqual([]);
    // DEL again: nothing left to remove is not an error.
    expect(tsnetCni("DEL", a, { ...conf, prevResult: res })).toMatchObject({ code: 0, stdout: "" });
    dropNetns(a.ns.name);
    await waitFor("the pair to go with its namespace", () => !ipj(["link", "show"]).some((l: any) => l.ifindex === hostIndex));
  });

  test("DEL while a process is in the namespace (podman network disconnect) takes the interface away at once; a namespace kept after DEL takes the same attachment again", async () => {
    const conf = { cniVersion: "1.0.0", name: "plain", type: "tsnet" };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    const proc = Bun.spawn(["ip", "netns", "exec", a.ns.name, "sleep", "60"], { stdio: ["ignore", "ignore", "ignore"] });
    try {
      await waitFor("the process in the namespace", () => sh(["ip", "netns", "pids", a.ns.name]).stdout.trim() !== "");
      expect(tsnetCni("DEL", a, conf).code).toBe(0);
      expectBare(a.ns.name);
      expect(linkGone(res.interfaces[1].name)).toBe(true);
    } finally {
      proc.kill();
      await proc.exited;
    }
    // A runtime that keeps the namespace and ADDs the same container again gets the same names;
    // DEL after DEL into that namespace leaves at most one pair set aside there at any time (each
    // ADD deletes the one before), inside and on the host, and a GC leaves none.
    const goneInside = () => ipj<any[]>(["link", "show"], a.ns.name).filter((l) => /^gone-tsnet\d+$/.test(l.ifname));
    const hostEndsOf = (inside: any[]) => ipj<any[]>(["link", "show"]).filter((l) => inside.some((i) => i.link_index === l.ifindex));
    expect(goneInside()).toHaveLength(1);
    let res2 = res;
    for (let i = 0; i < 4; i++) {
      const again = mustAdd(a, conf);
      expect(again.interfaces[1].name).toBe(res2.interfaces[1].name);
      expect(ipj(["link", "show", again.interfaces[1].name])[0].flags).toContain("UP");
      expect(goneInside()).toEqual([]);
      expect(tsnetCni("CHECK", a, { ...conf, prevResult: again }).code).toBe(0);
      expect(tsnetCni("DEL", a, conf).code).toBe(0);
      expectBare(a.ns.name);
      const aside = goneInside();
      expect(aside).toHaveLength(1);
      expect(aside[0].operstate).toBe("DOWN");
      // Its host end, by the ifindex the inside end names as its peer: set aside too, on no bridge.
      const [hostEnd] = hostEndsOf(aside);
      expect(hostEnd).toMatchObject({ ifname: expect.stringMatching(/^gone-tsnet\d+$/), operstate: "DOWN" });
      expect(hostEnd.master).toBeUndefined();
      res2 = again;
    }
    const last = goneInside();
    const gc = plugin("tsnet", { CNI_COMMAND: "GC", CNI_PATH: BIN }, { ...conf, cniVersion: "1.1.0", "cni.dev/valid-attachments": [] });
    expect(gc.code).toBe(0);
    expect(goneInside()).toEqual([]);
    expect(hostEndsOf(last)).toEqual([]);
  });

  test("after DEL, the reference bridge plugin ADDs eth0 into the same namespace, which keeps no address of tsnet's", async () => {
    const conf = { cniVersion: "1.0.0", name: "plain", type: "tsnet" };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    const old = res.ips[0].address.split("/")[0];
    expect(tsnetCni("DEL", a, conf).code).toBe(0);
    // tsnet released the lease: the address must not stay in a namespace its runtime keeps.
    expect(leasesOf("plain")).not.toContain(old);
    expect(JSON.stringify(ipj(["addr", "show"], a.ns.name))).not.toContain(`"${old}"`);
    const ref = { cniVersion: "1.0.0", name: "reference", type: "bridge", bridge: "refbr0", ipam: { type: "host-local", subnet: "10.97.0.0/24" } };
    try {
      const r = plugin("bridge", vars("ADD", a), ref);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const [eth0] = ipj(["-4", "addr", "show", "eth0"], a.ns.name);
      expect(eth0.addr_info.map((x: any) => x.local)).toEqual([r.json.ips[0].address.split("/")[0]]);
      expect(ipj(["route", "show", "default"], a.ns.name)).toEqual([]);
      expect(plugin("bridge", vars("DEL", a), ref).code).toBe(0);
    } finally {
      sh(["ip", "link", "del", "refbr0"]);
    }
    dropNetns(a.ns.name);
  });

  test("CHECK finds what was changed behind tsnet's back: an address, the default route, the interface", async () => {
    const conf = { cniVersion: "1.1.0", name: "checked", type: "tsnet" };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    const address = res.ips[0].address;
    expect(tsnetCni("CHECK", a, conf)).toMatchObject({ code: 1, json: { code: 7, msg: expect.stringContaining("prevResult") } });
    sh(["ip", "-n", a.ns.name, "route", "del", "default"]);
    let r = tsnetCni("CHECK", a, { ...conf, prevResult: res });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ cniVersion: "1.1.0", code: 101 });
    expect(r.json.msg).toContain(`the default route via ${res.ips[0].gateway} is missing`);
    expect(r.stderr).toMatch(/^tsnet: CNI CHECK: .*default route.*\n$/);
    sh(["ip", "-n", a.ns.name, "addr", "del", address, "dev", "eth0"]);
    r = tsnetCni("CHECK", a, { ...conf, prevResult: res });
    expect(r.json.msg).toContain(`eth0 lacks address ${address}`);
    sh(["ip", "-n", a.ns.name, "link", "set", "eth0", "down"]);
    expect(tsnetCni("CHECK", a, { ...conf, prevResult: res }).json.msg).toContain("eth0 is down");
    expect(tsnetCni("DEL", a, { ...conf, prevResult: res }).code).toBe(0);
    // After DEL there is nothing to check.
    expect(tsnetCni("CHECK", a, { ...conf, prevResult: res }).json.msg).toContain("no such attachment");
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
  });
});

describe("versions", () => {
  for (const v of ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) {
    test(`a ${v} configuration gets a ${v} result`, async () => {
      const conf = { cniVersion: v, name: "versions", type: "tsnet" };
      const a: Attachment = { id: newId(), ns: netns() };
      const res = mustAdd(a, conf);
      expect(res.cniVersion).toBe(v);
      // 0.3 and 0.4 results carry the address family on each ip; 1.0 dropped it.
      if (v.startsWith("0.")) expect(copy(res.ips[0])).toMatchObject({ version: "4", interface: 2 });
      else expect(res.ips[0].version).toBeUndefined();
      expect(tsnetCni("DEL", a, { ...conf, prevResult: res }).code).toBe(0);
      dropNetns(a.ns.name);
      await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
    });
  }

  test("VERSION lists the supported versions, answering in the version asked (libcni's probe: CNI_NETNS=dummy)", () => {
    const r = plugin("tsnet", { CNI_COMMAND: "VERSION", CNI_NETNS: "dummy", CNI_IFNAME: "dummy", CNI_PATH: "dummy" }, { cniVersion: "0.4.0" });
    expect(r).toMatchObject({ code: 0, stderr: "", json: { cniVersion: "0.4.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] } });
    expect(plugin("tsnet", { CNI_COMMAND: "VERSION" }, "").json.cniVersion).toBe("1.1.0");
  });

  test("an unknown version is error 1, and so are CHECK before 0.4.0 and GC and STATUS before 1.1.0", () => {
    const a: Attachment = { id: newId(), ns: netns() };
    for (const v of ["0.2.0", "2.0.0", undefined]) {
      const r = tsnetCni("ADD", a, { cniVersion: v, name: "versions", type: "tsnet" });
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code: 1, msg: "incompatible CNI versions", details: expect.stringContaining("0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0") });
    }
    expect(tsnetCni("CHECK", a, { cniVersion: "0.3.1", name: "versions", type: "tsnet", prevResult: {} }).json).toMatchObject({ code: 1, msg: "configuration version 0.3.1 does not allow CHECK" });
    for (const cmd of ["GC", "STATUS"]) expect(plugin("tsnet", { CNI_COMMAND: cmd, CNI_PATH: BIN }, { cniVersion: "1.0.0", name: "versions", type: "tsnet" }).json.code).toBe(1);
    expect(ipj(["link", "show"], a.ns.name).map((l: any) => l.ifname)).toEqual(["lo"]);
    dropNetns(a.ns.name);
  });
});

describe("the spec's error cases leave nothing made", () => {
  const conf = { cniVersion: "1.0.0", name: "errors", type: "tsnet" };
  let ns: { name: string; path: string };
  let leasesBefore: string[] = [];
  // A process in the namespace, as in a running container: a DEL deletes the interface at once.
  let inside: Bun.Subprocess;
  beforeAll(async () => {
    ns = netns();
    leasesBefore = leases().sort();
    inside = Bun.spawn(["ip", "netns", "exec", ns.name, "sleep", "600"], { stdio: ["ignore", "ignore", "ignore"] });
    await waitFor("the process in the namespace", () => sh(["ip", "netns", "pids", ns.name]).stdout.trim() !== "");
  });
  afterAll(async () => {
    inside.kill();
    await inside.exited;
    dropNetns(ns.name);
  });

  /** No interface in the namespace (but pairs a DEL set aside), no lease and no attachment record anywhere. */
  const nothingMade = () => {
    expect(ipj(["link", "show"], ns.name).map((l: any) => l.ifname).filter((n: string) => !/^gone-tsnet\d+$/.test(n))).toEqual(["lo"]);
    expect(leases().sort()).toEqual(leasesBefore);
    expect(existsSync("/run/tsnet/cni") ? readdirSync("/run/tsnet/cni").flatMap((d) => readdirSync(`/run/tsnet/cni/${d}`)) : []).toEqual([]);
  };

  const cases: [string, Record<string, string | undefined>, unknown, number, string][] = [
    ["an empty CNI_COMMAND", { CNI_COMMAND: "" }, conf, 4, "CNI_COMMAND"],
    ["an unknown CNI_COMMAND", { CNI_COMMAND: "ATTACH" }, conf, 4, 'unknown CNI_COMMAND "ATTACH"'],
    ["ADD without CNI_CONTAINERID and CNI_IFNAME", { CNI_COMMAND: "ADD", CNI_NETNS: "/run/netns/x" }, conf, 4, "CNI_CONTAINERID, CNI_IFNAME"],
    ["ADD without CNI_NETNS", { CNI_COMMAND: "ADD", CNI_CONTAINERID: "x1", CNI_IFNAME: "eth0" }, conf, 4, "CNI_NETNS"],
    ["an interface name with a slash", { CNI_COMMAND: "ADD", CNI_CONTAINERID: "x1", CNI_IFNAME: "eth/0", CNI_NETNS: "/run/netns/x" }, conf, 4, 'invalid CNI_IFNAME "eth/0"'],
    ["a container id with a space", { CNI_COMMAND: "ADD", CNI_CONTAINERID: "a b", CNI_IFNAME: "eth0", CNI_NETNS: "/run/netns/x" }, conf, 4, "invalid CNI_CONTAINERID"],
  ];
  for (const [what, env, c, code, says] of cases) {
    test(`${what}: error ${code}`, () => {
      const r = plugin("tsnet", env, c);
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ cniVersion: "1.0.0", code, msg: expect.stringContaining(says) });
      expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
      nothingMade();
    });
  }

  test("configurations that are not JSON, have no name, or ask for what tsnet does not do", () => {
    const a = () => ({ id: newId(), ns });
    expect(tsnetCni("ADD", a(), "{not json").json).toMatchObject({ code: 6, msg: expect.stringContaining("not JSON") });
    expect(tsnetCni("ADD", a(), "[1]").json).toMatchObject({ code: 6 });
    expect(tsnetCni("ADD", a(), { cniVersion: "1.0.0", type: "tsnet" }).json).toMatchObject({ code: 7, msg: expect.stringContaining('no "name"') });
    expect(tsnetCni("ADD", a(), { ...conf, vlan: 100 }).json).toMatchObject({ code: 2, msg: expect.stringContaining('"vlan": 100') });
    expect(tsnetCni("ADD", a(), { ...conf, mtu: 20 }).json).toMatchObject({ code: 7, msg: expect.stringContaining('"mtu"') });
    const sctp = tsnetCni("ADD", a(), { ...conf, runtimeConfig: { portMappings: [{ hostPort: 9, containerPort: 9, protocol: "sctp" }] } });
    expect(sctp.json).toMatchObject({ code: 2, msg: expect.stringContaining('"protocol": "sctp"') });
    expect(tsnetCni("ADD", a(), { ...conf, ipam: { type: "no-such-ipam" } }).json).toMatchObject({ code: 7, msg: expect.stringContaining('IPAM plugin "no-such-ipam" not found') });
    nothingMade();
  });

  test("a wrong CNI_NETNS: missing, not a namespace, tsnet's own", () => {
    const id = newId();
    const r1 = plugin("tsnet", { ...vars("ADD", { id, ns }), CNI_NETNS: "/run/netns/no-such" }, conf);
    expect(r1.json).toMatchObject({ code: 4, msg: expect.stringContaining('invalid CNI_NETNS "/run/netns/no-such": no such file') });
    const r2 = plugin("tsnet", { ...vars("ADD", { id, ns }), CNI_NETNS: "/etc/hostname" }, conf);
    expect(r2.json).toMatchObject({ code: 4, msg: expect.stringContaining("not a network namespace") });
    // PID 1 of the throwaway host runs in the namespace the plugin runs in.
    const r3 = plugin("tsnet", { ...vars("ADD", { id, ns }), CNI_NETNS: "/proc/1/ns/net" }, conf);
    expect(r3.json).toMatchObject({ code: 4, msg: expect.stringContaining("the namespace tsnet runs in") });
    nothingMade();
  });

  test("an interface of that name already in the namespace, and ADD twice, are refused and change nothing", async () => {
    const a: Attachment = { id: newId(), ns };
    expect(sh(["ip", "-n", ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]).code).toBe(0);
    const r = tsnetCni("ADD", a, conf);
    expect(r.json).toMatchObject({ code: 100, msg: `${ns.path} already has an interface named eth0: give another interface name` });
    expect(sh(["ip", "-n", ns.name, "link", "del", "eth0"]).code).toBe(0);
    nothingMade();
    const res = mustAdd(a, conf);
    const again = tsnetCni("ADD", a, conf);
    expect(again.json).toMatchObject({ code: 100, msg: expect.stringContaining("is already attached to network errors as eth0") });
    expect(tsnetCni("CHECK", a, { ...conf, prevResult: res }).code).toBe(0);
    expect(tsnetCni("DEL", a, conf).code).toBe(0);
    expect(linkGone(res.interfaces[1].name)).toBe(true);
    nothingMade();
  });
});

describe("DEL is idempotent", () => {
  test("after the namespace is deleted, without CNI_NETNS, and for a network that does not exist", async () => {
    const conf = { cniVersion: "1.0.0", name: "idem", type: "tsnet" };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    dropNetns(a.ns.name);
    // The runtime removed the namespace first: the kernel took the pair with it; DEL releases the rest.
    await waitFor("the veth to go with its namespace", () => linkGone(res.interfaces[1].name));
    expect(leasesOf("idem")).toHaveLength(1);
    expect(tsnetCni("DEL", a, { ...conf, prevResult: res })).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(leasesOf("idem")).toEqual([]);
    expect(attachmentsOf("idem")).toEqual([]);
    expect(plugin("tsnet", { CNI_COMMAND: "DEL", CNI_CONTAINERID: a.id, CNI_IFNAME: "eth0" }, conf)).toMatchObject({ code: 0, stdout: "" });
    expect(plugin("tsnet", { CNI_COMMAND: "DEL", CNI_CONTAINERID: a.id, CNI_IFNAME: "eth0" }, { ...conf, name: "never-made" }).code).toBe(0);
    expect(tsnet(["network", "inspect", "never-made"]).code).toBe(1);
  });
});

describe("configuration lists", () => {
  test("tsnet first, the reference tuning after it: tuning reads tsnet's result and passes it on", async () => {
    const list: ConfList = { cniVersion: "1.0.0", name: "chain-tuning", plugins: [{ type: "tsnet" }, { type: "tuning", mtu: 1400, sysctl: { "net.ipv4.conf.eth0.arp_announce": "2" } }] };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = listAdd(list, a);
    expect(copy(res.interfaces.map((i: any) => i.name))).toEqual([expect.stringMatching(/^tsnet-/), expect.stringMatching(/^veth/), "eth0"]);
    expect(ipj(["link", "show", "eth0"], a.ns.name)[0].mtu).toBe(1400);
    expect(sh(["ip", "netns", "exec", a.ns.name, "cat", "/proc/sys/net/ipv4/conf/eth0/arp_announce"]).stdout.trim()).toBe("2");
    expect(listRun("CHECK", list, a, res).map((r) => r.code)).toEqual([0, 0]);
    expect(listRun("DEL", list, a, res).map((r) => `${r.code}${r.stdout}`)).toEqual(["0", "0"]);
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
  });

  test("tsnet first, the reference portmap after it: portmap maps a host port to tsnet's address", async () => {
    const list: ConfList = { cniVersion: "1.0.0", name: "chain-portmap", plugins: [{ type: "tsnet" }, { type: "portmap", capabilities: { portMappings: true } }] };
    const a: Attachment = { id: newId(), ns: netns() };
    const rt = { portMappings: [{ hostPort: 9191, containerPort: 80, protocol: "tcp" }] };
    const res = listAdd(list, a, rt);
    serveIn(a.ns.name);
    const gw = res.ips[0].gateway;
    expect(await serving(`http://${gw}:9191/`)).toBe("hello from a CNI container\n");
    expect(sh(["iptables", "-t", "nat", "-S"]).stdout).toContain("9191");
    // tsnet's CHECK (portmap 1.1.1's own CHECK fails on IPv6 chains it never made, whoever comes first).
    expect(tsnetCni("CHECK", a, request(list, list.plugins[0]!, res, rt))).toMatchObject({ code: 0, stdout: "" });
    expect(listRun("DEL", list, a, res, rt).map((r) => r.code)).toEqual([0, 0]);
    expect(sh(["iptables", "-t", "nat", "-S"]).stdout).not.toContain("9191");
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
    // portmap keeps its top-level chains for good; the tables iptables-nft made for them go, so
    // later tests find only tsnet's.
    for (const family of ["ip", "ip6"]) if (!natTablesBefore.includes(family)) sh(["nft", "delete", "table", family, "nat"]);
  });

  test("tsnet chained after the reference loopback: its interface and address are added to the previous result", async () => {
    const list: ConfList = { cniVersion: "1.0.0", name: "chain-lo", plugins: [{ type: "loopback" }, { type: "tsnet" }] };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = listAdd(list, a);
    expect(copy(res.interfaces.map((i: any) => i.name))).toEqual(["lo", expect.stringMatching(/^tsnet-/), expect.stringMatching(/^veth/), "eth0"]);
    const mine = res.ips.find((i: any) => i.address.startsWith("10."));
    expect(mine.interface).toBe(3);
    expect(res.ips.some((i: any) => i.address === "127.0.0.1/8" && i.interface === 0)).toBe(true);
    expect(ipj(["link", "show", "lo"], a.ns.name)[0].operstate).toBe("UNKNOWN"); // up, as loopback reports it
    expect(listRun("CHECK", list, a, res).map((r) => r.code)).toEqual([0, 0]);
    expect(listRun("DEL", list, a, res).map((r) => r.code)).toEqual([0, 0]);
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[2].name));
  });
});

describe("the portMappings capability", () => {
  test("served by tsnet's maps with the loopback guard: every address, 127.0.0.1 only from the host, hairpin; CHECK sees a missing element", async () => {
    const conf = {
      cniVersion: "1.0.0", name: "ports", type: "tsnet",
      runtimeConfig: { portMappings: [{ hostPort: 8280, containerPort: 80, protocol: "tcp" }, { hostPort: 8281, containerPort: 80, protocol: "tcp", hostIP: "127.0.0.1" }] },
    };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    serveIn(a.ns.name);
    const addr = res.ips[0].address.split("/")[0];
    expect(await serving("http://127.0.0.1:8280/")).toBe("hello from a CNI container\n");
    expect(curl("http://192.0.2.1:8280/", "nb").stdout).toBe("hello from a CNI container\n"); // another host
    expect(curl("http://127.0.0.1:8281/").stdout).toBe("hello from a CNI container\n");
    expect(curl("http://192.0.2.1:8281/", "nb", 1).code).not.toBe(0);
    // The container reaches its own published port through a host address (hairpin).
    expect(curl("http://192.0.2.1:8280/", a.ns.name).stdout).toBe("hello from a CNI container\n");
    expect(ipj(["-d", "link", "show", res.interfaces[1].name])[0].linkinfo.info_slave_data.hairpin).toBe(true);
    // The elements, tagged with the attachment, in the same maps as `tsnet run -p`.
    const tag = `cni:${a.id.slice(0, 12)}:eth0`;
    expect(ruleset()).toMatch(new RegExp(`tcp \\. 8280 comment "[0-9a-f]{12} ${tag} tcp 8280 -> ${addr.replaceAll(".", "\\.")}:80"`));
    expect(ruleset()).toMatch(new RegExp(`127\\.0\\.0\\.1 \\. tcp \\. 8281 comment "[0-9a-f]{12} ${tag} tcp 127\\.0\\.0\\.1:8281 -> `));
    // A neighbour routing 127.0.0.1 to the host is dropped by the guard before DNAT.
    const setup = [
      "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet", "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet",
      "ip rule add pref 10 lookup local", "ip rule del pref 0", "ip rule add pref 5 to 127.0.0.1 lookup 100",
      "ip route add 127.0.0.1 via 192.0.2.1 dev eth0 onlink table 100",
    ].join(" && ");
    try {
      expect(sh(["ip", "netns", "exec", "nb", "sh", "-c", setup]).stderr).toBe("");
      const dropped = () => Number(/guard.*?packets (\d+)/s.exec(ruleset())?.[1] ?? -1);
      const before = dropped();
      expect(curl("http://127.0.0.1:8281/", "nb", 1).code).not.toBe(0);
      expect(dropped()).toBeGreaterThan(before);
    } finally {
      sh(["ip", "netns", "exec", "nb", "sh", "-c", "ip rule add pref 0 lookup local; ip rule del pref 10; ip rule del pref 5; echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet"]);
    }
    expect(tsnetCni("CHECK", a, { ...conf, prevResult: res }).code).toBe(0);
    sh(["nft", "delete", "element", "inet", "tsnet", "ports", "{ tcp . 8280 }"]);
    const check = tsnetCni("CHECK", a, { ...conf, prevResult: res });
    expect(check.json).toMatchObject({ code: 101, msg: expect.stringContaining(`port mapping tcp *:8280 -> ${addr}:80 is missing from tsnet's maps`) });
    expect(tsnetCni("DEL", a, { ...conf, prevResult: res }).code).toBe(0);
    expect(ruleset()).not.toContain(tag);
    expect(curl("http://127.0.0.1:8281/", undefined, 1).code).not.toBe(0);
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
  });

  test("a host port another tsnet owner publishes is refused, naming it, with nothing made", async () => {
    const web = await startContainer("cniportholder", ["-p", "8290:80"], ["sleep", "30"]);
    const ns = netns();
    try {
      const conf = (port: number, hostIP?: string) => ({
        cniVersion: "1.0.0", name: "ports", type: "tsnet", runtimeConfig: { portMappings: [{ hostPort: port, containerPort: 80, ...(hostIP && { hostIP }) }] },
      });
      const r = tsnetCni("ADD", { id: newId(), ns }, conf(8290));
      expect(r.json).toMatchObject({ code: 102, msg: expect.stringMatching(/^host port 8290\/tcp is already published by cniportholder \([0-9a-f]{12}\): choose another host port$/) });
      // The refused ADD's undo removed its own things only: the holder's element is still there.
      expect(ruleset()).toMatch(/tcp \. 8290 comment "[0-9a-f]{12} cniportholder tcp 8290 -> /);
      // One on every address shadows one on 127.0.0.1 and the other way round.
      const r2 = tsnetCni("ADD", { id: newId(), ns }, conf(8290, "127.0.0.1"));
      expect(r2.json).toMatchObject({ code: 102, msg: expect.stringContaining("already published by cniportholder") });
      expect(ipj(["link", "show"], ns.name).map((l: any) => l.ifname)).toEqual(["lo"]);
      expect(attachmentsOf("ports")).toEqual([]);
      expect(leasesOf("ports")).toEqual([]);
      // And the other way: a CNI attachment's port is refused to `tsnet run -p`, naming it.
      const a: Attachment = { id: newId(), ns };
      const res = mustAdd(a, conf(8291));
      const run = tsnet(["run", "--rm", "-p", "8291:80", "--", "true"]);
      expect(run.code).toBe(125);
      expect(run.stderr).toContain(`already published by cni:${a.id.slice(0, 12)}:eth0`);
      expect(tsnetCni("DEL", a, conf(8291)).code).toBe(0);
      dropNetns(ns.name);
      await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
    } finally {
      await web.stop();
      dropNetns(ns.name);
    }
  });
});

describe("a firewall reload", () => {
  test("removes an attachment's ports with everything else; CHECK says so; tsnet firewall-reload puts them back, and not those of an attachment deleted since", async () => {
    const conf = { cniVersion: "1.0.0", name: "reloaded", type: "tsnet", runtimeConfig: { portMappings: [{ hostPort: 8320, containerPort: 80 }] } };
    const conf2 = { ...conf, runtimeConfig: { portMappings: [{ hostPort: 8321, containerPort: 80 }] } };
    const a: Attachment = { id: newId(), ns: netns() };
    const b: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    const res2 = mustAdd(b, conf2);
    serveIn(a.ns.name);
    expect(await serving("http://127.0.0.1:8320/")).toBe("hello from a CNI container\n");
    expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
    expect(curl("http://127.0.0.1:8320/", undefined, 1).code).not.toBe(0);
    expect(tsnetCni("CHECK", a, { ...conf, prevResult: res }).json).toMatchObject({ code: 101, msg: expect.stringContaining("port mapping tcp *:8320 -> ") });
    expect(tsnetCni("DEL", b, { ...conf2, prevResult: res2 }).code).toBe(0);
    const r = tsnet(["firewall-reload"]);
    expect(r).toMatchObject({ code: 0, stdout: "" });
    expect(r.stderr).toContain("and 1 published port(s)");
    expect(await serving("http://127.0.0.1:8320/")).toBe("hello from a CNI container\n");
    expect(ruleset()).toMatch(elementFor(8320));
    expect(ruleset()).not.toMatch(elementFor(8321));
    expect(tsnetCni("CHECK", a, { ...conf, prevResult: res }).code).toBe(0);
    expect(tsnetCni("DEL", a, { ...conf, prevResult: res }).code).toBe(0);
    expect(ruleset()).not.toMatch(elementFor(8320));
    dropNetns(a.ns.name);
    dropNetns(b.ns.name);
    await waitFor("the veths to go", () => linkGone(res.interfaces[1].name) && linkGone(res2.interfaces[1].name));
  });
});

describe("network options", () => {
  test("bridge, subnet, gateway, mtu, ipMasq false, hairpinMode true: in the record, the kernel and the ruleset", async () => {
    const conf = { cniVersion: "1.0.0", name: "opts", type: "tsnet", bridge: "tsnetopts0", subnet: "10.92.0.0/24", gateway: "10.92.0.254", mtu: 1400, ipMasq: false, hairpinMode: true };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    expect(res.interfaces[0].name).toBe("tsnetopts0");
    expect(res.interfaces[2].mtu).toBe(1400);
    expect(ipj(["-4", "addr", "show", "tsnetopts0"])[0].addr_info[0]).toMatchObject({ local: "10.92.0.254", prefixlen: 24 });
    expect(ipj(["link", "show", "eth0"], a.ns.name)[0].mtu).toBe(1400);
    const host = ipj(["-d", "link", "show", res.interfaces[1].name])[0];
    expect(host.mtu).toBe(1400);
    expect(host.linkinfo.info_slave_data.hairpin).toBe(true); // with no port published
    expect(JSON.parse(tsnet(["network", "inspect", "opts"]).stdout)[0].Options).toEqual({
      "com.docker.network.bridge.name": "tsnetopts0", "com.docker.network.bridge.enable_ip_masquerade": "false", "com.docker.network.driver.mtu": "1400", "tsnet.hairpin": "true",
    });
    const rules = ruleset();
    expect(rules).not.toContain("opts: containers reach out as the host");
    expect(rules).toContain("opts: hairpin, a container reaching a published port");
    expect(ipj(["route", "show", "default"], a.ns.name)[0].gateway).toBe("10.92.0.254");
    // A later configuration that contradicts the network is refused, naming the key.
    const b: Attachment = { id: newId(), ns: netns() };
    const bad = tsnetCni("ADD", b, { ...conf, mtu: 1500, ipMasq: true });
    expect(bad.json).toMatchObject({ code: 7, msg: expect.stringContaining('"ipMasq" is true but the network has false; "mtu" is 1500 but the network has 1400') });
    expect(ipj(["link", "show"], b.ns.name).map((l: any) => l.ifname)).toEqual(["lo"]);
    // Keys left out take the network's values.
    const res2 = mustAdd(b, { cniVersion: "1.0.0", name: "opts", type: "tsnet" });
    expect(ipj(["link", "show", "eth0"], b.ns.name)[0].mtu).toBe(1400);
    for (const [x, r] of [[a, res], [b, res2]] as const) expect(tsnetCni("DEL", x, { ...conf, prevResult: r }).code).toBe(0);
    dropNetns(a.ns.name);
    dropNetns(b.ns.name);
    await waitFor("the veths to go", () => linkGone(res.interfaces[1].name) && linkGone(res2.interfaces[1].name));
  });

  test("a requested address and MAC: CNI_ARGS IP= (IgnoreUnknown and others ignored) and runtimeConfig.mac; a taken one is refused", async () => {
    const conf = { cniVersion: "1.0.0", name: "static", type: "tsnet", subnet: "10.88.5.0/24" };
    const a: Attachment = { id: newId(), ns: netns() };
    const r = plugin("tsnet", { ...vars("ADD", a), CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.88.5.77" }, { ...conf, runtimeConfig: { mac: "02:42:0a:58:05:4d" } });
    expect(r.stderr).toBe("");
    expect(r.json.ips[0].address).toBe("10.88.5.77/24");
    expect(ipj(["link", "show", "eth0"], a.ns.name)[0].address).toBe("02:42:0a:58:05:4d");
    const b: Attachment = { id: newId(), ns: netns() };
    const taken = plugin("tsnet", { ...vars("ADD", b), CNI_ARGS: "IP=10.88.5.77" }, conf);
    expect(taken.json).toMatchObject({ code: 100, msg: `the requested address 10.88.5.77 is already in use on network static by CNI container ${a.id.slice(0, 12)}: give another address` });
    const outside = plugin("tsnet", { ...vars("ADD", b), CNI_ARGS: "IP=10.88.6.1" }, conf);
    expect(outside.json).toMatchObject({ code: 7, msg: expect.stringContaining("the requested address 10.88.6.1 is outside network static") });
    expect(ipj(["link", "show"], b.ns.name).map((l: any) => l.ifname)).toEqual(["lo"]);
    expect(tsnetCni("DEL", a, conf).code).toBe(0);
    dropNetns(a.ns.name);
    dropNetns(b.ns.name);
    await waitFor("the veth to go", () => linkGone(r.json.interfaces[1].name));
  });

  test("isGateway false and hairpinMode false: a bridge without an address, no default route, no hairpin, no ports", async () => {
    const conf = { cniVersion: "1.0.0", name: "l2only", type: "tsnet", isGateway: false, hairpinMode: false, subnet: "10.91.0.0/24" };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    expect(res.ips[0].gateway).toBeUndefined();
    expect(res.routes).toBeUndefined();
    expect(ipj(["-4", "addr", "show", res.interfaces[0].name])).toEqual([]);
    expect(ipj(["route", "show", "default"], a.ns.name)).toEqual([]);
    expect(ipj(["-d", "link", "show", res.interfaces[1].name])[0].linkinfo.info_slave_data.hairpin).toBe(false);
    expect(ruleset()).not.toContain("l2only: hairpin");
    const withPorts = tsnetCni("ADD", { id: newId(), ns: a.ns }, { ...conf, runtimeConfig: { portMappings: [{ hostPort: 8300, containerPort: 80 }] } });
    expect(withPorts.json).toMatchObject({ code: 7, msg: expect.stringContaining('"isGateway": false') });
    expect(tsnetCni("DEL", a, conf).code).toBe(0);
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
  });
});

describe("delegated IPAM", () => {
  test("the reference host-local gives the address; DEL gives it back", async () => {
    const dataDir = mkdtempSync("/run/host-local-");
    const conf = {
      cniVersion: "1.0.0", name: "hostlocal", type: "tsnet",
      ipam: { type: "host-local", ranges: [[{ subnet: "10.93.0.0/24", gateway: "10.93.0.1" }]], routes: [{ dst: "0.0.0.0/0" }], dataDir },
    };
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf);
    const address = res.ips[0].address.split("/")[0];
    // host-local's own record of the address names the container.
    expect(readFileSync(`${dataDir}/hostlocal/${address}`, "utf8")).toContain(a.id);
    expect(copy(res.ips[0])).toMatchObject({ address: expect.stringMatching(/^10\.93\.0\.\d+\/24$/), gateway: "10.93.0.1", interface: 2 });
    expect(JSON.parse(tsnet(["network", "inspect", "hostlocal"]).stdout)[0].IPAM.Config[0]).toEqual({ Subnet: "10.93.0.0/24", Gateway: "10.93.0.1" });
    expect(ipj(["-4", "addr", "show", "eth0"], a.ns.name)[0].addr_info[0].local).toBe(address);
    expect(ipj(["route", "show", "default"], a.ns.name)[0].gateway).toBe("10.93.0.1");
    expect(tsnetCni("CHECK", a, { ...conf, prevResult: res })).toMatchObject({ code: 0, stdout: "" });
    expect(tsnetCni("DEL", a, { ...conf, prevResult: res }).code).toBe(0);
    expect(existsSync(`${dataDir}/hostlocal/${address}`)).toBe(false);
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
    rmSync(dataDir, { recursive: true, force: true });
  });
});

describe("GC and STATUS (spec 1.1)", () => {
  test("GC removes every attachment not in cni.dev/valid-attachments, ports and leases included", async () => {
    const conf = { cniVersion: "1.1.0", name: "collected", type: "tsnet" };
    const made = [0, 1, 2].map((i) => {
      const a: Attachment = { id: newId(), ns: netns() };
      const c = i === 1 ? { ...conf, runtimeConfig: { portMappings: [{ hostPort: 8310, containerPort: 80 }] } } : conf;
      return { a, res: mustAdd(a, c) };
    });
    expect(leasesOf("collected")).toHaveLength(3);
    expect(ruleset()).toMatch(elementFor(8310));
    const keep = made[0]!;
    const r = plugin("tsnet", { CNI_COMMAND: "GC", CNI_PATH: BIN }, { ...conf, "cni.dev/valid-attachments": [{ containerID: keep.a.id, ifname: "eth0" }] });
    expect(r).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(leasesOf("collected")).toEqual([keep.res.ips[0].address.split("/")[0]]);
    expect(attachmentsOf("collected")).toHaveLength(1);
    expect(ruleset()).not.toMatch(elementFor(8310));
    // The collected interfaces are gone from their namespaces and the bridge at once (set aside),
    // and the pairs go with the namespaces.
    for (const m of made.slice(1)) {
      expectBare(m.a.ns.name);
      expect(linkGone(m.res.interfaces[1].name)).toBe(true);
    }
    expect(tsnetCni("CHECK", keep.a, { ...conf, prevResult: keep.res }).code).toBe(0);
    expect(tsnetCni("DEL", keep.a, conf).code).toBe(0);
    for (const m of made) dropNetns(m.a.ns.name);
    await waitFor("the veths to go", () => made.every((m) => linkGone(m.res.interfaces[1].name)));
  });

  test("STATUS is ready until the network's addresses run out", async () => {
    const conf = { cniVersion: "1.1.0", name: "tiny", type: "tsnet", subnet: "10.90.0.0/30" };
    expect(plugin("tsnet", { CNI_COMMAND: "STATUS", CNI_PATH: BIN }, conf)).toMatchObject({ code: 0, stdout: "" });
    const a: Attachment = { id: newId(), ns: netns() };
    const res = mustAdd(a, conf); // a /30 has one address besides the gateway
    const status = plugin("tsnet", { CNI_COMMAND: "STATUS", CNI_PATH: BIN }, conf);
    expect(status.json).toMatchObject({ code: 50, msg: "network tiny has no free address left in 10.90.0.0/30" });
    const b: Attachment = { id: newId(), ns: netns() };
    expect(tsnetCni("ADD", b, conf).json).toMatchObject({ code: 100, msg: expect.stringContaining("network tiny has no free address left") });
    expect(tsnetCni("DEL", a, conf).code).toBe(0);
    expect(plugin("tsnet", { CNI_COMMAND: "STATUS", CNI_PATH: BIN }, conf).code).toBe(0);
    dropNetns(a.ns.name);
    dropNetns(b.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
  });
});

describe("concurrency and sharing", () => {
  test("20 ADDs in parallel on a network none of them finds made: one network, 20 distinct addresses; 20 DELs in parallel", async () => {
    const conf = JSON.stringify({ cniVersion: "1.0.0", name: "parallel", type: "tsnet" });
    const as: Attachment[] = Array.from({ length: 20 }, () => ({ id: newId(), ns: netns() }));
    const spawnAll = (command: string) =>
      Promise.all(as.map(async (a) => {
        const env: Record<string, string> = {};
        for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
        const p = Bun.spawn([`${BIN}/tsnet`], { stdin: Buffer.from(conf), stdout: "pipe", stderr: "pipe", env: { ...env, ...vars(command, a) } });
        const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
        return { code, out, err };
      }));
    const added = await spawnAll("ADD");
    expect(added.map((r) => `${r.code} ${r.err}`)).toEqual(as.map(() => "0 "));
    const results = added.map((r) => JSON.parse(r.out));
    const addresses = results.map((r) => r.ips[0].address);
    expect(new Set(addresses).size).toBe(20);
    expect(new Set(results.map((r) => r.interfaces[1].name)).size).toBe(20);
    expect(cniNetworks().filter((n) => n === "parallel")).toEqual(["parallel"]);
    expect(leasesOf("parallel").sort()).toEqual(addresses.map((x) => x.split("/")[0]).sort());
    for (const [i, a] of as.entries()) expect(ipj(["-4", "addr", "show", "eth0"], a.ns.name)[0].addr_info[0].local).toBe(addresses[i]!.split("/")[0]);
    const deleted = await spawnAll("DEL");
    expect(deleted.map((r) => `${r.code} ${r.err}`)).toEqual(as.map(() => "0 "));
    expect(leasesOf("parallel")).toEqual([]);
    expect(attachmentsOf("parallel")).toEqual([]);
    for (const a of as) dropNetns(a.ns.name);
    await waitFor("20 veths to go", () => results.every((r) => linkGone(r.interfaces[1].name)));
  });

  test("a `tsnet run` container and a CNI container on one network reach each other, by address and by the runtime's alias; inspect lists both; the network cannot be removed under them", async () => {
    const conf = { cniVersion: "1.0.0", name: "shared", type: "tsnet" };
    const a: Attachment = { id: newId(), ns: netns() };
    // Podman gives the names of a container on each network as the aliases capability.
    const res = mustAdd(a, { ...conf, runtimeConfig: { aliases: { shared: ["cniweb"] } } });
    const cniAddress = res.ips[0].address.split("/")[0];
    const c = await startContainer("cnineighbour", ["--network", "shared"], ["sleep", "30"]);
    try {
      const runAddress = ipj(["-4", "addr", "show", "eth0"], c.netns)[0].addr_info[0].local;
      expect(sh(["ip", "netns", "exec", a.ns.name, "ping", "-c1", "-W2", runAddress]).code).toBe(0);
      expect(tsnet(["run", "--rm", "--network", "shared", "--", "ping", "-c1", "-W2", cniAddress]).code).toBe(0);
      expect(tsnet(["run", "--rm", "--network", "shared", "--", "getent", "hosts", "cniweb"]).stdout).toMatch(new RegExp(`^${cniAddress.replaceAll(".", "\\.")}\\s+cniweb`));
      expect(ipj(["link", "show", res.interfaces[1].name])[0].master).toBe(res.interfaces[0].name);
      const containers = JSON.parse(tsnet(["network", "inspect", "shared"]).stdout)[0].Containers;
      expect(containers[a.id]).toEqual({ Name: `cni:${a.id.slice(0, 12)}:eth0`, EndpointID: res.interfaces[1].name, MacAddress: res.interfaces[2].mac, IPv4Address: res.ips[0].address, IPv6Address: "" });
      expect(Object.values(containers).map((x: any) => x.Name).sort()).toEqual([`cni:${a.id.slice(0, 12)}:eth0`, "cnineighbour"].sort());
      const rm = tsnet(["network", "rm", "shared"]);
      expect(rm.code).toBe(1);
      expect(rm.stderr).toContain("network shared has active endpoints");
      expect(rm.stderr).toContain(`cni:${a.id.slice(0, 12)}:eth0`);
    } finally {
      await c.stop();
    }
    expect(tsnetCni("DEL", a, conf).code).toBe(0);
    dropNetns(a.ns.name);
    await waitFor("the veth to go", () => linkGone(res.interfaces[1].name));
    expect(existsSync("/run/tsnet/cni/shared")).toBe(true);
    expect(tsnet(["network", "rm", "shared"]).code).toBe(0);
    // The network's attachment directory goes with it.
    expect(existsSync("/run/tsnet/cni/shared")).toBe(false);
  });
});

describe("a real runtime: Podman 4 with its CNI backend", () => {
  test("podman run --network NAME -p 8080:80 with a conflist whose plugin is tsnet: the port answers from the host and from another container", async () => {
    for (const tool of ["podman", "crun", "conmon"]) if (!Bun.which(tool)) throw new Error(`${tool} is missing: test/deps.sh installs podman, crun and conmon`);
    const W = mkdtempSync("/run/podman-cni-");
    mkdirSync(`${W}/bin`);
    mkdirSync(`${W}/net.d`);
    mkdirSync(`${W}/rootfs`);
    copyFileSync(TSNET, `${W}/bin/tsnet`);
    chmodSync(`${W}/bin/tsnet`, 0o755);
    // What Podman needs on this machine (see README, "Testing"): containers.conf ulimits within
    // the hard limit, the cgroupfs manager, events to a file; vfs storage and state on the tmpfs.
    writeFileSync(`${W}/containers.conf`, [
      "[containers]", 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      "[engine]", 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
      "[network]", 'network_backend = "cni"', `cni_plugin_dirs = ["${W}/bin"]`, `network_config_dir = "${W}/net.d"`, "",
    ].join("\n"));
    writeFileSync(`${W}/storage.conf`, `[storage]\ndriver = "vfs"\nrunroot = "${W}/runroot"\ngraphroot = "${W}/storage"\n`);
    writeFileSync(`${W}/net.d/tsnetpod.conflist`, JSON.stringify({
      cniVersion: "1.0.0", name: "tsnetpod",
      plugins: [{ type: "tsnet", bridge: "tsnetpod0", subnet: "10.89.77.0/24", capabilities: { portMappings: true } }],
    }));
    const env = { ...process.env, CONTAINERS_CONF: `${W}/containers.conf`, CONTAINERS_STORAGE_CONF: `${W}/storage.conf` };
    // Podman's own mount namespace, held by a process: crun refuses the hybrid cgroup layout
    // (the unified mount goes), Podman's lock segment wants a private /dev/shm, and crun cannot
    // pivot_root to / itself (it gets an rbind of it). Containers run with --cgroups=disabled, so
    // no cgroup of the machine's is made.
    const holder = Bun.spawn(["unshare", "--mount", "--propagation", "slave", "bash", "-ec",
      `if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
       mount -t tmpfs -o mode=1777 podshm /dev/shm
       mount --rbind / ${W}/rootfs
       echo ready
       exec sleep infinity`], { stdin: "ignore", stdout: "pipe", stderr: "pipe", env });
    const P = ["nsenter", `--mount=/proc/${holder.pid}/ns/mnt`, "podman"];
    const podman = (args: string[]) => {
      const p = Bun.spawnSync([...P, ...args], { env, stdin: "ignore" });
      return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
    };
    const run = (args: string[]) => podman(["run", "--cgroups=disabled", "--network", "tsnetpod", ...args]);
    try {
      const first = await holder.stdout.getReader().read();
      expect(new TextDecoder().decode(first.value)).toBe("ready\n");
      const web = run(["-d", "--name", "web", "-p", "8080:80", "--rootfs", `${W}/rootfs`, ...site.command]);
      expect(web.stderr).toBe("");
      expect(web.code).toBe(0);
      expect(await serving("http://127.0.0.1:8080/")).toBe("hello from a CNI container\n");
      expect(curl("http://192.0.2.1:8080/", "nb").stdout).toBe("hello from a CNI container\n");
      // tsnet's records: the network, and the element for the container Podman named.
      const id = web.stdout.trim();
      expect(tsnet(["network", "ls", "--format", "{{.Name}} {{.Subnet}}"]).stdout).toContain("tsnetpod 10.89.77.0/24\n");
      expect(ruleset()).toMatch(new RegExp(`tcp \\. 8080 comment "[0-9a-f]{12} cni:${id.slice(0, 12)}:eth0 tcp 8080 -> 10\\.89\\.77\\.\\d+:80"`));
      const webAddress = podman(["inspect", "web", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"]).stdout.trim();
      expect(webAddress).toMatch(/^10\.89\.77\.\d+$/);
      // Another container: through the published port on the host's address, and straight to it.
      const other = run(["--rm", "--rootfs", `${W}/rootfs`, "sh", "-c", `curl -sS --max-time 3 http://192.0.2.1:8080/ && curl -sS --max-time 3 http://${webAddress}:80/`]);
      expect(other.stderr).toBe("");
      expect(other.stdout).toBe("hello from a CNI container\n".repeat(2));
      // That container's attachment went with it (its DEL ran when it was removed).
      expect(attachmentsOf("tsnetpod")).toHaveLength(1);
      expect(podman(["rm", "-f", "-t", "0", "web"]).code).toBe(0);
      expect(ruleset()).not.toMatch(elementFor(8080));
      expect(leasesOf("tsnetpod")).toEqual([]);
      expect(attachmentsOf("tsnetpod")).toEqual([]);
      expect(curl("http://127.0.0.1:8080/", undefined, 1).code).not.toBe(0);
    } finally {
      podman(["rm", "-a", "-f", "-t", "0"]);
      holder.kill("SIGTERM");
      await holder.exited;
      rmSync(W, { recursive: true, force: true });
    }
  }, 120_000);
});
