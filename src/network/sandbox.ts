// A container's network: its namespace and, for each bridge network it is attached to, an
// endpoint: a veth pair whose host end sits on the network's bridge and whose other end (eth0,
// eth1, ...) holds a leased address inside the namespace. Setup makes each object only after the
// record names it; teardown removes whatever the record names, tolerating pieces that are
// already gone, so the same code undoes a failed setup, a normal exit and a crashed run. The
// same attach/detach serves `run`, `network connect/disconnect` and anything else that wires a
// namespace given by path.
import { Cleanup, KernelError, TsnetError, UsageError } from "../errors/errors.ts";
import { ENODEV } from "../errors/errno.ts";
import { contains, formatIp, parseIp, type IpAddress } from "../ip/addr.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { closeNetns, createNetns, deleteNetns, inNetns, reclaimNetnsFile, type Netns } from "../netns/netns.ts";
import { addrAdd } from "../rtnetlink/addr.ts";
import { bridgePortHairpin, linkAdd, linkDelIfExists, linkGet, linkSet } from "../rtnetlink/link.ts";
import { routeAdd } from "../rtnetlink/route.ts";
import { saveRecord, type ContainerRecord, type Endpoint } from "../state/containers.ts";
import { leaseHolder, releaseLease, takeLease, takeLeaseAt, type LeaseOwner } from "../state/leases.ts";
import type { NetworkRecord } from "../state/networks.ts";
import { crashPoint } from "../errors/crashpoint.ts";
import { formatMac, macFor } from "./bridge.ts";
import { hostRtnl } from "./host.ts";
import { leaseRange, networkUp, subnetsOf } from "./networks.ts";

const LOOPBACK_IFINDEX = 1; // lo is always the first link of a new namespace

export interface Sandbox {
  ns: Netns;
}

/** How to attach a container to one network (Docker's --ip, --mac-address, --network-alias). */
export interface AttachOptions {
  ip?: IpAddress;
  mac?: Uint8Array;
  aliases?: string[];
  /** Put the bridge port in hairpin mode (the container publishes ports). */
  hairpin?: boolean;
}

/** The container's own namespace, persisted at /run/netns/tsnet-NAME with lo up. */
export function createSandbox(rec: ContainerRecord): Sandbox {
  const recordIt = (path: string) => {
    rec.netns = path;
    saveRecord(rec);
  };
  const { ns, result: nl } = createNetns(`tsnet-${rec.name}`, rec.id, recordIt, () => {
    const nl = new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${rec.name})`);
    linkSet(nl, LOOPBACK_IFINDEX, { up: true }, "lo");
    return nl;
  });
  nl.close();
  crashPoint("after-netns");
  return { ns };
}

/** The next free interface name inside the container: eth0, eth1, ... */
function nextIfname(rec: ContainerRecord): string {
  const used = new Set((rec.endpoints ?? []).map((e) => e.ifname));
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

/** The host end: veth + the first 7 hex of the id (+ the interface number past eth0). */
function hostVethName(rec: ContainerRecord, ifname: string): string {
  const n = ifname.slice(3);
  return `veth${rec.id.slice(0, 7)}${n === "0" ? "" : `-${n}`}`;
}

/** Refuses a static address that is outside the network or not free, before anything is made. */
export function checkStaticIp(net: NetworkRecord, ip: IpAddress): void {
  const sub = subnetsOf(net).find((s) => contains(s.subnet, ip));
  if (!sub) {
    throw new UsageError(`--ip ${formatIp(ip)} is outside network ${net.name} (${net.subnets.map((s) => s.subnet).join(", ")}): give an address inside it`);
  }
  const r = leaseRange(sub);
  if (ip.value === sub.gateway.value || ip.value < r.first.value || ip.value > r.last.value) {
    throw new UsageError(`--ip ${formatIp(ip)} is not usable on network ${net.name} (it is the network, gateway or broadcast address): give another`);
  }
}

/**
 * Attaches the container (whose namespace is behind nsFd) to a bridge network: brings the
 * network up, leases an address, records the endpoint, then makes the veth pair with its peer
 * born inside the namespace, and configures it there. Throws with what it made undone.
 */
export function attachEndpoint(rec: ContainerRecord, net: NetworkRecord, nsFd: number, o: AttachOptions = {}): Endpoint {
  if (net.driver !== "bridge" || !net.bridge) throw new UsageError(`network ${net.name} has no bridge to attach to`);
  const host = hostRtnl();
  const bridgeIndex = networkUp(net);
  const ifname = nextIfname(rec);
  const owner: LeaseOwner = { container: rec.id, ifname, names: [rec.name, rec.id.slice(0, 12), ...(o.aliases ?? [])] };
  // v4 only for now; a dual-stack network leases one address per subnet the same way.
  const sub = subnetsOf(net)[0]!;
  let address: IpAddress;
  if (o.ip) {
    checkStaticIp(net, o.ip);
    if (!takeLeaseAt(net.id, o.ip, owner)) {
      const holder = leaseHolder(net.id, o.ip);
      throw new TsnetError(`--ip ${formatIp(o.ip)} is already in use on network ${net.name}${holder ? ` by container ${holder.names[0] ?? holder.container.slice(0, 12)}` : ""}: give another address`);
    }
    address = o.ip;
  } else {
    address = takeLease(net.id, { ...leaseRange(sub), skip: sub.gateway }, owner, net.name);
  }
  crashPoint("after-lease");
  const mac = o.mac ?? macFor(address);
  const ep: Endpoint = {
    networkId: net.id,
    network: net.name,
    bridge: net.bridge,
    hostVeth: hostVethName(rec, ifname),
    ifname,
    mac: formatMac(mac),
    ips: [{ address: formatIp(address), prefix: sub.subnet.prefix, gateway: formatIp(sub.gateway) }],
    aliases: o.aliases ?? [],
  };
  (rec.endpoints ??= []).push(ep);
  saveRecord(rec);
  const inside = inNetns(nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${rec.name})`));
  try {
    // One message makes both ends: the host end attached to the bridge and up, the container end
    // born inside the namespace under its final name (so no rename or move is needed).
    // Until it exists, undo must not delete a link of that name: it would be someone else's.
    ep.vethMade = false;
    linkAdd(host, { name: ep.hostVeth, kind: "veth", master: bridgeIndex, up: true, peer: { name: ep.ifname, nsFd, mac } });
    ep.vethMade = true;
    crashPoint("after-veth");
    // A container reaching its own published port through a host address is DNAT-ed on the
    // bridge back out of the port it came in by, which a bridge allows only in hairpin mode.
    if (o.hairpin) {
      const port = linkGet(host, ep.hostVeth);
      if (port) bridgePortHairpin(host, port.index, true, ep.hostVeth);
    }
    const link = linkGet(inside, ep.ifname);
    if (!link) throw new KernelError("find link", `${ep.ifname} in ${rec.netns ?? "the namespace"}`, ENODEV);
    // The peer cannot be brought up in the creating message (the kernel has not paired the
    // ends yet at that point), so it goes up here.
    linkSet(inside, link.index, { up: true }, ep.ifname);
    addrAdd(inside, link.index, address, sub.subnet.prefix, ep.ifname);
    // The first network with a way out gives the default route; an internal one never does.
    const hasDefault = (rec.endpoints ?? []).some((e) => e !== ep && e.ips.some((i) => i.gateway) && !e.noDefaultRoute);
    if (!net.internal && !hasDefault) {
      routeAdd(inside, { dstLen: 0, gateway: sub.gateway, oif: link.index }, rec.name);
    } else {
      ep.noDefaultRoute = true;
      saveRecord(rec);
    }
    return ep;
  } catch (e) {
    try {
      detachEndpoint(rec, ep);
    } catch (undo) {
      if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
    }
    throw e;
  } finally {
    inside.close();
  }
}

