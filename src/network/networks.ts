// The set of networks: Docker's three built-in ones (bridge, host, none) and user networks, each
// a record in /var/lib/tsnet (src/state/networks.ts) whose kernel objects are made on first use.
// tsnet's nf_tables table is derived from all of them at once (src/nat/ruleset.ts), under one
// lock, so two networks never rewrite each other's rules.
import { Cleanup, TsnetError, UsageError, isErrno } from "../errors/errors.ts";
import { ENODEV, ERESTART } from "../errors/errno.ts";
import { warn } from "../errors/notice.ts";
import {
  LINK_LOCAL_V6, contains, formatIp, formatPrefix, nth, overlaps, parseIp, parsePrefix, sizeOf, type IpAddress, type IpPrefix,
} from "../ip/addr.ts";
import { NAT_TABLE, ensureNatTable, natSocket, natTableExists } from "../nat/portmap.ts";
import { natTable, type NatNetwork } from "../nat/ruleset.ts";
import { AF_INET, AF_INET6, IFF_UP, RT_TABLE_MAIN, RTN_UNICAST } from "../rtnetlink/constants.ts";
import { getGeneration, planTable, readTable, type TableSpec, type TableState } from "../nftables/index.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { Committer, commit } from "../plan/commit.ts";
import { planNetworkRm, planNetworkUp } from "../plan/network.ts";
import { linkKey, type Op, type Plan } from "../plan/ops.ts";
import { addrList } from "../rtnetlink/addr.ts";
import { linkDelIfExists, linkGet, linkList, type LinkInfo } from "../rtnetlink/link.ts";
import { routeList } from "../rtnetlink/route.ts";
import { withLock } from "../state/files.ts";
import { forgetLeases, hasLeases } from "../state/leases.ts";
import { forgetAttachmentDir } from "../state/cni.ts";
import {
  IFNAME_RE, bridgeMadeByTsnet, checkNetworkName, deleteNetworkRecord, findNetwork, forgetBridgeMark, listNetworks, markBridgeMade,
  saveNetwork, type NetworkRecord, type SubnetConfig,
} from "../state/networks.ts";
import { newId } from "../state/containers.ts";
import { bridgeReady, formatMac, macFor, type BridgeSpec } from "./bridge.ts";
import { hostCommitEnv } from "./commit.ts";
import { addLoopbackGuard } from "./guard.ts";
import { hostRtnl } from "./host.ts";

// Clear of Docker's 172.17.0.0/16 (and its 172.18-31 pools), Podman's 10.88.0.0/16 and 10.89.x
// networks, and the usual Kubernetes pod and service ranges.
export const DEFAULT_SUBNET = "10.77.0.0/16";
export const SUBNET_ENV = "TSNET_BRIDGE_SUBNET";
export const DEFAULT_BRIDGE = "tsnet0";
/** User networks without --subnet get the first free /24 of this range, as Docker's pools do. */
export const POOL = "10.78.0.0/15";
const POOL_PREFIX = 24;

/** One subnet of a network, parsed: the family travels with the addresses. */
export interface Subnet {
  subnet: IpPrefix;
  gateway: IpAddress;
  /** `--ip-range`: where leases are taken (inside subnet). */
  ipRange?: IpPrefix;
}

export function subnetsOf(n: NetworkRecord): Subnet[] {
  return n.subnets.map((s) => ({
    subnet: parsePrefix(s.subnet)!,
    gateway: parseIp(s.gateway)!,
    ...(s.ipRange !== undefined && { ipRange: parsePrefix(s.ipRange)! }),
  }));
}

/** The addresses a container may have in a subnet (`--ip` too): not the network or broadcast address. */
export function usableRange(s: Pick<Subnet, "subnet">): { first: IpAddress; last: IpAddress } {
  const size = sizeOf(s.subnet);
  const lastUsable = s.subnet.family === 4 ? size - 2n : size - 1n;
  return { first: nth(s.subnet, 1n), last: nth(s.subnet, lastUsable) };
}

/**
 * The addresses containers are given leases from: the usable ones, only those inside the
 * `--ip-range` when the subnet has one (its own first address included, as Docker hands it out).
 */
export function leaseRange(s: Pick<Subnet, "subnet" | "ipRange">): { first: IpAddress; last: IpAddress } {
  const u = usableRange(s);
  if (!s.ipRange) return u;
  const lo = s.ipRange.net;
  const hi = s.ipRange.net + sizeOf(s.ipRange) - 1n;
  const f = s.subnet.family;
  return { first: { family: f, value: lo > u.first.value ? lo : u.first.value }, last: { family: f, value: hi < u.last.value ? hi : u.last.value } };
}

function bridgeSpec(n: NetworkRecord): BridgeSpec {
  // isGateway false: a bridge without an address, as the CNI bridge plugin makes one.
  if (n.isGateway === false) return { bridge: n.bridge!, gateways: [], mtu: n.mtu };
  return { bridge: n.bridge!, gateways: subnetsOf(n).map((s) => ({ address: s.gateway, prefix: s.subnet.prefix })), mtu: n.mtu };
}

