// The planners as pure functions: given what was read and the request, the exact operations.
import { describe, expect, test } from "bun:test";
import { parseIp, parsePrefix } from "../src/ip/addr.ts";
import { planAttach, planPublish, planTeardown, type AttachRequest } from "../src/plan/attach.ts";
import { linkKey, sysctlKey, sysctlPath } from "../src/plan/ops.ts";
import { planTable, type TableState } from "../src/nftables/ensure.ts";
import { natTable } from "../src/nat/ruleset.ts";

const ip = (s: string) => parseIp(s)!;
const base: AttachRequest = {
  netns: "tsnet-web",
  fresh: true,
  loUp: true,
  network: { name: "bridge", bridge: "tsnet0", internal: false },
  hostVeth: "veth1f2e3d4",
  ifname: "eth0",
  mac: "02:74:0a:4d:00:02",
  leased: [{ address: ip("10.77.0.2"), prefix: 16, gateway: ip("10.77.0.1") }],
  hairpin: false,
};
// Every op says why, in a line; the rest is compared exactly.
const strip = (ops: readonly { why: string }[]): Record<string, unknown>[] =>
  ops.map(({ why, ...rest }) => {
    expect(why.length).toBeGreaterThan(10);
    return rest;
  });

describe("planAttach", () => {
  test("a fresh namespace on the default bridge: veth, guard, disable_ipv6, lo and eth0 up, address, default route", () => {
    const p = planAttach({ defaultRoutes: [] }, base);
    expect(strip(p.ops)).toEqual([
      { op: "link-add", name: "veth1f2e3d4", kind: "veth", master: "tsnet0", up: true, peer: { name: "eth0", netns: "tsnet-web", mac: "02:74:0a:4d:00:02", index: 2 } },
      { op: "guard", dev: "veth1f2e3d4" },
      { op: "sysctl", netns: "tsnet-web", key: "net.ipv6.conf.eth0.disable_ipv6", value: "1" },
      { op: "link-set", netns: "tsnet-web", dev: "lo", up: true },
      { op: "link-set", netns: "tsnet-web", dev: "eth0", up: true },
      { op: "addr-add", netns: "tsnet-web", dev: "eth0", address: ip("10.77.0.2"), prefix: 16 },
      { op: "route-add", netns: "tsnet-web", dev: "eth0", gateway: ip("10.77.0.1") },
    ]);
    expect(p.context?.indexes).toEqual({ [linkKey("tsnet-web", "eth0")]: 2 });
    expect(p.noDefaultRoute).toBe(false);
    expect(p.noDefaultRoute6).toBe(false);
  });

  test("published ports: hairpin on the host end, after the guard", () => {
    const p = planAttach({ defaultRoutes: [] }, { ...base, hairpin: true, network: { ...base.network, mtu: 1400 } });
    expect(strip(p.ops).slice(0, 3)).toEqual([
      { op: "link-add", name: "veth1f2e3d4", kind: "veth", master: "tsnet0", up: true, mtu: 1400, peer: { name: "eth0", netns: "tsnet-web", mac: "02:74:0a:4d:00:02", mtu: 1400, index: 2 } },
      { op: "guard", dev: "veth1f2e3d4" },
      { op: "link-set", dev: "veth1f2e3d4", hairpin: true },
    ]);
  });

  test("dual stack: IPv6 on, both addresses (IPv6 without DAD), a default route per family", () => {
    const p = planAttach({ defaultRoutes: [] }, {
      ...base, loUp: false,
      leased: [...base.leased, { address: ip("fd00:7473::2"), prefix: 64, gateway: ip("fd00:7473::1") }],
    });
    const ops = strip(p.ops);
    expect(ops.find((o) => o.op === "sysctl")).toEqual({ op: "sysctl", netns: "tsnet-web", key: "net.ipv6.conf.eth0.disable_ipv6", value: "0" });
    expect(ops.some((o) => o.op === "link-set" && o.dev === "lo")).toBe(false);
    expect(ops.filter((o) => o.op === "addr-add")).toEqual([
      { op: "addr-add", netns: "tsnet-web", dev: "eth0", address: ip("10.77.0.2"), prefix: 16 },
      { op: "addr-add", netns: "tsnet-web", dev: "eth0", address: ip("fd00:7473::2"), prefix: 64, nodad: true },
    ]);
    expect(ops.filter((o) => o.op === "route-add").map((o) => (o as { gateway: unknown }).gateway)).toEqual([ip("10.77.0.1"), ip("fd00:7473::1")]);
  });

  test("a namespace given by path that has an IPv4 default route already: none added, no index known", () => {
    const p = planAttach({ defaultRoutes: [4] }, { ...base, netns: "/var/run/netns/cni-1", fresh: false, loUp: false, ifname: "net1" });
    expect(p.ops.some((o) => o.op === "route-add")).toBe(false);
    expect(p.noDefaultRoute).toBe(true);
    expect(p.context?.indexes).toEqual({});
    expect((p.ops[0] as { peer: { index?: number } }).peer.index).toBeUndefined();
  });

  test("an internal network: no default route; extra routes via the gateway", () => {
    const p = planAttach({ defaultRoutes: [] }, {
      ...base, network: { ...base.network, internal: true }, routes: [{ dst: parsePrefix("192.168.0.0/16")! }],
    });
    expect(strip(p.ops.filter((o) => o.op === "route-add"))).toEqual([
      { op: "route-add", netns: "tsnet-web", dev: "eth0", dst: parsePrefix("192.168.0.0/16")!, gateway: ip("10.77.0.1") },
    ]);
    expect(p.noDefaultRoute).toBe(true);
  });

  test("a route the network cannot carry is refused before anything is planned", () => {
    expect(() => planAttach({ defaultRoutes: [] }, { ...base, routes: [{ dst: parsePrefix("fd00::/8")! }] })).toThrow(/no IPv6 subnet/);
    expect(() => planAttach({ defaultRoutes: [] }, { ...base, leased: [{ address: ip("10.77.0.2"), prefix: 16 }], routes: [{ dst: parsePrefix("10.0.0.0/8")! }] })).toThrow(/has no gateway/);
  });
});

