// Kernel conversations played twice: once against a real kernel in the throwaway host, recorded
// (test/replay/capture.ts writes test/replay/captures/NAME.json), and then in the root-free unit
// tests against that record (test/replay-unit.test.ts). Each scenario returns what the code made
// of the kernel's answers, as JSON; the capture keeps it, and the replay must make the same of
// the same bytes while sending the same requests. A change to an encoder or a decoder fails the
// replay until `npm run capture` records the kernel's answers to the new requests.
import { KernelError, TsnetError } from "../../src/errors/errors.ts";
import { formatIp, ipBytes, parseIp, parsePrefix } from "../../src/ip/addr.ts";
import { NETLINK_NETFILTER, NETLINK_ROUTE } from "../../src/netlink/constants.ts";
import type { NetlinkSocket } from "../../src/netlink/socket.ts";
import type { NetlinkTransport } from "../../src/netlink/transport.ts";
import { loopbackGuardFilter, isLoopbackGuard } from "../../src/network/guard.ts";
import { natTable, portElements } from "../../src/nat/ruleset.ts";
import { ensureNatTable, listPublished, natTableExists, publishPortsRepairing, publishedPorts } from "../../src/nat/portmap.ts";
import { publishPorts, unpublishPorts } from "../../src/network/publish.ts";
import { guardWasMissing, restoreNatTable } from "../../src/nat/restore.ts";
import { DNS_TABLE, dnsRedirectTable, removeDnsRedirect } from "../../src/nat/dns.ts";
import { NF_IP_PRI_FILTER, NFT_CMP_NEQ, RTN_LOCAL } from "../../src/nftables/constants.ts";
import {
  Batch, addRule, addSet, createTable, deleteChain, deleteSet, deleteTable, deleteTaggedElements, ensureTable, expr, inet_proto, inet_service,
  ipv4_addr, listElements, openNftSocket, setExists, tableExists, value, type EnsureResult,
} from "../../src/nftables/index.ts";
import { natSocket, publishedPortsByOwner } from "../../src/nat/portmap.ts";
import { ctStateNone, inSet, ip6Daddr, ip6Prefix } from "../../src/nftables/expr/match.ts";
import { listRules } from "../../src/nftables/rule.ts";
import { addrAdd, addrDel, addrList } from "../../src/rtnetlink/addr.ts";
import { AF_INET, AF_INET6 } from "../../src/rtnetlink/constants.ts";
import { bridgePortHairpin, linkAdd, linkDel, linkDelIfExists, linkGet, linkList, linkSet } from "../../src/rtnetlink/link.ts";
import { routeAdd, routeList } from "../../src/rtnetlink/route.ts";
import { CLSACT_INGRESS, bpfFilterAdd, clsactAdd, filterList } from "../../src/rtnetlink/tc.ts";

export interface Scenario {
  name: string;
  bus: number;
  /**
   * With `opensOwn`, the code under test opens its own sockets (the nat layer's one nf_tables
   * socket): run gets no socket, and capture and replay put their transport in place through
   * useTransport for every socket opened meanwhile.
   */
  opensOwn?: boolean;
  run(nl?: NetlinkSocket): unknown;
}

const hex = (b?: Uint8Array) => (b ? Buffer.from(b).toString("hex") : undefined);

/** The error's one line, as the CLI would print it. */
function failure(fn: () => unknown): string {
  try {
    fn();
    return "no error";
  } catch (e) {
    if (e instanceof KernelError || e instanceof TsnetError) return e.message;
    throw e;
  }
}

/**
 * The transport every socket of an `opensOwn` scenario gets: the one record (or replay), which
 * a socket's close leaves open for the next socket the code under test opens (removeDnsRedirect
 * opens and closes its own each time). Capture and replay close the real one at the end.
 */