/** What the ruleset needs of every bridge network. */
export function natNetworks(all: readonly NetworkRecord[] = listNetworks()): NatNetwork[] {
  return all
    .filter((n) => n.driver === "bridge" && n.bridge)
    .map((n) => ({
      name: n.name,
      bridge: n.bridge!,
      internal: n.internal,
      subnets: subnetsOf(n).filter((s) => s.subnet.family === 4).map((s) => ({ net: Number(s.subnet.net), prefix: s.subnet.prefix })),
      subnets6: subnetsOf(n).filter((s) => s.subnet.family === 6).map((s) => s.subnet),
      masquerade: n.ipMasq !== false,
      hairpin: n.hairpin !== false,
      ...(n.icc === false && { icc: false }),
    }));
}

const NETWORKS_LOCK = "networks";

/**
 * Runs fn holding the lock under which the set of networks and tsnet's table change together
 * (network create/rm, a bridge made on first use, a firewall restore).
 */
export function withNetworksLock<T>(fn: () => T): T {
  return withLock(NETWORKS_LOCK, fn);
}

function seededSubnet(): IpPrefix {
  const text = process.env[SUBNET_ENV] || DEFAULT_SUBNET;
  const subnet = parsePrefix(text);
  if (!subnet || subnet.family !== 4 || subnet.prefix > 30 || subnet.prefix < 8) {
    throw new UsageError(`${SUBNET_ENV}="${text}" is not a usable IPv4 subnet: give one like 10.77.0.0/16 (prefix 8 to 30)`);
  }
  return subnet;
}

function builtinRecord(name: "bridge" | "host" | "none"): NetworkRecord {
  const base = { id: newId(), name, internal: false, builtin: true, created: new Date().toISOString(), labels: {} };
  if (name !== "bridge") return { ...base, driver: name === "host" ? "host" : "null", subnets: [] };
  const subnet = seededSubnet();
  return { ...base, driver: "bridge", bridge: DEFAULT_BRIDGE, subnets: [{ subnet: formatPrefix(subnet), gateway: formatIp(nth(subnet, 1n)) }] };
}

/**
 * Every network as allNetworks would return it, writing nothing (`tsnet explain`): the built-in
 * ones not written yet are computed as they would be written.
 */
export function knownNetworks(): NetworkRecord[] {
  const all = listNetworks();
  for (const b of ["bridge", "host", "none"] as const) if (!all.some((n) => n.builtin && n.name === b)) all.push(builtinRecord(b));
  return all;
}

/** Every network, the three built-in ones made (as records only) on first need. */
export function allNetworks(): NetworkRecord[] {
  let all = listNetworks();
  if (["bridge", "host", "none"].every((b) => all.some((n) => n.builtin && n.name === b))) return all;
  return withLock(NETWORKS_LOCK, () => {
    all = listNetworks();
    for (const b of ["bridge", "host", "none"] as const) {
      if (all.some((n) => n.builtin && n.name === b)) continue;
      const rec = builtinRecord(b);
      saveNetwork(rec);
      all.push(rec);
    }
    return all;
  });
}

/** A network by name, id or unique id prefix; exit 1 when there is none (an object error). */
export function mustFindNetwork(ref: string, all = allNetworks()): NetworkRecord {
  const n = findNetwork(ref, all);
  if (!n) throw new TsnetError(`no such network: ${ref} (see tsnet network ls)`, 1);
  return n;
}

/**
 * Makes sure the network's kernel objects exist: the bridge with its gateway addresses, and
 * tsnet's table with this network in it. The common case (all there) costs two lookups; the
 * bridge is made, and the whole table compared with the set of networks, only when the bridge is
 * missing or broken (first use, after a reboot, after someone deleted it). Returns the bridge's
 * ifindex.
 */
export function networkUp(net: NetworkRecord): number {
  if (net.builtin && net.name === "bridge" && process.env[SUBNET_ENV]) noteSubnetEnv(net);
  const nl = hostRtnl();
  const ready = bridgeReady(nl, bridgeSpec(net));
  if (ready !== undefined) {
    if (!natTableExists()) ensureNatTable(natNetworks());
    return ready;
  }
  return withLock(NETWORKS_LOCK, () => {
    const recorded = findNetwork(net.id);
    // Removed (or its creation undone) by another process while this one waited for the lock:
    // making its bridge now would bring back a network that no record names.
    if (!recorded && !net.builtin) throw new TsnetError(`network ${net.name} was removed meanwhile: create it again with tsnet network create ${net.name}`);
    const current = seeded(recorded ?? net);
    const spec = bridgeSpec(current);
    const again = bridgeReady(nl, spec);
    if (again !== undefined) {
      if (!natTableExists()) ensureNatTable(natNetworks());
      return again;
    }
    const all = listNetworks().filter((n) => n.id !== current.id);
    for (const s of subnetsOf(current)) refuseOverlap(current, s.subnet, all);
    const index = bringUp(current, [...all, current], { created: false });
    if (!current.madeAt) saveNetwork({ ...current, madeAt: new Date().toISOString() });
    return index;
  });
}

/** TSNET_BRIDGE_SUBNET seeds the default network until its bridge is first made. */
function seeded(net: NetworkRecord): NetworkRecord {
  if (!(net.builtin && net.name === "bridge" && !net.madeAt && process.env[SUBNET_ENV])) return net;
  return { ...builtinRecord("bridge"), id: net.id, created: net.created };
}

