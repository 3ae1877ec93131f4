// A container's network: its namespace and, for each bridge network it is attached to, an
// endpoint: a veth pair whose host end sits on the network's bridge and whose other end (eth0,
// eth1, ...) holds a leased address inside the namespace. Setup makes each object only after the
// record names it; teardown removes whatever the record names, tolerating pieces that are
// already gone, so the same code undoes a failed setup, a normal exit and a crashed run. The
// same attach/detach serves `run`, `network connect/disconnect` and the CNI plugin: anything that
// wires a namespace given by path, for an owner that records its endpoints (EndpointOwner).
import { Cleanup, KernelError, TsnetError, UsageError } from "../errors/errors.ts";
import { ENODEV } from "../errors/errno.ts";
import { contains, formatIp, formatPrefix, nth, parseIp, parsePrefix, type IpAddress, type IpPrefix } from "../ip/addr.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { closeNetns, createNetns, deleteNetns, inNetns, netnsPath, type Netns } from "../netns/netns.ts";
import { addrAdd, addrList } from "../rtnetlink/addr.ts";
import { bridgePortHairpin, linkAdd, linkGet, linkSet } from "../rtnetlink/link.ts";
import { IFF_UP, RT_TABLE_MAIN } from "../rtnetlink/constants.ts";
import { routeAdd, routeList } from "../rtnetlink/route.ts";
import { saveRecord, type ContainerRecord, type Endpoint } from "../state/containers.ts";
import { leaseHolder, releaseLease, takeLease, takeLeaseAt, type LeaseOwner } from "../state/leases.ts";
import type { NetworkRecord } from "../state/networks.ts";
import { crashPoint } from "../errors/crashpoint.ts";
import { formatMac, macFor } from "./bridge.ts";
import { deleteLinkInBackground, deleteLinkQuickly, linkGoneWithin } from "./dellink.ts";
import { hostRtnl } from "./host.ts";
import { leaseRange, networkUp, subnetsOf } from "./networks.ts";

const LOOPBACK_IFINDEX = 1; // lo is always the first link of a new namespace
/** How long a link name still taken by a deletion under way is waited for. */
const NAME_WAIT_MS = 2000;

export interface Sandbox {
  ns: Netns;
}

/** How to attach a container to one network (Docker's --ip, --mac-address, --network-alias). */
export interface AttachOptions {
  ip?: IpAddress;
  mac?: Uint8Array;
  aliases?: string[];
  /** Where `ip` came from, for messages (`--ip` unless said otherwise). */
  ipWhat?: string;
  /**
   * Put the bridge port in hairpin mode (the container publishes ports); the network's own
   * `hairpin` setting, when it has one, wins.
   */
  hairpin?: boolean;
  /** Routes besides the default one; one to 0.0.0.0/0 replaces it. */
  routes?: ExtraRoute[];
}

