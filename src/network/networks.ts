// The set of networks: Docker's three built-in ones (bridge, host, none) and user networks, each
// a record in /var/lib/tsnet (src/state/networks.ts) whose kernel objects are made on first use.
// tsnet's nf_tables table is derived from all of them at once (src/nat/ruleset.ts), under one
// lock, so two networks never rewrite each other's rules.
import { Cleanup, TsnetError, UsageError } from "../errors/errors.ts";
import { warn } from "../errors/notice.ts";
import {
  contains, formatIp, formatPrefix, nth, overlaps, parseIp, parsePrefix, sizeOf, type IpAddress, type IpPrefix,
} from "../ip/addr.ts";
import { ensureNatTable, natTableExists } from "../nat/portmap.ts";
import type { NatNetwork } from "../nat/ruleset.ts";
import { RT_TABLE_MAIN, RTN_UNICAST } from "../rtnetlink/constants.ts";
import { linkList } from "../rtnetlink/link.ts";
import { routeList } from "../rtnetlink/route.ts";
import { withLock } from "../state/files.ts";
import { forgetLeases, hasLeases } from "../state/leases.ts";
import { forgetAttachmentDir } from "../state/cni.ts";
import {
  BRIDGE_RE, checkNetworkName, deleteNetworkRecord, findNetwork, listNetworks, saveNetwork, type NetworkRecord,
} from "../state/networks.ts";
import { newId } from "../state/containers.ts";
import { bridgeReady, deleteBridge, makeBridge, setRouteLocalnet, type BridgeSpec } from "./bridge.ts";
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
}

export function subnetsOf(n: NetworkRecord): Subnet[] {
  return n.subnets.map((s) => ({ subnet: parsePrefix(s.subnet)!, gateway: parseIp(s.gateway)! }));
}

/** The addresses containers may lease in a subnet: not the network, gateway or broadcast address. */
export function leaseRange(s: Subnet): { first: IpAddress; last: IpAddress } {
  const size = sizeOf(s.subnet);
  const lastUsable = s.subnet.family === 4 ? size - 2n : size - 1n;
  return { first: nth(s.subnet, 1n), last: nth(s.subnet, lastUsable) };
}

function bridgeSpec(n: NetworkRecord): BridgeSpec {
  // isGateway false: a bridge without an address, as the CNI bridge plugin makes one.
  if (n.isGateway === false) return { bridge: n.bridge!, gateways: [] };
  return { bridge: n.bridge!, gateways: subnetsOf(n).map((s) => ({ address: s.gateway, prefix: s.subnet.prefix })) };
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
      masquerade: n.ipMasq !== false,
      hairpin: n.hairpin !== false,
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
    let current = recorded ?? net;
    if (current.builtin && current.name === "bridge" && !current.madeAt && process.env[SUBNET_ENV]) {
      // TSNET_BRIDGE_SUBNET seeds the default network until its bridge is first made.
      current = { ...builtinRecord("bridge"), id: current.id, created: current.created };
    }
    const spec = bridgeSpec(current);
    const again = bridgeReady(nl, spec);
    if (again !== undefined) {
      if (!natTableExists()) ensureNatTable(natNetworks());
      return again;
    }
    const all = listNetworks().filter((n) => n.id !== current.id);
    for (const s of subnetsOf(current)) refuseOverlap(current, s.subnet, all);
    // The table first, then the bridge: the moment the bridge is ready (up, with its gateway),
    // other processes take it as made, without this lock, and attach veths to it. So nothing
    // may fail after that and have the bridge deleted under them (a veth added to a bridge
    // index that is gone is EINVAL). The table names the bridge only by name: rules for a bridge
    // that failed to appear are harmless, and the next first use rewrites the table anyway.
    ensureNatTable(natNetworks([...all, current]));
    const made = makeBridge(nl, spec);
    // Only now that the guard is in place (see setRouteLocalnet).
    setRouteLocalnet(spec.bridge, true);
    if (!current.madeAt) saveNetwork({ ...current, madeAt: new Date().toISOString() });
    return made.index;
  });
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
const RESERVED_V4 = [
  ["0.0.0.0/8", "\"this network\""], ["127.0.0.0/8", "loopback"], ["169.254.0.0/16", "link-local"],
  ["224.0.0.0/4", "multicast"], ["240.0.0.0/4", "reserved"],
].map(([range, what]) => ({ range: parsePrefix(range!)!, what: what! }));