/** What bringing a network up, or removing it, depends on: read from the kernel in one place. */
interface BridgeRead {
  generation: number;
  table: TableState;
  link?: LinkInfo;
  addresses: IpAddress[];
}

function readBridge(spec: BridgeSpec, table: TableSpec): BridgeRead {
  const nl = hostRtnl();
  const nft = natSocket();
  // The generation before the table: a change in between makes the kernel refuse the commit.
  const generation = getGeneration(nft);
  const state = readTable(nft, table);
  const link = linkGet(nl, spec.bridge);
  const families = new Set(spec.gateways.map((g) => g.address.family));
  const addresses = link ? [...families].flatMap((f) => addrList(nl, f === 4 ? AF_INET : AF_INET6).filter((a) => a.index === link.index).map((a) => a.address)) : [];
  return { generation, table: state, ...(link && { link }), addresses };
}

/**
 * Brings the network's kernel objects up: read (tsnet's table, the bridge, its addresses and
 * ports), planned (planNetworkUp) and committed. The table first, then the bridge: the moment the
 * bridge is ready (up, with its gateway), other processes take it as made, without the networks
 * lock, and attach veths to it. So nothing may fail after that and have the bridge deleted under
 * them (a veth added to a bridge index that is gone is EINVAL): a failure before it deletes the
 * bridge this call made; after it (the guards, route_localnet) the bridge stays. The table names
 * the bridge only by name: rules for a bridge that failed to appear are harmless, and the next
 * first use rewrites the table anyway. A concurrent change to the ruleset between the read and
 * the commit (ERESTART) has everything read and planned again. `made.created` says, as soon as
 * it is so, that this call made the bridge. Returns its ifindex.
 */
function bringUp(net: NetworkRecord, networks: readonly NetworkRecord[], made: { created: boolean }): number {
  const spec = bridgeSpec(net);
  const table = natTable({ table: NAT_TABLE, networks: natNetworks(networks) });
  for (let attempt = 1; ; attempt++) {
    const { r, ports, plan } = readAndPlanUp(net, spec, table);
    const known: Record<string, number> = {};
    if (r.link) known[linkKey(undefined, spec.bridge)] = r.link.index;
    for (const p of ports) known[linkKey(undefined, p.name)] = p.index;
    // A port whose container ended meanwhile is gone, and its way in with it.
    const env = { ...hostCommitEnv(undefined, known), guard: guardIfThere };
    const c = new Committer(env, plan);
    // The bridge is ready once the ops before the guards and route_localnet are in.
    const after = plan.ops.findIndex((o) => o.op === "guard" || (o.op === "sysctl" && o.key.endsWith(".route_localnet")));
    const tail = after < 0 ? plan.ops.length : after;
    const creates = plan.ops.some((o) => o.op === "link-add");
    try {
      c.run(plan.ops.slice(0, tail));
    } catch (e) {
      if (attempt < MAX_TABLE_ATTEMPTS && isErrno(e, ERESTART)) continue;
      if (creates && c.known(undefined, spec.bridge) !== undefined) {
        try {
          linkDelIfExists(hostRtnl(), spec.bridge);
        } catch (undo) {
          if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
        }
      }
      throw e;
    }
    if (creates) {
      made.created = true;
      markBridgeMade(net.id, spec.bridge);
    }
    // Only now that the guard is in place (see setRouteLocalnet).
    c.run(plan.ops.slice(tail));
    return c.known(undefined, spec.bridge)!;
  }
}

/**
 * A network's bring-up, read (readBridge, and the bridge's veths, which get the guard) and planned
 * (planNetworkUp): what bringUp commits and `tsnet explain` prints. Refuses a link of the bridge's
 * name that is no bridge.
 */
function readAndPlanUp(net: NetworkRecord, spec: BridgeSpec, table: TableSpec): { r: BridgeRead; ports: LinkInfo[]; plan: Plan } {
  const r = readBridge(spec, table);
  if (r.link && r.link.kind !== "bridge") {
    throw new TsnetError(`cannot use ${spec.bridge} as a bridge: a link of that name exists and is ${r.link.kind ? `a ${r.link.kind}` : "not a bridge"}; give the network another bridge name`);
  }
  const ports = r.link ? linkList(hostRtnl()).filter((l) => l.master === r.link!.index && l.kind === "veth") : [];
  const plan = planNetworkUp(
    { generation: r.generation, table: r.table, ports: ports.map((p) => p.name), ...(r.link && { bridge: { kind: r.link.kind, up: (r.link.flags & IFF_UP) !== 0, addresses: r.addresses } }) },
    {
      name: net.name, bridge: spec.bridge, ...(spec.gateways[0] && { mac: formatMac(macFor(spec.gateways[0].address)) }),
      ...(spec.mtu !== undefined && { mtu: spec.mtu }), gateways: spec.gateways, icc: net.icc !== false, table,
    },
  );
  return { r, ports, plan };
}

/** As often as ensureTable retries: on a host's first use many processes commit at once. */
const MAX_TABLE_ATTEMPTS = 1000;