/** The container's own namespace, persisted at /run/netns/tsnet-NAME with lo up. */
export function createSandbox(rec: ContainerRecord): Sandbox {
  rec.netns = netnsPath(`tsnet-${rec.name}`);
  saveRecord(rec);
  const { ns, result: nl } = createNetns(`tsnet-${rec.name}`, () => {
    const nl = new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${rec.name})`);
    linkSet(nl, LOOPBACK_IFINDEX, { up: true }, "lo");
    return nl;
  });
  nl.close();
  crashPoint("after-netns");
  return { ns };
}

/**
 * Whose endpoints these are, and where they are written down before each is made: a tsnet
 * container (its record, `containerOwner`) or a CNI attachment (its own record, src/cni/). The
 * veth, lease, address, route and hairpin code below is the same for both.
 */
export interface EndpointOwner {
  /** 64 hex digits: leases name it, and the host veth's name derives from it. */
  readonly id: string;
  /** For messages ("web", "CNI attachment 1f2e3d4c5b6a/eth0"). */
  readonly what: string;
  /** The namespace's path, for messages. */
  readonly netns?: string;
  /** Its endpoints, in attachment order; attach appends, detach removes in place. */
  readonly endpoints: Endpoint[];
  /** The name inside the namespace of the next endpoint. */
  nextIfname(): string;
  /** The host end's name of the endpoint whose inside name is ifname. */
  hostVethName(ifname: string): string;
  /** Who holds the endpoint's address (the lease file's content). */
  leaseOwner(ifname: string, aliases: readonly string[]): LeaseOwner;
  /** Writes the endpoints down; called before each kernel object is made. */
  save(): void;
}

/** A tsnet container as an endpoint owner: eth0, eth1, ... and vethXXXXXXX[-N], in its record. */
export function containerOwner(rec: ContainerRecord): EndpointOwner {
  const endpoints = (rec.endpoints ??= []);
  return {
    id: rec.id,
    what: rec.name,
    netns: rec.netns,
    endpoints,
    nextIfname() {
      const used = new Set(endpoints.map((e) => e.ifname));
      for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
    },
    hostVethName(ifname) {
      // veth + the first 7 hex of the id (+ the interface number past eth0).
      const n = ifname.slice(3);
      return `veth${rec.id.slice(0, 7)}${n === "0" ? "" : `-${n}`}`;
    },
    leaseOwner: (ifname, aliases) => ({ container: rec.id, ifname, names: [rec.name, rec.id.slice(0, 12), ...aliases] }),
    save: () => saveRecord(rec),
  };
}

/**
 * Refuses a static address that is outside the network or not usable, before anything is made;
 * `what` names where it came from in the message (`--ip`, a CNI argument, an IPAM plugin).
 */
export function checkStaticIp(net: NetworkRecord, ip: IpAddress, what = "--ip"): void {
  const sub = subnetsOf(net).find((s) => contains(s.subnet, ip));
  if (!sub) {
    throw new UsageError(`${what} ${formatIp(ip)} is outside network ${net.name} (${net.subnets.map((s) => s.subnet).join(", ")}): give an address inside it`);
  }
  const r = leaseRange(sub);
  if (ip.value === sub.gateway.value || ip.value < r.first.value || ip.value > r.last.value) {
    throw new UsageError(`${what} ${formatIp(ip)} is not usable on network ${net.name} (it is the network, gateway or broadcast address): give another`);
  }
}

/** A route inside the namespace besides the default one (from a delegated IPAM plugin). */
export interface ExtraRoute {
  dst: IpPrefix;
  /** The next hop; the network's gateway when absent. */
  gw?: IpAddress;
}

/**
 * Attaches the owner's namespace (behind nsFd) to a bridge network: brings the network up,
 * leases an address, records the endpoint, then makes the veth pair with its peer born inside
 * the namespace, and configures it there. Throws with what it made undone.
 */
export function attachEndpoint(owner: EndpointOwner, net: NetworkRecord, nsFd: number, o: AttachOptions = {}): Endpoint {
  if (net.driver !== "bridge" || !net.bridge) throw new UsageError(`network ${net.name} has no bridge to attach to`);
  const bridgeIndex = networkUp(net);
  const ifname = owner.nextIfname();
  const inside = inNetns(nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${owner.what})`));
  try {
    // A CNI runtime names the interface; one of that name already there is the caller's mistake,
    // unless it is on its way out (a DEL hands deletions to a helper and returns): then wait.
    if (!linkGoneWithin(inside, ifname, NAME_WAIT_MS, nsFd)) {
      throw new TsnetError(`${owner.netns ?? "the namespace"} already has an interface named ${ifname}: give another interface name`);
    }
    const hostVeth = owner.hostVethName(ifname);
    if (!linkGoneWithin(hostRtnl(), hostVeth, NAME_WAIT_MS)) {
      throw new TsnetError(`a link named ${hostVeth} exists on the host and stays: remove it (ip link del ${hostVeth}) if nothing uses it`);
    }
    return attachWith(owner, net, nsFd, inside, bridgeIndex, ifname, o);
  } finally {
    inside.close();
  }
}

