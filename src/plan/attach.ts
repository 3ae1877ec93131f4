// The planners of a container's network: its attach to a bridge network, its teardown, and the
// port elements it publishes. Pure functions: what was read (the namespace's default routes) and
// the request (names, leased addresses, options) in, operations out; nothing here touches the
// kernel, so `tsnet explain` calls them as `run` does and commits nothing.
import { UsageError } from "../errors/errors.ts";
import { formatPrefix, type Family, type IpAddress, type IpPrefix } from "../ip/addr.ts";
import type { AimedPort } from "../ip/port.ts";
import { NAT_TABLE } from "../nat/portmap.ts";
import { portElements } from "../nat/ruleset.ts";
import { linkKey, sysctlKey, type NetnsRef, type Op, type Plan } from "./ops.ts";

/** In a namespace that holds only lo (1), the first link made there can ask for ifindex 2. */
export const FIRST_IFINDEX = 2;

/** What attaching reads from the kernel first. */
export interface AttachRead {
  /**
   * The families that have a default route in the namespace's main table already (an earlier
   * network's, or a CNI runtime's other plugin's); a namespace this run just made has none.
   */
  defaultRoutes: readonly Family[];
}

/** One leased address with its subnet's prefix and gateway (none on a network without one). */
export interface LeasedAddress {
  address: IpAddress;
  prefix: number;
  gateway?: IpAddress;
}

/** A route besides the default one; the network's gateway of its family when `gw` is absent. */
export interface PlannedRoute {
  dst: IpPrefix;
  gw?: IpAddress;
}

export interface AttachRequest {
  /** The namespace, as the plan names it (tsnet-NAME, or a CNI runtime's path). */
  netns: NetnsRef;
  /** The namespace was made by this run and holds only lo: eth0 asks for ifindex 2. */
  fresh: boolean;
  /** lo is still down and goes up with this endpoint. */
  loUp: boolean;
  network: { name: string; bridge: string; mtu?: number; internal: boolean };
  hostVeth: string;
  ifname: string;
  /** "02:74:0a:4d:00:02" */
  mac: string;
  /** One per subnet of the network, IPv4 first. */
  leased: readonly LeasedAddress[];
  hairpin: boolean;
  routes?: readonly PlannedRoute[];
}

export interface AttachPlan extends Plan {
  /** The first family's default route is not made (noDefaultRoute in the endpoint). */
  noDefaultRoute: boolean;
  /** A dual-stack endpoint gets no IPv6 default route (noDefaultRoute6). */
  noDefaultRoute6: boolean;
}

/**
 * A container's attach to a bridge network: the veth pair, its host end on the bridge with the
 * loopback guard (before the other end is up) and hairpin mode, disable_ipv6 on an IPv4-only
 * network (before eth0 is up), lo and eth0 up, the addresses, the default routes and any others.
 * Throws a UsageError for a route the network cannot carry, before anything is made.
 */