/** Refuses a subnet that is reserved or overlaps another network or a route of the host, naming it. */
function refuseOverlap(net: Pick<NetworkRecord, "name" | "builtin">, subnet: IpPrefix, others: readonly NetworkRecord[], subnetWord = "--subnet"): void {
  const hint = net.builtin ? `set ${SUBNET_ENV} to a free range (for example 10.78.0.0/16)` : `choose another ${subnetWord}`;
  const reserved = RESERVED_V4.find((r) => overlaps(r.range, subnet));
  if (reserved) {
    throw new UsageError(`the ${net.name} network's subnet ${formatPrefix(subnet)} overlaps ${formatPrefix(reserved.range)}, the ${reserved.what} range: ${hint} in a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)`);
  }
  for (const o of others) {
    for (const s of subnetsOf(o)) {
      if (overlaps(s.subnet, subnet)) {
        throw new UsageError(`the ${net.name} network's subnet ${formatPrefix(subnet)} overlaps network ${o.name} (${formatPrefix(s.subnet)}): ${hint}`);
      }
    }
  }
  const clash = hostRouteOverlapping(subnet, others);
  if (clash) throw new UsageError(`the ${net.name} network's subnet ${formatPrefix(subnet)} overlaps the host route ${clash}: ${hint}`);
}

/** A host route (main table, not through a tsnet bridge) that overlaps subnet, as `ip route` shows it. */
function hostRouteOverlapping(subnet: IpPrefix, networks: readonly NetworkRecord[]): string | undefined {
  if (subnet.family !== 4) return undefined;
  const nl = hostRtnl();
  const links = linkList(nl);
  const ours = new Set(networks.map((n) => n.bridge).filter(Boolean));
  for (const r of routeList(nl)) {
    if (r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST || r.dstLen === 0 || !r.dst) continue;
    const dev = links.find((l) => l.index === r.oif)?.name;
    if (dev && ours.has(dev)) continue;
    if (overlaps({ family: 4, net: r.dst.value, prefix: r.dstLen }, subnet)) return `${formatIp(r.dst)}/${r.dstLen} dev ${dev ?? `ifindex ${r.oif}`}`;
  }
  return undefined;
}

export interface CreateNetworkOptions {
  name: string;
  subnet?: string;
  gateway?: string;
  internal: boolean;
  labels?: Record<string, string>;
  /** The bridge's name (a CNI configuration's `bridge`); `tsnet-` and 9 hex of the id when absent. */
  bridge?: string;
  /** The record's options of the same names (see NetworkRecord). */
  ipMasq?: boolean;
  mtu?: number;
  hairpin?: boolean;
  isGateway?: boolean;
  /** How the caller spells the subnet and gateway settings in messages (`--subnet`, `--gateway`). */
  subnetWord?: string;
  gatewayWord?: string;
}

/** Bridge of a user network: "tsnet-" and the id's first 9 hex digits (IFNAMSIZ allows 15). */
export function bridgeNameFor(id: string): string {
  return `tsnet-${id.slice(0, 9)}`;
}


/**
 * `tsnet network create`: validates everything first, then, under the networks lock, picks or
 * checks the subnet, writes the record and makes the bridge and rules; a failure removes what
 * this call made and nothing else. With `reuse` (the CNI plugin's first ADD on a network), a
 * network of that name is returned as it is, made or not by a concurrent caller; the caller
 * compares its options.
 */