function guardIfThere(nl: NetlinkSocket, ifindex: number, dev: string): boolean {
  try {
    return addLoopbackGuard(nl, ifindex, dev);
  } catch (e) {
    if (isErrno(e, ENODEV)) return true;
    throw e;
  }
}

/**
 * What networkUp would do now, as operations, changing nothing (`tsnet explain`): nothing when the
 * bridge is ready and tsnet's table exists; the table alone when only it is missing; otherwise the
 * whole bring-up, planned from the bridge, table and bridge ports as read (planNetworkUp). Refuses
 * what networkUp refuses (an overlapping subnet, a link of the bridge's name that is no bridge).
 * `all`: every network, this one among them or not (a network being created).
 */
export function planBringUp(net: NetworkRecord, all: readonly NetworkRecord[] = knownNetworks()): Op[] {
  const current = seeded(net);
  const others = all.filter((n) => n.id !== current.id && n.name !== current.name);
  const nl = hostRtnl();
  const spec = bridgeSpec(current);
  const table = natTable({ table: NAT_TABLE, networks: natNetworks([...others, current]) });
  if (bridgeReady(nl, spec) !== undefined) {
    if (natTableExists()) return [];
    // As networkUp remakes it: from the networks in their order.
    const table = natTable({ table: NAT_TABLE, networks: natNetworks(all.some((n) => n.id === current.id) ? all : [...all, current]) });
    const { changes } = planTable(readTable(natSocket(), table), table);
    return [{ op: "nft-table", spec: table, changes, why: `tsnet's table ${table.family} ${table.name} is missing: made again from the set of networks` }];
  }
  for (const s of subnetsOf(current)) refuseOverlap(current, s.subnet, others);
  const { plan } = readAndPlanUp(current, spec, table);
  return plan.ops;
}

/**
 * TSNET_BRIDGE_SUBNET only seeds the default network: once its bridge has been made, a different
 * value is ignored (with a warning), so one invocation can never re-address a bridge in use.
 */
function noteSubnetEnv(net: NetworkRecord): void {
  const wanted = seededSubnet();
  if (net.madeAt && net.subnets[0]?.subnet !== formatPrefix(wanted)) {
    warn(`${SUBNET_ENV}=${process.env[SUBNET_ENV]} is ignored: the bridge network already exists with subnet ${net.subnets[0]?.subnet} (the variable only seeds it when it is first made)`);
  }
}

// IPv4 ranges no bridge may take: their addresses mean something else on every host. A bridge
// holding 127.0.0.1/24 takes the host's own loopback services away from it; a multicast or
// reserved gateway cannot route.
const RESERVED = [
  ["0.0.0.0/8", "\"this network\""], ["127.0.0.0/8", "loopback"], ["169.254.0.0/16", "link-local"],
  ["224.0.0.0/4", "multicast"], ["240.0.0.0/4", "reserved"],
  // IPv6: the unspecified and loopback addresses, IPv4-mapped space, link-local, multicast.
  ["::/127", "unspecified and loopback"], ["::ffff:0:0/96", "IPv4-mapped"], ["fe80::/10", "link-local"], ["ff00::/8", "multicast"],
].map(([range, what]) => ({ range: parsePrefix(range!)!, what: what! }));

/**
 * Refuses a subnet that is reserved or overlaps another network or a route of the host, naming it.
 * A route through the network's own bridge (`net.bridge`: one being mended, whose other family's
 * gateway, and so its route, is still there) is its own, not the host's.
 */
function refuseOverlap(net: Pick<NetworkRecord, "name" | "builtin" | "bridge">, subnet: IpPrefix, others: readonly NetworkRecord[], subnetWord = "--subnet"): void {
  const hint = net.builtin ? `set ${SUBNET_ENV} to a free range (for example 10.78.0.0/16)` : `choose another ${subnetWord}`;
  const reserved = RESERVED.find((r) => overlaps(r.range, subnet));
  if (reserved) {
    const privateRanges = subnet.family === 4 ? "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16" : "fc00::/7, e.g. fd00:80::/64";
    throw new UsageError(`the ${net.name} network's subnet ${formatPrefix(subnet)} overlaps ${formatPrefix(reserved.range)}, the ${reserved.what} range: ${hint} in a private range (${privateRanges})`);
  }
  for (const o of others) {
    for (const s of subnetsOf(o)) {
      if (overlaps(s.subnet, subnet)) {
        throw new UsageError(`the ${net.name} network's subnet ${formatPrefix(subnet)} overlaps network ${o.name} (${formatPrefix(s.subnet)}): ${hint}`);
      }
    }
  }
  const clash = hostRouteOverlapping(subnet, net.bridge ? [...others, net] : others);
  if (clash) throw new UsageError(`the ${net.name} network's subnet ${formatPrefix(subnet)} overlaps the host route ${clash}: ${hint}`);
}