describe("planTeardown", () => {
  test("a namespace of its own: only its name goes", () => {
    expect(strip(planTeardown("/run/netns/tsnet-web", ["veth1f2e3d4"], false).ops)).toEqual([{ op: "netns-del", name: "/run/netns/tsnet-web" }]);
  });
  test("a namespace another container lives in: the veths first", () => {
    expect(strip(planTeardown("/run/netns/tsnet-web", ["veth1f2e3d4"], true).ops)).toEqual([
      { op: "link-del", dev: "veth1f2e3d4", ifExists: true },
      { op: "netns-del", name: "/run/netns/tsnet-web" },
    ]);
  });
});

describe("planPublish", () => {
  test("one transaction adding the owner's elements", () => {
    const p = planPublish({ tag: "1f2e3d4c5b6a", name: "web" }, [{ proto: "tcp", hostIp: ip("0.0.0.0"), hostPort: 8080, containerIp: ip("10.77.0.2"), containerPort: 80 }]);
    expect(p.ops).toHaveLength(1);
    const op = p.ops[0]!;
    expect(op.op).toBe("nft-elements");
    if (op.op !== "nft-elements") return;
    expect(op.add?.map((a) => a.set)).toEqual(["ports"]);
    expect(op.add?.[0]?.elements[0]?.comment).toBe("1f2e3d4c5b6a web tcp 8080 -> 10.77.0.2:80");
  });
});

describe("planTable", () => {
  const spec = natTable({ table: "tsnet", networks: [{ name: "bridge", bridge: "tsnet0", internal: false, subnets: [{ net: 0x0a4d0000, prefix: 16 }] }] });
  test("a missing table: everything added, nothing deleted", () => {
    const state: TableState = { exists: false, rules: [], held: new Map(spec.sets!.map((s) => [s.name, undefined])) };
    const { changes, result } = planTable(state, spec);
    expect(result.tableMissing).toBe(true);
    expect(result.drifted).toBe(true);
    expect(changes[0]).toEqual({ change: "add-table" });
    expect(changes.some((c) => c.change === "delete-rule" || c.change === "delete-elements")).toBe(false);
    const rules = changes.filter((c) => c.change === "add-rule").length;
    expect(rules).toBe(spec.chains!.reduce((n, c) => n + (c.rules?.length ?? 0), 0));
  });
  test("a set holding an element the spec lacks: that element deleted by key", () => {
    const bridges = spec.sets!.find((s) => s.name === "bridges")!;
    const stray = { key: new Uint8Array(16).fill(0x41) };
    const held = new Map(spec.sets!.map((s) => [s.name, s.name === "bridges" ? [...bridges.elements!, stray] : (s.elements ?? [])]));
    const { changes, result } = planTable({ exists: true, rules: [], held }, spec);
    expect(changes).toContainEqual({ change: "delete-elements", set: "bridges", elements: [stray] });
    expect(result.changedSets).toEqual(["bridges"]);
  });
});

describe("sysctl keys", () => {
  test("an interface name's dots travel as slashes", () => {
    expect(sysctlKey("net", "ipv4", "conf", "br.100", "route_localnet")).toBe("net.ipv4.conf.br/100.route_localnet");
    expect(sysctlPath("net.ipv4.conf.br/100.route_localnet")).toBe("/proc/sys/net/ipv4/conf/br.100/route_localnet");
    expect(sysctlPath("net.ipv4.ip_forward")).toBe("/proc/sys/net/ipv4/ip_forward");
  });
});

