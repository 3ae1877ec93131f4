// Kernel conversations played twice: once against a real kernel in the throwaway host, recorded
// (test/replay/capture.ts writes test/replay/captures/NAME.json), and then in the root-free unit
// tests against that record (test/replay-unit.test.ts). Each scenario returns what the code made
// of the kernel's answers, as JSON; the capture keeps it, and the replay must make the same of
// the same bytes while sending the same requests. A change to an encoder or a decoder fails the
// replay until `npm run capture` records the kernel's answers to the new requests.
import { KernelError } from "../../src/errors/errors.ts";
import { formatIp, parseIp, parsePrefix } from "../../src/ip/addr.ts";
import { NETLINK_NETFILTER, NETLINK_ROUTE } from "../../src/netlink/constants.ts";
import type { NetlinkSocket } from "../../src/netlink/socket.ts";
import { loopbackGuardFilter, isLoopbackGuard } from "../../src/network/guard.ts";
import { natTable, portElements } from "../../src/nat/ruleset.ts";
import { ensureNatTable, listPublished, natTableExists, publishPorts, publishPortsRepairing, publishedPorts, unpublishPorts } from "../../src/nat/portmap.ts";
import { restoreNatTable } from "../../src/nat/restore.ts";
import { ensureTable, listElements, tableExists } from "../../src/nftables/index.ts";
import { listRules } from "../../src/nftables/rule.ts";
import { addrAdd, addrList } from "../../src/rtnetlink/addr.ts";
import { AF_INET, AF_INET6 } from "../../src/rtnetlink/constants.ts";
import { linkAdd, linkDel, linkGet, linkList, linkSet } from "../../src/rtnetlink/link.ts";
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
function failure(fn: () => void): string {
  try {
    fn();
    return "no error";
  } catch (e) {
    if (e instanceof KernelError) return e.message;
    throw e;
  }
}

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
];