/** The host's routes of one family (main table, not through a tsnet bridge), as `ip route` shows them. */
function hostRoutes(family: 4 | 6, networks: readonly Pick<NetworkRecord, "bridge">[]): { prefix: IpPrefix; text: string }[] {
  const nl = hostRtnl();
  const links = linkList(nl);
  const ours = new Set(networks.map((n) => n.bridge).filter(Boolean));
  const out: { prefix: IpPrefix; text: string }[] = [];
  for (const r of routeList(nl, family === 4 ? AF_INET : AF_INET6)) {
    if (r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST || r.dstLen === 0 || !r.dst) continue;
    const dev = links.find((l) => l.index === r.oif)?.name;
    if (dev && ours.has(dev)) continue;
    // Every IPv6 link has its fe80::/64 route; link-local space is refused as reserved anyway.
    if (family === 6 && overlaps(LINK_LOCAL_V6, { family, net: r.dst.value, prefix: r.dstLen })) continue;
    out.push({ prefix: { family, net: r.dst.value, prefix: r.dstLen }, text: `${formatIp(r.dst)}/${r.dstLen} dev ${dev ?? `ifindex ${r.oif}`}` });
  }
  return out;
}

/** A host route (main table, not through a tsnet bridge) that overlaps subnet, as `ip route` shows it. */
function hostRouteOverlapping(subnet: IpPrefix, networks: readonly Pick<NetworkRecord, "bridge">[]): string | undefined {
  return hostRoutes(subnet.family, networks).find((r) => overlaps(r.prefix, subnet))?.text;
}

export interface CreateNetworkOptions {
  name: string;
  /** At most one IPv4 and one IPv6 subnet (`--subnet`, repeated). */
  subnets?: readonly string[];
  /** At most one gateway per family, each in the subnet of its family (`--gateway`, repeated). */
  gateways?: readonly string[];
  /** Dual stack (`--ipv6`): an IPv6 subnet too, the first free /64 of ULA_POOL if none is given. */
  ipv6?: boolean;
  internal: boolean;
  labels?: Record<string, string>;
  /** The bridge's name (a CNI configuration's `bridge`); `tsnet-` and 9 hex of the id when absent. */
  bridge?: string;
  /** The record's options of the same names (see NetworkRecord). */
  ipMasq?: boolean;
  mtu?: number;
  hairpin?: boolean;
  isGateway?: boolean;
  /** `--ip-range` values, each inside one subnet (one per subnet). */
  ipRanges?: readonly string[];
  icc?: boolean;
  hostBindingIpv4?: string;
  /** `-o` options as given, shown by `network inspect`. */
  options?: Record<string, string>;
  /** How the caller spells the subnet and gateway settings in messages (`--subnet`, `--gateway`). */
  subnetWord?: string;
  gatewayWord?: string;
  /** How the caller spells dual stack in messages (`--ipv6`). */
  ipv6Word?: string;
  /** How the caller spells the MTU setting in messages (`-o com.docker.network.driver.mtu`). */
  mtuWord?: string;
}

/**
 * The ULA range dual-stack networks without an IPv6 --subnet take their /64 from ("ts" is 7473
 * in hex): the first /64 no other network holds.
 */
export const ULA_POOL = "fd00:7473::/48";
const ULA_PREFIX = 64;
/**
 * IPv6 prefix lengths a network may have. /124 (16 addresses) is the longest: a /127 or /128
 * leaves no address for a container beside the gateway. Below /16 a "subnet" would swallow
 * whole address plans (fc00::/7 is all of ULA space).
 */
const V6_MIN_PREFIX = 16, V6_MAX_PREFIX = 124;
/**
 * IPv6's least link MTU (RFC 8200; include/uapi/linux/ipv6.h). The kernel turns IPv6 off on a link
 * whose MTU is below it, so a dual-stack bridge with a smaller MTU refuses its IPv6 gateway.
 */
const IPV6_MIN_MTU = 1280;

/** One family's subnet and gateway, checked on their own (overlaps are checked under the lock). */
interface Wanted {
  subnet?: IpPrefix;
  gateway?: IpAddress;
}

/** --subnet and --gateway, sorted by family, with Docker's rules; throws a UsageError naming the flag. */
function wantedSubnets(o: CreateNetworkOptions): { v4: Wanted; v6: Wanted } {
  const subnetWord = o.subnetWord ?? "--subnet";
  const gatewayWord = o.gatewayWord ?? "--gateway";
  const ipv6Word = o.ipv6Word ?? "--ipv6";
  const out = { v4: {} as Wanted, v6: {} as Wanted };
  for (const text of o.subnets ?? []) {
    const subnet = parsePrefix(text, true);
    if (!subnet) {
      const loose = parsePrefix(text);
      throw new UsageError(
        loose
          ? `invalid ${subnetWord} "${text}": host bits are set; did you mean ${formatPrefix(loose)}?`
          : `invalid ${subnetWord} "${text}": give an address and prefix length, e.g. ${subnetWord} 10.80.0.0/24 or ${subnetWord} fd00:80::/64`,
      );
    }
    const slot = subnet.family === 4 ? out.v4 : out.v6;
    if (slot.subnet) {
      throw new UsageError(`${subnetWord} ${text}: the network already has the IPv${subnet.family} subnet ${formatPrefix(slot.subnet)}; give at most one IPv4 and one IPv6 ${subnetWord}`);
    }
    if (subnet.family === 4 && (subnet.prefix > 30 || subnet.prefix < 8)) throw new UsageError(`${subnetWord} ${text}: use a prefix length from 8 to 30`);
    if (subnet.family === 6) {
      if (!o.ipv6) throw new UsageError(`${subnetWord} ${text} is an IPv6 subnet, which needs ${ipv6Word}: add ${ipv6Word} to make a dual-stack network`);
      if (subnet.prefix > V6_MAX_PREFIX || subnet.prefix < V6_MIN_PREFIX) {
        const why = subnet.prefix > V6_MAX_PREFIX ? `a /${subnet.prefix} leaves no room for containers` : `a /${subnet.prefix} is far more than a network needs`;
        throw new UsageError(`${subnetWord} ${text}: an IPv6 subnet needs a prefix length from ${V6_MIN_PREFIX} to ${V6_MAX_PREFIX} (${why}), e.g. /64`);
      }
    }
    slot.subnet = subnet;
  }
  for (const text of o.gateways ?? []) {
    const gateway = parseIp(text);
    if (!gateway) throw new UsageError(`invalid ${gatewayWord} "${text}": give an address, e.g. ${gatewayWord} 10.80.0.1`);
    const slot = gateway.family === 4 ? out.v4 : out.v6;
    if (slot.gateway) throw new UsageError(`${gatewayWord} ${text}: the network already has the IPv${gateway.family} gateway ${formatIp(slot.gateway)}; give at most one per family`);
    if (!slot.subnet) throw new UsageError(`${gatewayWord} ${text} needs an IPv${gateway.family} ${subnetWord}: give the subnet it belongs to`);
    slot.gateway = gateway;
  }
  return out;
}