function attachWith(owner: EndpointOwner, net: NetworkRecord, nsFd: number, inside: NetlinkSocket, bridgeIndex: number, ifname: string, o: AttachOptions): Endpoint {
  const host = hostRtnl();
  const leaseOwner = owner.leaseOwner(ifname, o.aliases ?? []);
  // v4 only for now; a dual-stack network leases one address per subnet the same way.
  const sub = subnetsOf(net)[0]!;
  let address: IpAddress;
  if (o.ip) {
    const what = o.ipWhat ?? "--ip";
    checkStaticIp(net, o.ip, what);
    if (!takeLeaseAt(net.id, o.ip, leaseOwner)) {
      const holder = leaseHolder(net.id, o.ip);
      const by = holder ? ` by ${holder.cniContainer ? `CNI container ${holder.cniContainer.slice(0, 12)}` : `container ${holder.names[0] ?? holder.container.slice(0, 12)}`}` : "";
      throw new TsnetError(`${what} ${formatIp(o.ip)} is already in use on network ${net.name}${by}: give another address`);
    }
    address = o.ip;
  } else {
    address = takeLease(net.id, { ...leaseRange(sub), skip: sub.gateway }, leaseOwner, net.name);
  }
  crashPoint("after-lease");
  const mac = o.mac ?? macFor(address);
  const gateway = net.isGateway === false ? undefined : sub.gateway;
  const ep: Endpoint = {
    networkId: net.id,
    network: net.name,
    bridge: net.bridge!,
    hostVeth: owner.hostVethName(ifname),
    ifname,
    mac: formatMac(mac),
    ips: [{ address: formatIp(address), prefix: sub.subnet.prefix, ...(gateway && { gateway: formatIp(gateway) }) }],
    aliases: o.aliases ?? [],
  };
  if (o.routes?.length) ep.routes = o.routes.map((r) => ({ dst: formatPrefix(r.dst), ...(r.gw && { gw: formatIp(r.gw) }) }));
  owner.endpoints.push(ep);
  owner.save();
  try {
    // One message makes both ends: the host end attached to the bridge and up, the container end
    // born inside the namespace under its final name (so no rename or move is needed).
    linkAdd(host, { name: ep.hostVeth, kind: "veth", master: bridgeIndex, up: true, mtu: net.mtu, peer: { name: ep.ifname, nsFd, mac, mtu: net.mtu } });
    crashPoint("after-veth");
    // A container reaching its own published port through a host address is DNAT-ed on the
    // bridge back out of the port it came in by, which a bridge allows only in hairpin mode.
    if (net.hairpin ?? o.hairpin) {
      const port = linkGet(host, ep.hostVeth);
      if (port) bridgePortHairpin(host, port.index, true, ep.hostVeth);
    }
    const link = linkGet(inside, ep.ifname);
    if (!link) throw new KernelError("find link", `${ep.ifname} in ${owner.netns ?? "the namespace"}`, ENODEV);
    // The peer cannot be brought up in the creating message (the kernel has not paired the
    // ends yet at that point), so it goes up here.
    linkSet(inside, link.index, { up: true }, ep.ifname);
    addrAdd(inside, link.index, address, sub.subnet.prefix, ep.ifname);
    // The first network with a way out gives the default route (the namespace says whether one
    // is there: an earlier endpoint's, or another CNI plugin's); an internal one never does.
    const extra = o.routes ?? [];
    const wantDefault = gateway !== undefined && !net.internal && !extra.some((r) => r.dst.prefix === 0);
    if (wantDefault && !routeList(inside).some((r) => r.dstLen === 0 && r.table === RT_TABLE_MAIN)) {
      routeAdd(inside, { dstLen: 0, gateway, oif: link.index }, owner.what);
    } else {
      ep.noDefaultRoute = true;
      owner.save();
    }
    for (const r of extra) {
      const gw = r.gw ?? gateway;
      if (!gw) throw new UsageError(`route ${formatPrefix(r.dst)} has no gateway and network ${net.name} has none (isGateway false): give the route a "gw"`);
      routeAdd(inside, { dst: nth(r.dst, 0n), dstLen: r.dst.prefix, gateway: gw, oif: link.index }, owner.what);
    }
    return ep;
  } catch (e) {
    try {
      detachEndpoint(owner, ep);
    } catch (undo) {
      if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
    }
    throw e;
  }
}

/**
 * Removes the endpoint's veth and lease and forgets it in the owner's list (the caller saves).
 * With `background` the veth's deletion is handed to a helper without waiting for it (CNI DEL).
 */
export function detachEndpoint(owner: EndpointOwner, ep: Endpoint, background = false): void {
  const c = new Cleanup();
  // Deleting one end deletes the pair. Without this the namespace's destruction would remove it
  // too, but asynchronously, after tsnet has already exited.
  c.step(() => (background ? deleteLinkInBackground : deleteLinkQuickly)(hostRtnl(), ep.hostVeth));
  crashPoint("teardown-after-veth");
  for (const ip of ep.ips) {
    const a = parseIp(ip.address);
    if (a) c.step(() => releaseLease(ep.networkId, a, owner.id));
  }
  const i = owner.endpoints.findIndex((e) => e === ep || e.hostVeth === ep.hostVeth);
  if (i >= 0) owner.endpoints.splice(i, 1);
  c.done();
}