export function createNetwork(o: CreateNetworkOptions, reuse = false): NetworkRecord {
  const subnetWord = o.subnetWord ?? "--subnet";
  const gatewayWord = o.gatewayWord ?? "--gateway";
  checkNetworkName(o.name);
  let all: NetworkRecord[] | undefined;
  if (reuse) {
    all = allNetworks();
    const found = all.find((n) => n.name === o.name);
    if (found) return found;
  }
  if (["bridge", "host", "none"].includes(o.name) || o.name.startsWith("container:")) {
    throw new UsageError(`network name "${o.name}" is reserved: choose another name`);
  }
  let subnet: IpPrefix | undefined;
  if (o.subnet !== undefined) {
    subnet = parsePrefix(o.subnet, true);
    if (!subnet) {
      const loose = parsePrefix(o.subnet);
      throw new UsageError(
        loose
          ? `invalid ${subnetWord} "${o.subnet}": host bits are set; did you mean ${formatPrefix(loose)}?`
          : `invalid ${subnetWord} "${o.subnet}": give an address and prefix length, e.g. ${subnetWord} 10.80.0.0/24`,
      );
    }
    if (subnet.family !== 4) throw new UsageError(`${subnetWord} ${o.subnet}: IPv6 networks are not supported yet; give an IPv4 subnet`);
    if (subnet.prefix > 30 || subnet.prefix < 8) throw new UsageError(`${subnetWord} ${o.subnet}: use a prefix length from 8 to 30`);
  }
  let gateway: IpAddress | undefined;
  if (o.gateway !== undefined) {
    gateway = parseIp(o.gateway);
    if (!gateway) throw new UsageError(`invalid ${gatewayWord} "${o.gateway}": give an address, e.g. ${gatewayWord} 10.80.0.1`);
    if (!subnet) throw new UsageError(`${gatewayWord} ${o.gateway} needs ${subnetWord}: give the subnet it belongs to`);
  }
  // A record's bridge is one network rm may delete, so it is always a name of tsnet's.
  if (o.bridge !== undefined && !BRIDGE_RE.test(o.bridge)) {
    throw new UsageError(`invalid bridge name "${o.bridge}": tsnet's bridges are named "tsnet" and 1 to 10 more letters, digits, '_', '.' or '-' (for example tsnet-cni0)`);
  }
  all ??= allNetworks();
  if (findNetwork(o.name, all)?.name === o.name) throw new UsageError(`network with name ${o.name} already exists: choose another name or remove it (tsnet network rm ${o.name})`);
  return withLock(NETWORKS_LOCK, () => {
    const others = listNetworks();
    const existing = others.find((n) => n.name === o.name);
    if (existing && reuse) return existing;
    if (existing) throw new UsageError(`network with name ${o.name} already exists: choose another name or remove it (tsnet network rm ${o.name})`);
    const sharing = o.bridge === undefined ? undefined : others.find((n) => n.bridge === o.bridge);
    if (sharing) throw new UsageError(`bridge ${o.bridge} belongs to network ${sharing.name}: give network ${o.name} another bridge name`);
    const chosen = subnet ?? freeSubnet(others, subnetWord);
    if (subnet) refuseOverlap({ name: o.name, builtin: false }, subnet, others, subnetWord);
    const gw = gateway ?? nth(chosen, 1n);
    const range = leaseRange({ subnet: chosen, gateway: gw });
    if (!contains(chosen, gw) || gw.value < range.first.value || gw.value > range.last.value) {
      throw new UsageError(`${gatewayWord} ${formatIp(gw)} is not a usable address of ${formatPrefix(chosen)}: give one inside the subnet`);
    }
    const id = newId();
    const rec: NetworkRecord = {
      id,
      name: o.name,
      driver: "bridge",
      bridge: o.bridge ?? bridgeNameFor(id),
      subnets: [{ subnet: formatPrefix(chosen), gateway: formatIp(gw) }],
      internal: o.internal,
      builtin: false,
      created: new Date().toISOString(),
      labels: o.labels ?? {},
      ...(o.ipMasq !== undefined && { ipMasq: o.ipMasq }),
      ...(o.mtu !== undefined && { mtu: o.mtu }),
      ...(o.hairpin !== undefined && { hairpin: o.hairpin }),
      ...(o.isGateway !== undefined && { isGateway: o.isGateway }),
    };
    // The record first: whatever a crash interrupts, the record says which bridge to remove.
    saveNetwork(rec);
    const nl = hostRtnl();
    let made: { created: boolean } = { created: false };
    try {
      // The table before the bridge, as in networkUp: once the bridge is ready, a `run --network`
      // that found the record attaches to it without waiting for this lock.
      ensureNatTable(natNetworks([...others, rec]));
      made = makeBridge(nl, bridgeSpec(rec));
      setRouteLocalnet(rec.bridge!, true);
      saveNetwork({ ...rec, madeAt: new Date().toISOString() });
    } catch (e) {
      // The command failed, so the network was never there: everything it made goes, the table
      // back to the networks there were. A run that attached to the bridge in the moment it was
      // ready fails with it (its veth goes with the bridge); the run's own undo cleans up after it.
      const undo = new Cleanup();
      if (made.created) undo.step(() => deleteBridge(nl, rec.bridge!));
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

/** The first /24 of the pool that overlaps no network and no host route. */
function freeSubnet(others: readonly NetworkRecord[], subnetWord = "--subnet"): IpPrefix {
  const pool = parsePrefix(POOL)!;
  const step = 1n << BigInt(32 - POOL_PREFIX);
  const taken = others.flatMap((n) => subnetsOf(n).map((s) => s.subnet));
  for (let v = pool.net; v < pool.net + sizeOf(pool); v += step) {
    const candidate: IpPrefix = { family: 4, net: v, prefix: POOL_PREFIX };
    if (taken.some((t) => overlaps(t, candidate))) continue;
    if (hostRouteOverlapping(candidate, others)) continue;
    return candidate;
  }
  throw new TsnetError(`no free /${POOL_PREFIX} left in ${POOL} for a new network: give one with ${subnetWord}`);
}

/** `tsnet network rm`: refused for built-in networks and while any container is attached. */
export function removeNetwork(net: NetworkRecord, attached: readonly string[]): void {
  if (net.builtin) throw new TsnetError(`${net.name} is a pre-defined network and cannot be removed`, 1);
  if (attached.length || hasLeases(net.id)) {
    throw new TsnetError(`network ${net.name} has active endpoints (${attached.join(", ") || "a container being set up"}): stop them or disconnect them first`, 1);
  }
  withLock(NETWORKS_LOCK, () => {
    const rest = listNetworks().filter((n) => n.id !== net.id);
    // Rules first, so no rule names a bridge that no longer exists.
    ensureNatTable(natNetworks(rest));
    if (net.bridge) deleteBridge(hostRtnl(), net.bridge);
    deleteNetworkRecord(net);
    forgetAttachmentDir(net.name);
    forgetLeases(net.id);
  });
}