/** The chosen subnet and gateway of one family, the gateway checked against the subnet. */
function subnetConfig(subnet: IpPrefix, gateway: IpAddress | undefined, gatewayWord: string): SubnetConfig {
  const gw = gateway ?? nth(subnet, 1n);
  const range = usableRange({ subnet });
  if (!contains(subnet, gw) || gw.value < range.first.value || gw.value > range.last.value) {
    throw new UsageError(`${gatewayWord} ${formatIp(gw)} is not a usable address of ${formatPrefix(subnet)}: give one inside the subnet`);
  }
  return { subnet: formatPrefix(subnet), gateway: formatIp(gw) };
}

/** Bridge of a user network: "tsnet-" and the id's first 9 hex digits (IFNAMSIZ allows 15). */
export function bridgeNameFor(id: string): string {
  return `tsnet-${id.slice(0, 9)}`;
}


/** What createNetwork refuses before it takes the lock: names, subnets, gateways, MTU, bridge name, ranges. */
function checkCreate(o: CreateNetworkOptions): { wanted: { v4: Wanted; v6: Wanted }; ranges: Map<string, IpPrefix> } {
  checkNetworkName(o.name);
  if (["bridge", "host", "none"].includes(o.name) || o.name.startsWith("container:")) {
    throw new UsageError(`network name "${o.name}" is reserved: choose another name`);
  }
  const wanted = wantedSubnets(o);
  if (o.ipv6 && o.mtu !== undefined && o.mtu < IPV6_MIN_MTU) {
    const mtuWord = o.mtuWord ?? "-o com.docker.network.driver.mtu";
    throw new UsageError(`invalid ${mtuWord}="${o.mtu}": a network with IPv6 needs an MTU of at least ${IPV6_MIN_MTU} (IPv6's minimum); give ${IPV6_MIN_MTU} or more`);
  }
  // Any interface name, as Docker takes it; network rm deletes a bridge outside tsnet's names only
  // if tsnet made it (bridgeMadeByTsnet), so an existing bridge of the host's is used and left.
  if (o.bridge !== undefined && !IFNAME_RE.test(o.bridge)) {
    throw new UsageError(`invalid bridge name "${o.bridge}": give an interface name of 1 to 15 letters, digits, '_', '.' or '-'`);
  }
  const ranges = checkIpRanges(o.ipRanges ?? [], [wanted.v4.subnet, wanted.v6.subnet].filter((x): x is IpPrefix => x !== undefined));
  return { wanted, ranges };
}

/**
 * The new network's record, among the networks there are (`others`, read under the lock): its
 * name and bridge still free, its subnets checked or chosen, a new id. Writes nothing.
 */