/**
 * Removes one endpoint of a namespace that stays (`network disconnect`, or a failed attach): its
 * veth (deleting one end deletes the pair; only a veth this endpoint made), then its leases.
 */
export function detachEndpoint(rec: ContainerRecord, ep: Endpoint): void {
  const c = new Cleanup();
  if (ep.vethMade !== false) c.step(() => linkDelIfExists(hostRtnl(), ep.hostVeth));
  crashPoint("teardown-after-veth");
  c.step(() => forgetEndpoint(rec, ep));
  c.done();
}

/**
 * Removes everything the record names; goes on past failures and reports them all at the end.
 * The veths are not deleted one by one: unmounting the namespace (and closing its last fd) lets
 * the kernel destroy it, and the veth pairs with it, in its cleanup worker, as `ip netns del`
 * does. A link deletion would block here for the kernel's rcu_barrier() (15-40 ms); the
 * namespace's end costs nothing on this path. The addresses are released now: leases are
 * handed out round-robin, so an old veth still holding one for a few milliseconds is never given
 * the same address again at once (ARCHITECTURE.md).
 */
export function teardownSandbox(rec: ContainerRecord, sandbox?: Sandbox): void {
  const c = new Cleanup();
  if (sandbox) c.step(() => closeNetns(sandbox.ns));
  const netns = rec.netns;
  if (netns) c.step(() => deleteNetns(netns));
  crashPoint("teardown-after-netns");
  for (const ep of [...(rec.endpoints ?? [])]) c.step(() => forgetEndpoint(rec, ep));
  c.done();
}

/** After a crash: the namespace file a run made but had not recorded yet (see createNetns). */
export function reclaimNetns(rec: ContainerRecord): void {
  if (!rec.netns && rec.name) reclaimNetnsFile(`tsnet-${rec.name}`, rec.id);
}

/** Releases the endpoint's leases and forgets it; its veth goes with the namespace. */
function forgetEndpoint(rec: ContainerRecord, ep: Endpoint): void {
  const c = new Cleanup();
  for (const ip of ep.ips) {
    const a = parseIp(ip.address);
    if (a) c.step(() => releaseLease(ep.networkId, a, rec.id));
  }
  rec.endpoints = (rec.endpoints ?? []).filter((e) => e !== ep && e.hostVeth !== ep.hostVeth);
  c.done();
}

/** The primary address (eth0's first) as text, for ps and port maps. */
export function primaryAddress(rec: ContainerRecord): string | undefined {
  return rec.endpoints?.[0]?.ips[0]?.address;
}