describe("planNetworkUp", () => {
  const { planNetworkUp } = require("../src/plan/network.ts") as typeof import("../src/plan/network.ts");
  const table = natTable({ table: "tsnet", networks: [{ name: "bridge", bridge: "tsnet0", internal: false, subnets: [{ net: 0x0a4d0000, prefix: 16 }] }] });
  const req = { name: "bridge", bridge: "tsnet0", mac: "02:74:0a:4d:00:01", gateways: [{ address: ip("10.77.0.1"), prefix: 16 }], icc: true, table };
  test("first use: table, forwarding, the bridge, its gateway, then route_localnet", () => {
    const p = planNetworkUp({ table: { exists: false, rules: [], held: new Map() }, ports: [] }, req);
    expect(p.ops.map((o) => o.op)).toEqual(["nft-table", "sysctl", "link-add", "addr-add", "sysctl"]);
    expect(strip(p.ops.slice(1))).toEqual([
      { op: "sysctl", key: "net.ipv4.ip_forward", value: "1" },
      { op: "link-add", name: "tsnet0", kind: "bridge", up: true, mac: "02:74:0a:4d:00:01" },
      { op: "addr-add", dev: "tsnet0", address: ip("10.77.0.1"), prefix: 16 },
      { op: "sysctl", key: "net.ipv4.conf.tsnet0.route_localnet", value: "1" },
    ]);
  });
  test("a bridge that is there but down, holding its gateway, with a container's veth on it", () => {
    const p = planNetworkUp({ bridge: { kind: "bridge", up: false, addresses: [ip("10.77.0.1")] }, table: { exists: false, rules: [], held: new Map() }, ports: ["veth1f2e3d4"] }, { ...req, icc: false });
    expect(strip(p.ops.slice(1))).toEqual([
      { op: "sysctl", key: "net.bridge.bridge-nf-call-iptables", value: "1", ifMissing: expect.stringContaining("br_netfilter") },
      { op: "sysctl", key: "net.bridge.bridge-nf-call-ip6tables", value: "1", ifMissing: expect.stringContaining("br_netfilter") },
      { op: "sysctl", key: "net.ipv4.ip_forward", value: "1" },
      { op: "link-set", dev: "tsnet0", up: true },
      { op: "guard", dev: "veth1f2e3d4" },
      { op: "sysctl", key: "net.ipv4.conf.tsnet0.route_localnet", value: "1" },
    ]);
  });
});

describe("planNetworkUp: the generation read", () => {
  const { planNetworkUp } = require("../src/plan/network.ts") as typeof import("../src/plan/network.ts");
  const table = natTable({ table: "tsnet", networks: [{ name: "bridge", bridge: "tsnet0", internal: false, subnets: [{ net: 0x0a4d0000, prefix: 16 }] }] });
  test("travels with the table's transaction; a ready bridge gets no link or address op", () => {
    const p = planNetworkUp(
      { generation: 42, bridge: { kind: "bridge", up: true, addresses: [ip("10.77.0.1")] }, table: { exists: false, rules: [], held: new Map() }, ports: [] },
      { name: "bridge", bridge: "tsnet0", gateways: [{ address: ip("10.77.0.1"), prefix: 16 }], icc: true, table },
    );
    expect(p.ops[0]).toMatchObject({ op: "nft-table", generation: 42 });
    expect(p.ops.map((o) => o.op)).toEqual(["nft-table", "sysctl", "sysctl"]);
  });
});

describe("planNetworkRm", () => {
  const { planNetworkRm } = require("../src/plan/network.ts") as typeof import("../src/plan/network.ts");
  const rest = natTable({ table: "tsnet", networks: [{ name: "bridge", bridge: "tsnet0", internal: false, subnets: [{ net: 0x0a4d0000, prefix: 16 }] }] });
  const gateways = [{ address: ip("10.80.0.1"), prefix: 24 }, { address: ip("fd00:80::1"), prefix: 64 }];
  const empty = { exists: true, rules: [], held: new Map() } as TableState;
  const req = { name: "app", bridge: "tsnet-1f2e3d4c5", madeByTsnet: true, gateways, table: rest };
  test("tsnet's bridge: the table without the network first, then the bridge goes", () => {
    const p = planNetworkRm({ generation: 7, table: empty, bridge: { addresses: [ip("10.80.0.1")] } }, req);
    expect(p.ops[0]).toMatchObject({ op: "nft-table", spec: rest, generation: 7 });
    expect(strip(p.ops.slice(1))).toEqual([{ op: "link-del", dev: "tsnet-1f2e3d4c5", ifExists: true }]);
  });
  test("a bridge the host had: only the gateways it holds leave it, and route_localnet goes off", () => {
    const p = planNetworkRm({ table: empty, bridge: { addresses: [ip("10.80.0.1")] } }, { ...req, bridge: "br-lan", madeByTsnet: false });
    expect(strip(p.ops.slice(1))).toEqual([
      { op: "addr-del", dev: "br-lan", address: ip("10.80.0.1"), prefix: 24 },
      { op: "sysctl", key: "net.ipv4.conf.br-lan.route_localnet", value: "0" },
    ]);
  });
  test("no bridge there: only the table", () => {
    const p = planNetworkRm({ table: empty }, req);
    expect(p.ops.map((o) => o.op)).toEqual(["nft-table"]);
  });
});