function recordFor(o: CreateNetworkOptions, wanted: { v4: Wanted; v6: Wanted }, ranges: ReadonlyMap<string, IpPrefix>, others: readonly NetworkRecord[]): NetworkRecord {
  const subnetWord = o.subnetWord ?? "--subnet";
  const gatewayWord = o.gatewayWord ?? "--gateway";
  if (others.some((n) => n.name === o.name)) throw new UsageError(`network with name ${o.name} already exists: choose another name or remove it (tsnet network rm ${o.name})`);
  const sharing = o.bridge === undefined ? undefined : others.find((n) => n.bridge === o.bridge);
  if (sharing) throw new UsageError(`bridge ${o.bridge} belongs to network ${sharing.name}: give network ${o.name} another bridge name`);
  const subnets: SubnetConfig[] = [];
  for (const [family, w] of [[4, wanted.v4], [6, wanted.v6]] as const) {
    if (family === 6 && !o.ipv6) continue;
    if (w.subnet) refuseOverlap({ name: o.name, builtin: false }, w.subnet, others, subnetWord);
    subnets.push(withIpRange(subnetConfig(w.subnet ?? freeSubnet(others, subnetWord, family), w.gateway, gatewayWord), ranges));
  }
  const id = newId();
  return {
    id,
    name: o.name,
    driver: "bridge",
    bridge: o.bridge ?? bridgeNameFor(id),
    subnets,
    ...(o.ipv6 && { enableIPv6: true }),
    internal: o.internal,
    builtin: false,
    created: new Date().toISOString(),
    labels: o.labels ?? {},
    ...(o.ipMasq !== undefined && { ipMasq: o.ipMasq }),
    ...(o.mtu !== undefined && { mtu: o.mtu }),
    ...(o.hairpin !== undefined && { hairpin: o.hairpin }),
    ...(o.isGateway !== undefined && { isGateway: o.isGateway }),
    ...(o.icc !== undefined && { icc: o.icc }),
    ...(o.hostBindingIpv4 !== undefined && { hostBindingIpv4: o.hostBindingIpv4 }),
    ...(o.options && Object.keys(o.options).length > 0 && { options: o.options }),
  };
}

/**
 * `tsnet network create` as operations, changing nothing (`tsnet explain`): the record it would
 * write (a new id, the subnet chosen as now) and its bring-up as planned from what was read.
 */
export function planCreateNetwork(o: CreateNetworkOptions): { rec: NetworkRecord; ops: Op[] } {
  const { wanted, ranges } = checkCreate(o);
  const all = knownNetworks();
  const rec = recordFor(o, wanted, ranges, all);
  return { rec, ops: planBringUp(rec, [...all, rec]) };
}

/**
 * `tsnet network create`: validates everything first, then, under the networks lock, picks or
 * checks the subnet, writes the record and makes the bridge and rules; a failure removes what
 * this call made and nothing else. With `reuse` (the CNI plugin's first ADD on a network), a
 * network of that name is returned as it is, made or not by a concurrent caller; the caller
 * compares its options.
 */
export function createNetwork(o: CreateNetworkOptions, reuse = false): NetworkRecord {
  checkNetworkName(o.name);
  let all: NetworkRecord[] | undefined;
  if (reuse) {
    all = allNetworks();
    const found = all.find((n) => n.name === o.name);
    if (found) return found;
  }
  const { wanted, ranges } = checkCreate(o);
  all ??= allNetworks();
  if (findNetwork(o.name, all)?.name === o.name) throw new UsageError(`network with name ${o.name} already exists: choose another name or remove it (tsnet network rm ${o.name})`);
  return withLock(NETWORKS_LOCK, () => {
    const others = listNetworks();
    const existing = others.find((n) => n.name === o.name);
    if (existing && reuse) return existing;
    const rec = recordFor(o, wanted, ranges, others);
    // The record first: whatever a crash interrupts, the record says which bridge to remove.
    saveNetwork(rec);
    const made = { created: false };
    try {
      // The table before the bridge, as in networkUp: once the bridge is ready, a `run --network`
      // that found the record attaches to it without waiting for this lock.
      bringUp(rec, [...others, rec], made);
      saveNetwork({ ...rec, madeAt: new Date().toISOString() });
    } catch (e) {
      // The command failed, so the network was never there: everything it made goes, the table
      // back to the networks there were. A run that attached to the bridge in the moment it was
      // ready fails with it (its veth goes with the bridge); the run's own undo cleans up after it.
      const undo = new Cleanup();
      if (made.created) undo.step(() => linkDelIfExists(hostRtnl(), rec.bridge!));
      undo.step(() => forgetBridgeMark(rec.id));
      undo.step(() => ensureNatTable(natNetworks(others)));
      undo.step(() => deleteNetworkRecord(rec));
      try {
        undo.done();
      } catch (u) {
        if (e instanceof Error && u instanceof Error) e.message += ` (and undoing it: ${u.message})`;
      }
      throw e;
    }
    return rec;
  });
}

/**
 * `--ip-range` values by the subnet (formatPrefix) each lies in, checked as Docker checks them:
 * a prefix inside one of the subnets given, at most one per subnet.
 */
export function checkIpRanges(specs: readonly string[], subnets: readonly IpPrefix[]): Map<string, IpPrefix> {
  const out = new Map<string, IpPrefix>();
  for (const spec of specs) {
    const r = parsePrefix(spec, true);
    if (!r) {
      const loose = parsePrefix(spec);
      throw new UsageError(loose
        ? `invalid --ip-range "${spec}": host bits are set; did you mean ${formatPrefix(loose)}?`
        : `invalid --ip-range "${spec}": give an address and prefix length inside --subnet, e.g. --subnet 10.80.0.0/24 --ip-range 10.80.0.128/25`);
    }
    if (subnets.length === 0) throw new UsageError(`--ip-range ${spec} needs --subnet: give the subnet the range lies in`);
    const s = subnets.find((x) => x.family === r.family && r.prefix >= x.prefix && contains(x, { family: r.family, value: r.net }));
    if (!s) throw new UsageError(`--ip-range ${spec} is not inside ${subnets.map(formatPrefix).join(" or ")}: give a range inside the subnet`);
    const key = formatPrefix(s);
    if (out.has(key)) throw new UsageError(`--ip-range ${spec}: subnet ${key} already has --ip-range ${formatPrefix(out.get(key)!)}; give one range per subnet`);
    out.set(key, r);
  }
  return out;
}