export function shared(t: NetlinkTransport): NetlinkTransport {
  return {
    get fd() {
      return t.fd;
    },
    get portid() {
      return t.portid;
    },
    setOption: (name, v) => t.setOption(name, v),
    send: (buf, len) => t.send(buf, len),
    receive: (buf) => t.receive(buf),
    close: () => {},
  };
}

const summary = (r: EnsureResult) => ({ ...r, deleted: Object.fromEntries(Object.entries(r.deleted).map(([k, v]) => [k, v.length])) });
/** A dumped rule: chain, comment and each expression's name and NFTA_EXPR_DATA bytes as the kernel holds them. */
const ruleText = (r: { chain: string; comment?: string; exprs: { name: string; data: DataView }[] }) =>
  `${r.chain}: ${r.comment ?? ""} [${r.exprs.map((e) => `${e.name}:${Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString("hex")}`).join(" ")}]`;

export const scenarios: Scenario[] = [
  {
    name: "rtnetlink-links",
    bus: NETLINK_ROUTE,
    run(nl) {
      nl = nl!;
      linkAdd(nl, { name: "tsnet-rp0", kind: "bridge", up: true, mtu: 1400 });
      const br = linkGet(nl, "tsnet-rp0")!;
      linkAdd(nl, { name: "rp-host", kind: "veth", master: br.index, up: true, peer: { name: "rp-peer", mac: Uint8Array.of(2, 0x42, 0, 0, 0, 7) } });
      linkSet(nl, br.index, { mtu: 1450 }, "tsnet-rp0");
      const links = linkList(nl).map((l) => ({ name: l.name, kind: l.kind, master: l.master === undefined ? undefined : l.master === br.index, up: (l.flags & 1) === 1, mac: l.name === "rp-peer" ? hex(l.mac) : undefined }));
      const missing = linkGet(nl, "no-such-link");
      const delMissing = failure(() => linkDel(nl, "no-such-link"));
      const dup = failure(() => linkAdd(nl, { name: "tsnet-rp0", kind: "bridge" }));
      linkDel(nl, "rp-host");
      const after = linkList(nl).map((l) => l.name);
      return { links, missing: missing === undefined, delMissing, dup, after };
    },
  },
  {
    name: "rtnetlink-addresses-routes",
    bus: NETLINK_ROUTE,
    run(nl) {
      nl = nl!;
      linkAdd(nl, { name: "tsnet-rp1", kind: "bridge", up: true });
      const br = linkGet(nl, "tsnet-rp1")!;
      addrAdd(nl, br.index, parseIp("10.99.0.1")!, 24, "tsnet-rp1");
      addrAdd(nl, br.index, parseIp("fd00:99::1")!, 64, "tsnet-rp1");
      routeAdd(nl, { dst: parseIp("10.98.0.0")!, dstLen: 16, gateway: parseIp("10.99.0.2")!, oif: br.index }, "the test");
      const dupAddr = failure(() => addrAdd(nl, br.index, parseIp("10.99.0.1")!, 24, "tsnet-rp1"));
      const badRoute = failure(() => routeAdd(nl, { dstLen: 0, gateway: parseIp("10.200.0.1")!, oif: br.index }, "the test"));
      const v4 = addrList(nl, AF_INET).filter((a) => a.index === br.index).map((a) => `${formatIp(a.address)}/${a.prefix}`);
      const v6 = addrList(nl, AF_INET6).filter((a) => a.index === br.index).map((a) => `${formatIp(a.address)}/${a.prefix}`);
      const routes = routeList(nl, AF_INET)
        .filter((r) => r.oif === br.index)
        .map((r) => ({ table: r.table, type: r.type, dst: r.dst ? `${formatIp(r.dst)}/${r.dstLen}` : "default", gateway: r.gateway ? formatIp(r.gateway) : undefined }));
      linkDel(nl, "tsnet-rp1");
      return { v4, v6, routes, dupAddr, badRoute };
    },
  },
  {
    name: "rtnetlink-tc-guard",
    bus: NETLINK_ROUTE,
    run(nl) {
      nl = nl!;
      linkAdd(nl, { name: "rp-tc", kind: "veth", up: true, peer: { name: "rp-tc-peer" } });
      const l = linkGet(nl, "rp-tc")!;
      clsactAdd(nl, l.index, "rp-tc");
      bpfFilterAdd(nl, l.index, loopbackGuardFilter(), false, "rp-tc");
      const twice = failure(() => bpfFilterAdd(nl, l.index, loopbackGuardFilter(), false, "rp-tc"));
      bpfFilterAdd(nl, l.index, loopbackGuardFilter(), true, "rp-tc");
      const filters = filterList(nl, l.index, CLSACT_INGRESS, "rp-tc").map((f) => ({ kind: f.kind, prio: f.prio, guard: isLoopbackGuard(f) }));
      linkDel(nl, "rp-tc");
      return { filters, twice };
    },
  },
  {
    name: "nftables-nat-table",
    bus: NETLINK_NETFILTER,
    run(nl) {
      nl = nl!;
      const networks = [
        { name: "bridge", bridge: "tsnet0", subnets: [{ net: 0x0a4d0000, prefix: 16 }], internal: false },
        { name: "dual", bridge: "tsnet-d", subnets: [{ net: 0x0a4f0000, prefix: 24 }], subnets6: [parsePrefix("fd00:4f::/64")!], internal: false, icc: false },
        { name: "back", bridge: "tsnet-b", subnets: [{ net: 0x0a4e0000, prefix: 24 }], internal: true },
      ];
      const spec = natTable({ table: "rp", networks });
      const first = ensureTable(nl, spec);
      const again = ensureTable(nl, spec, { onlyIfDrifted: true });
      const ip = (t: string) => parseIp(t)!;
      const ports = portElements("c0ffee", "web", [
        { proto: "tcp", hostIp: ip("0.0.0.0"), hostPort: 8080, containerIp: ip("10.79.0.2"), containerPort: 80 },
        { proto: "tcp", hostIp: ip("::"), hostPort: 8080, containerIp: ip("fd00:4f::2"), containerPort: 80 },
        { proto: "udp", hostIp: ip("127.0.0.1"), hostPort: 5353, containerIp: ip("10.79.0.2"), containerPort: 53 },
        { proto: "tcp", hostIp: ip("fd00:77::1"), hostPort: 8443, containerIp: ip("fd00:4f::2"), containerPort: 443 },
      ]);
      const added = ensureTable(nl, spec, { add: ports });
      const elements = ["ports", "hostip_ports", "ports6", "hostip_ports6"].map((s) => listElements(nl, "inet", "rp", s).map((e) => ({ key: hex(e.key), data: hex(e.data), comment: e.comment })));
      const rules = listRules(nl, "inet", "rp").map((r) => `${r.chain}: ${r.comment ?? ""} [${r.exprs.map((e) => e.name).join(" ")}]`);
      const removed = ensureTable(nl, spec, { deleteTagged: "c0ffee" });
      const grown = ensureTable(nl, natTable({ table: "rp", networks: networks.slice(0, 1) }));
      const summary = (r: ReturnType<typeof ensureTable>) => ({ ...r, deleted: Object.fromEntries(Object.entries(r.deleted).map(([k, v]) => [k, v.length])) });
      return {
        first: summary(first), again: summary(again), added: summary(added), removed: summary(removed), grown: summary(grown),
        elements, rules, exists: tableExists(nl, "inet", "rp"), missing: tableExists(nl, "inet", "no-such-table"),
      };
    },
  },
  {
    name: "nat-ports",
    bus: NETLINK_NETFILTER,
    opensOwn: true,
    run() {
      const ip = (t: string) => parseIp(t)!;
      const networks = [{ name: "bridge", bridge: "tsnet0", subnets: [{ net: 0x0a4d0000, prefix: 16 }], subnets6: [parsePrefix("fd00:4d::/64")!], internal: false }];
      const owner = { tag: "0ddba11", name: "web" };
      const ports = [
        { proto: "tcp" as const, hostIp: ip("0.0.0.0"), hostPort: 8080, containerIp: ip("10.77.0.2"), containerPort: 80 },
        { proto: "tcp" as const, hostIp: ip("::"), hostPort: 8080, containerIp: ip("fd00:4d::2"), containerPort: 80 },
      ];
      const missingBefore = !natTableExists();
      // Before the table exists the elements cannot go in: publishPorts says so, and the repairing
      // path makes the table with them in one transaction.
      const plain = publishPorts(owner, ports);
      publishPortsRepairing(owner, ports, networks);
      const listed = listPublished().map((p) => ({ ...p, hostIp: formatIp(p.hostIp), containerIp: formatIp(p.containerIp) }));
      const byTag = publishedPorts(owner.tag).length;
      const noDrift = restoreNatTable(networks, [{ owner, ports }]).committed;
      unpublishPorts(owner, ports);
      const after = listPublished().length;
      ensureNatTable(networks);
      return { missingBefore, plain, listed, byTag, noDrift, after, exists: natTableExists() };
    },
  },
  {
    name: "rtnetlink-bridge-port",
    bus: NETLINK_ROUTE,
    run(nl) {
      nl = nl!;
      linkAdd(nl, { name: "tsnet-rp2", kind: "bridge", up: true });
      const br = linkGet(nl, "tsnet-rp2")!;
      linkAdd(nl, { name: "rp-port", kind: "veth", master: br.index, peer: { name: "rp-port-peer" } });
      const port = linkGet(nl, "rp-port")!;
      bridgePortHairpin(nl, port.index, true, "rp-port");
      const hairpinOnBridge = failure(() => bridgePortHairpin(nl, br.index, true, "tsnet-rp2"));
      addrAdd(nl, br.index, parseIp("10.97.0.1")!, 24, "tsnet-rp2");
      addrAdd(nl, br.index, parseIp("fd00:97::1")!, 64, "tsnet-rp2");
      addrDel(nl, br.index, parseIp("10.97.0.1")!, 24, "tsnet-rp2");
      // Not there (any more): not an error.
      addrDel(nl, br.index, parseIp("10.97.0.1")!, 24, "tsnet-rp2");
      const v4 = addrList(nl, AF_INET).filter((a) => a.index === br.index).map((a) => `${formatIp(a.address)}/${a.prefix}`);
      const v6 = addrList(nl, AF_INET6).filter((a) => a.index === br.index).map((a) => `${formatIp(a.address)}/${a.prefix}`);
      linkDelIfExists(nl, "rp-port");
      linkDelIfExists(nl, "rp-port");
      const badMtu = failure(() => linkSet(nl, br.index, { mtu: 1 }, "tsnet-rp2"));
      linkDel(nl, "tsnet-rp2");
      return { master: port.master === br.index, kind: port.kind, hairpinOnBridge, v4, v6, badMtu, left: linkList(nl).filter((l) => l.name.startsWith("rp-") || l.name === "tsnet-rp2").map((l) => l.name) };
    },
  },
  {
    name: "nftables-objects",
    bus: NETLINK_NETFILTER,
    run(nl) {
      nl = nl!;
      const ip = (t: string) => parseIp(t)!;
      const tagged = (tag: string, port: number) => ({ key: value.port(port), comment: `${tag} owner ${port}` });
      // Made in one batch without reading first (createTable), then read back.
      createTable(nl, {
        family: "inet",
        name: "rp-obj",
        sets: [
          { name: "svc", key: [inet_service], elements: [tagged("aa", 80), tagged("bb", 443), tagged("aa", 8080)] },
          { name: "pairs", key: [inet_proto, inet_service] },
          { name: "spare", key: [ipv4_addr] },
        ],
        chains: [
          { name: "in", base: { type: "filter", hook: "input", priority: NF_IP_PRI_FILTER, policy: "accept" } },
          { name: "sub" },
          { name: "empty" },
        ],
      });
      const b = new Batch();
      const rule = (exprs: expr.Expr[], comment: string) => addRule(b, "inet", "rp-obj", "sub", { exprs: [...exprs, expr.counter(), expr.accept()], comment });
      rule(expr.ipPrefix("saddr", 0x0a600000, 12), "ip saddr /12");
      rule(expr.ipPrefix("daddr", 0x0a610000, 16, NFT_CMP_NEQ), "ip daddr != /16");
      rule(ip6Prefix("saddr", parsePrefix("fd00:96::/60")!), "ip6 saddr /60");
      rule(ip6Prefix("daddr", parsePrefix("fd00:96::/64")!), "ip6 daddr /64");
      rule(ip6Daddr(ipBytes(ip("::1")), NFT_CMP_NEQ), "ip6 daddr != ::1");
      rule(ctStateNone(2), "ct state not established");
      rule([...expr.fibDaddrType(RTN_LOCAL), ...expr.iifname("rp-in"), ...expr.oifname("rp-out", NFT_CMP_NEQ)], "fib, iif, oif");
      rule(inSet([expr.fields.l4proto, expr.fields.thDport], "pairs", true), "not in set");
      addRule(b, "inet", "rp-obj", "in", { exprs: [expr.jump("sub")], comment: "jump" });
      addRule(b, "inet", "rp-obj", "in", { exprs: [expr.goto("empty")], comment: "goto" });
      b.commitUnconditional(nl);
      const rules = listRules(nl, "inet", "rp-obj").map(ruleText);
      const onlySub = listRules(nl, "inet", "rp-obj", "sub").length;
      const sets = ["svc", "pairs", "spare", "nope"].map((s) => setExists(nl, "inet", "rp-obj", s));
      const noTable = setExists(nl, "inet", "no-such-table", "svc");
      const deleted = Object.fromEntries(Object.entries(deleteTaggedElements(nl, "inet", "rp-obj", ["svc", "pairs", "nope"], "aa")).map(([k, v]) => [k, v.map((e) => e.comment)]));
      const left = listElements(nl, "inet", "rp-obj", "svc").map((e) => e.comment);
      const nothing = deleteTaggedElements(nl, "inet", "no-such-table", ["svc"], "aa");
      // A chain still jumped to cannot go; a rule naming a set that is not there is refused by attribute.
      const busyChain = failure(() => { const d = new Batch(); deleteChain(d, "inet", "rp-obj", "empty"); d.commitUnconditional(nl); });
      const badRule = failure(() => { const d = new Batch(); addRule(d, "inet", "rp-obj", "sub", { exprs: inSet([expr.fields.thDport], "nope"), comment: "bad" }); d.commitUnconditional(nl); });
      const d = new Batch();
      deleteSet(d, "inet", "rp-obj", "spare");
      addSet(d, "inet", "rp-obj", { name: "later", key: [inet_service], data: [ipv4_addr, inet_service] });
      d.commitUnconditional(nl);
      const afterSets = ["spare", "later"].map((s) => setExists(nl, "inet", "rp-obj", s));
      const e = new Batch();
      deleteTable(e, "inet", "rp-obj");
      e.commitUnconditional(nl);
      return { rules, onlySub, sets, noTable, deleted, left, nothing, busyChain, badRule, afterSets, gone: !tableExists(nl, "inet", "rp-obj") };
    },
  },
  {
    name: "nat-dns-redirect",
    bus: NETLINK_NETFILTER,
    opensOwn: true,
    run() {
      const resolver = 0x7f00000b;
      const nl = openNftSocket();
      const made = ensureTable(nl, dnsRedirectTable(resolver, 40053));
      const rules = listRules(nl, "inet", DNS_TABLE).map(ruleText);
      const again = ensureTable(nl, dnsRedirectTable(resolver, 40053), { onlyIfDrifted: true });
      // Another resolver's port (a supervisor adopting the container): the chain is rewritten in place.
      const moved = ensureTable(nl, dnsRedirectTable(resolver, 40054), { onlyIfDrifted: true });
      removeDnsRedirect();
      const gone = !tableExists(nl, "inet", DNS_TABLE);
      removeDnsRedirect(); // nothing left to remove
      nl.close();
      return { made: summary(made), rules, again: summary(again), moved: summary(moved), gone };
    },
  },
  {
    name: "nat-owners",
    bus: NETLINK_NETFILTER,
    opensOwn: true,
    run() {
      const ip = (t: string) => parseIp(t)!;
      const networks = [{ name: "bridge", bridge: "tsnet0", subnets: [{ net: 0x0a4d0000, prefix: 16 }], subnets6: [parsePrefix("fd00:4d::/64")!], internal: false }];
      const alice = { tag: "a11ce", name: "alice" };
      const bob = { tag: "b0b", name: "bob" };
      const alicePorts = [
        { proto: "tcp" as const, hostIp: ip("0.0.0.0"), hostPort: 8080, containerIp: ip("10.77.0.2"), containerPort: 80 },
        { proto: "udp" as const, hostIp: ip("127.0.0.1"), hostPort: 5353, containerIp: ip("10.77.0.2"), containerPort: 53 },
        { proto: "tcp" as const, hostIp: ip("::"), hostPort: 8080, containerIp: ip("fd00:4d::2"), containerPort: 80 },
      ];
      const bobPorts = [{ proto: "tcp" as const, hostIp: ip("0.0.0.0"), hostPort: 9090, containerIp: ip("10.77.0.3"), containerPort: 80 }];
      ensureNatTable(networks);
      const published = publishPorts(alice, alicePorts);
      // Bob asks for ports Alice holds: the kernel says EEXIST and the error names her.
      const clashAny = failure(() => publishPorts(bob, [{ proto: "tcp", hostIp: ip("0.0.0.0"), hostPort: 8080, containerIp: ip("10.77.0.3"), containerPort: 80 }]));
      const clashAddr = failure(() => publishPorts(bob, [{ proto: "udp", hostIp: ip("127.0.0.1"), hostPort: 5353, containerIp: ip("10.77.0.3"), containerPort: 53 }]));
      publishPorts(bob, bobPorts);
      const owners = [...publishedPortsByOwner()].map(([tag, ports]) => `${tag}: ${ports.map((p) => `${formatIp(p.hostIp)}:${p.hostPort}/${p.proto}`).join(" ")}`);
      // A record naming a port Alice never published: the delete by key fails, so her tag is searched for.
      unpublishPorts(alice, [{ proto: "tcp", hostIp: ip("0.0.0.0"), hostPort: 7070, containerIp: ip("10.77.0.2"), containerPort: 80 }]);
      const afterAlice = listPublished().map((p) => `${p.tag} ${p.hostPort}`);
      const owned = [{ owner: alice, ports: alicePorts }, { owner: bob, ports: bobPorts }];
      const dry = restoreNatTable(networks, owned, { dryRun: true });
      const plans: number[] = [];
      const restored = restoreNatTable(networks, owned, { beforeCommit: (p) => plans.push(p.added) });
      const guardAfterElements = guardWasMissing(restored);
      const b = new Batch();
      deleteTable(b, "inet", "tsnet");
      b.commitUnconditional(natSocket());
      const flushed = restoreNatTable(networks, owned);
      const clean = restoreNatTable(networks, owned);
      unpublishPorts(bob);
      return {
        published, clashAny, clashAddr, owners, afterAlice,
        dry: summary(dry), plans, restored: summary(restored), guardAfterElements,
        flushed: { tableMissing: flushed.tableMissing, added: flushed.added, committed: flushed.committed, guard: guardWasMissing(flushed) },
        clean: summary(clean), guardClean: guardWasMissing(clean), left: listPublished().map((p) => p.tag),
      };
    },
  },
];