/**
 * What differs between an endpoint as its owner recorded it and as the kernel has it: the bridge
 * up, the host end on it and up, the inside end up with its MAC, each address and each route the
 * endpoint made (CNI CHECK). An empty list: all there.
 */
export function endpointProblems(ep: Endpoint, net: NetworkRecord, nsFd: number, owner: EndpointOwner): string[] {
  const problems: string[] = [];
  const host = hostRtnl();
  const bridge = linkGet(host, ep.bridge);
  if (!bridge) problems.push(`bridge ${ep.bridge} is missing`);
  else if (!(bridge.flags & IFF_UP)) problems.push(`bridge ${ep.bridge} is down`);
  const veth = linkGet(host, ep.hostVeth);
  if (!veth) problems.push(`host end ${ep.hostVeth} is missing`);
  else {
    if (bridge && veth.master !== bridge.index) problems.push(`host end ${ep.hostVeth} is not on bridge ${ep.bridge}`);
    if (!(veth.flags & IFF_UP)) problems.push(`host end ${ep.hostVeth} is down`);
  }
  const inside = inNetns(nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${owner.what})`));
  try {
    const link = linkGet(inside, ep.ifname);
    if (!link) return [...problems, `${ep.ifname} is missing in ${owner.netns ?? "the namespace"}`];
    if (!(link.flags & IFF_UP)) problems.push(`${ep.ifname} is down`);
    if (link.mac && formatMac(link.mac) !== ep.mac.toLowerCase()) problems.push(`${ep.ifname} has MAC ${formatMac(link.mac)}, not ${ep.mac}`);
    const addrs = addrList(inside).filter((a) => a.index === link.index);
    for (const ip of ep.ips) {
      if (!addrs.some((a) => formatIp(a.address) === ip.address && a.prefix === ip.prefix)) problems.push(`${ep.ifname} lacks address ${ip.address}/${ip.prefix}`);
      const a = parseIp(ip.address);
      if (a && leaseHolder(ep.networkId, a)?.container !== owner.id) problems.push(`the lease of ${ip.address} on network ${net.name} is not held`);
    }
    const routes = routeList(inside).filter((r) => r.table === RT_TABLE_MAIN);
    const has = (dstLen: number, dst: string | undefined, gw: string | undefined) =>
      routes.some((r) => r.dstLen === dstLen && (dstLen === 0 || (r.dst && formatIp(r.dst)) === dst) && (gw === undefined || (r.gateway && formatIp(r.gateway)) === gw) && r.oif === link.index);
    const gw = ep.ips[0]?.gateway;
    if (!ep.noDefaultRoute && gw && !has(0, undefined, gw)) problems.push(`the default route via ${gw} is missing`);
    for (const r of ep.routes ?? []) {
      const p = parsePrefix(r.dst);
      if (p && !has(p.prefix, formatIp(nth(p, 0n)), r.gw ?? gw)) problems.push(`the route to ${r.dst} is missing`);
    }
  } finally {
    inside.close();
  }
  return problems;
}

/** The MACs of the endpoint's host-side links (the bridge and the veth's host end), as the kernel has them. */
export function hostMacs(ep: Endpoint): { bridge?: string; hostVeth?: string } {
  const host = hostRtnl();
  const mac = (name: string) => {
    const m = linkGet(host, name)?.mac;
    return m ? formatMac(m) : undefined;
  };
  return { bridge: mac(ep.bridge), hostVeth: mac(ep.hostVeth) };
}

/** Removes everything the record names; goes on past failures and reports them all at the end. */
export function teardownSandbox(rec: ContainerRecord, sandbox?: Sandbox): void {
  const c = new Cleanup();
  if (sandbox) c.step(() => closeNetns(sandbox.ns));
  const owner = containerOwner(rec);
  for (const ep of [...owner.endpoints]) c.step(() => detachEndpoint(owner, ep));
  const netns = rec.netns;
  if (netns) c.step(() => deleteNetns(netns));
  c.done();
}

/** The primary address (eth0's first) as text, for ps and port maps. */
export function primaryAddress(rec: ContainerRecord): string | undefined {
  return rec.endpoints?.[0]?.ips[0]?.address;
}