export function planAttach(read: AttachRead, req: AttachRequest): AttachPlan {
  const { netns, ifname, hostVeth, network: net } = req;
  const extra = req.routes ?? [];
  const families = new Set(req.leased.map((l) => l.address.family));
  for (const r of extra) {
    if (!families.has(r.dst.family)) {
      throw new UsageError(`route ${formatPrefix(r.dst)} is IPv${r.dst.family} and network ${net.name} has no IPv${r.dst.family} subnet: leave the route out or give the network one`);
    }
    const gw = r.gw ?? req.leased.find((l) => l.address.family === r.dst.family)?.gateway;
    if (!gw) throw new UsageError(`route ${formatPrefix(r.dst)} has no gateway and network ${net.name} has none (isGateway false): give the route a "gw"`);
  }
  // The first network with a way out gives each family its default route; an internal one never
  // does, nor does one whose family already has one, or a route to 0.0.0.0/0 (::/0) given instead.
  const defaults = req.leased.flatMap((l) => {
    const family = l.address.family;
    if (l.gateway === undefined || net.internal || extra.some((r) => r.dst.prefix === 0 && r.dst.family === family)) return [];
    if (!req.fresh && read.defaultRoutes.includes(family)) return [];
    return [l.gateway];
  });
  const first = req.leased[0]?.address.family;
  const ipv6 = families.has(6);
  const ops: Op[] = [
    {
      op: "link-add", name: hostVeth, kind: "veth", master: net.bridge, up: true, ...(net.mtu !== undefined && { mtu: net.mtu }),
      peer: { name: ifname, netns, mac: req.mac, ...(net.mtu !== undefined && { mtu: net.mtu }), ...(req.fresh && { index: FIRST_IFINDEX }) },
      why: `a veth pair: ${hostVeth} on bridge ${net.bridge}, up, the other end born inside the namespace as ${ifname}`,
    },
    { op: "guard", dev: hostVeth, why: `the loopback guard on ${hostVeth}'s ingress, before ${ifname} is up: nothing the container sends to 127.0.0.0/8 or ::1 reaches the host` },
  ];
  if (req.hairpin) {
    ops.push({ op: "link-set", dev: hostVeth, hairpin: true, why: "hairpin mode: a container reaching its own published port through a host address is sent back out of the port it came in by" });
  }
  ops.push({
    op: "sysctl", netns, key: sysctlKey("net", "ipv6", "conf", ifname, "disable_ipv6"), value: ipv6 ? "0" : "1",
    why: ipv6 ? `IPv6 on ${ifname} (a dual-stack network)` : `no IPv6 on ${ifname} (an IPv4-only network), before it is up: no link-local address, no router solicitations`,
  });
  if (req.loUp) ops.push({ op: "link-set", netns, dev: "lo", up: true, why: "lo up: 127.0.0.1 inside the namespace (the DNS resolver listens on 127.0.0.11)" });
  ops.push({ op: "link-set", netns, dev: ifname, up: true, why: `${ifname} up (not in the message that made it: the kernel pairs the two ends only after configuring this one)` });
  for (const l of req.leased) {
    ops.push({
      op: "addr-add", netns, dev: ifname, address: l.address, prefix: l.prefix, ...(l.address.family === 6 && { nodad: true }),
      why: l.address.family === 6 ? `the leased IPv6 address, usable at once (no duplicate address detection: tsnet leased it)` : "the leased address",
    });
  }
  for (const gw of defaults) ops.push({ op: "route-add", netns, dev: ifname, gateway: gw, why: `the default route${gw.family === 6 ? " (IPv6)" : ""}, via the bridge's gateway address` });
  for (const r of extra) {
    const gw = r.gw ?? req.leased.find((l) => l.address.family === r.dst.family)!.gateway!;
    ops.push({ op: "route-add", netns, dev: ifname, dst: r.dst, gateway: gw, why: `a route to ${formatPrefix(r.dst)} the configuration asks for` });
  }
  const indexes: Record<string, number> = {};
  if (req.fresh) indexes[linkKey(netns, ifname)] = FIRST_IFINDEX;
  return {
    ops,
    context: { indexes },
    noDefaultRoute: !defaults.some((g) => g.family === first),
    noDefaultRoute6: ipv6 && !defaults.some((g) => g.family === 6),
  };
}

/**
 * A container's teardown: its namespace's name goes, and the kernel destroys the namespace, and
 * its veth pairs, once nothing holds it. A namespace another container still lives in outlives
 * this one: its veths are deleted first (`shared`), so their addresses are free.
 */
export function planTeardown(netns: string | undefined, hostVeths: readonly string[], shared: boolean): Plan {
  const ops: Op[] = [];
  if (shared) for (const v of hostVeths) ops.push({ op: "link-del", dev: v, ifExists: true, why: `${v} goes (and its other end): the namespace outlives this container` });
  if (netns) {
    ops.push({ op: "netns-del", name: netns, why: shared ? "the container's name for the namespace goes; the joined container keeps it" : "the namespace goes, and with it its veth pairs, in the kernel's cleanup worker (no wait here)" });
  }
  return { ops };
}

/** Published ports: one element each in tsnet's maps, tagged with the owner, in one transaction. */
export function planPublish(owner: { tag: string; name: string }, ports: readonly AimedPort[]): Plan {
  const add = portElements(owner.tag, owner.name, ports);
  if (!add.length) return { ops: [] };
  return { ops: [{ op: "nft-elements", family: "inet", table: NAT_TABLE, add, why: `${owner.name}'s published ports, as elements of tsnet's DNAT maps` }] };
}

/** The same elements deleted by key (the owner's own: the kernel refuses a second element with a key). */
export function planUnpublish(owner: { tag: string; name: string }, ports: readonly AimedPort[]): Plan {
  const del = portElements(owner.tag, owner.name, ports);
  if (!del.length) return { ops: [] };
  return { ops: [{ op: "nft-elements", family: "inet", table: NAT_TABLE, delete: del, why: `${owner.name}'s published ports leave tsnet's DNAT maps` }] };
}

/**
 * CNI ADD: the attach of the runtime's namespace (given by path, so nothing is known of it but
 * what was read), then its port mappings published.
 */
export function planCniAdd(read: AttachRead, req: AttachRequest, owner: { tag: string; name: string }, ports: readonly AimedPort[]): AttachPlan {
  const attach = planAttach(read, req);
  return { ...attach, ops: [...attach.ops, ...planPublish(owner, ports).ops] };
}