/**
 * The subnet with its `--ip-range` (from checkIpRanges), if it has one; a range holding no address
 * a container could lease (only the network, broadcast or gateway address) is refused.
 */
function withIpRange(cfg: SubnetConfig, ranges: ReadonlyMap<string, IpPrefix>): SubnetConfig {
  const ipRange = ranges.get(cfg.subnet);
  if (!ipRange) return cfg;
  const s = { subnet: parsePrefix(cfg.subnet)!, gateway: parseIp(cfg.gateway)!, ipRange };
  const r = leaseRange(s);
  const n = r.last.value - r.first.value + 1n - (s.gateway.value >= r.first.value && s.gateway.value <= r.last.value ? 1n : 0n);
  if (r.last.value < r.first.value || n <= 0n) {
    throw new UsageError(`--ip-range ${formatPrefix(ipRange)} leaves no address for containers in ${cfg.subnet}: give a larger range`);
  }
  return { ...cfg, ipRange: formatPrefix(ipRange) };
}

/**
 * The first /24 of POOL (IPv4) or /64 of ULA_POOL (IPv6) that overlaps no network and no host
 * route.
 */
function freeSubnet(others: readonly NetworkRecord[], subnetWord = "--subnet", family: 4 | 6 = 4): IpPrefix {
  const [poolText, size] = family === 4 ? [POOL, POOL_PREFIX] : [ULA_POOL, ULA_PREFIX];
  const pool = parsePrefix(poolText)!;
  const step = 1n << BigInt((family === 4 ? 32 : 128) - size);
  const taken = others.flatMap((n) => subnetsOf(n).map((s) => s.subnet)).filter((t) => t.family === family);
  const routes = hostRoutes(family, others);
  for (let v = pool.net; v < pool.net + sizeOf(pool); v += step) {
    const candidate: IpPrefix = { family, net: v, prefix: size };
    if (taken.some((t) => overlaps(t, candidate))) continue;
    if (routes.some((r) => overlaps(r.prefix, candidate))) continue;
    return candidate;
  }
  throw new TsnetError(`no free /${size} left in ${poolText} for a new network: give one with ${subnetWord}`);
}

/** What removeNetwork refuses: a built-in network, and one with containers (or leases) on it. */
function refuseRemoval(net: NetworkRecord, attached: readonly string[]): void {
  if (net.builtin) throw new TsnetError(`${net.name} is a pre-defined network and cannot be removed`, 1);
  if (attached.length || hasLeases(net.id)) {
    throw new TsnetError(`network ${net.name} has active endpoints (${attached.join(", ") || "a container being set up"}): stop them or disconnect them first`, 1);
  }
}

/**
 * `tsnet network rm` as operations, changing nothing (`tsnet explain`): refused as removeNetwork
 * refuses, then read and planned as it does.
 */
export function planRemoveNetwork(net: NetworkRecord, attached: readonly string[]): Op[] {
  refuseRemoval(net, attached);
  return removal(net, listNetworks().filter((n) => n.id !== net.id)).plan.ops;
}

/**
 * The network's removal, read and planned (planNetworkRm): tsnet's table from the networks that
 * remain (`rest`), the bridge as it is now, and the ifindex the commit may reuse.
 */
function removal(net: NetworkRecord, rest: readonly NetworkRecord[]): { plan: Plan; known?: Record<string, number> } {
  const table = natTable({ table: NAT_TABLE, networks: natNetworks(rest) });
  const spec = net.bridge ? bridgeSpec(net) : { bridge: "", gateways: [] };
  const r = net.bridge ? readBridge(spec, table) : undefined;
  const nft = natSocket();
  const generation = r?.generation ?? getGeneration(nft);
  const plan = planNetworkRm(
    { generation, table: r?.table ?? readTable(nft, table), ...(r?.link && { bridge: { addresses: r.addresses } }) },
    { name: net.name, bridge: spec.bridge, madeByTsnet: bridgeMadeByTsnet(net), gateways: spec.gateways, table },
  );
  return { plan, ...(r?.link && { known: { [linkKey(undefined, spec.bridge)]: r.link.index } }) };
}

/** `tsnet network rm`: refused for built-in networks and while any container is attached. */
export function removeNetwork(net: NetworkRecord, attached: readonly string[]): void {
  refuseRemoval(net, attached);
  withLock(NETWORKS_LOCK, () => {
    const rest = listNetworks().filter((n) => n.id !== net.id);
    for (let attempt = 1; ; attempt++) {
      // Rules first, so no rule names a bridge that no longer exists (planNetworkRm).
      const { plan, known } = removal(net, rest);
      try {
        commit(hostCommitEnv(undefined, known), plan);
        break;
      } catch (e) {
        if (attempt < MAX_TABLE_ATTEMPTS && isErrno(e, ERESTART)) continue;
        throw e;
      }
    }
    forgetBridgeMark(net.id);
    deleteNetworkRecord(net);
    forgetAttachmentDir(net.name);
    forgetLeases(net.id);
  });
}

