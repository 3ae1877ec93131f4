// A container's network: its namespace and, for each bridge network it is attached to, an
// endpoint: a veth pair whose host end sits on the network's bridge and whose other end (eth0,
// eth1, ...) holds a leased address inside the namespace. Setup makes each object only after the
// record names it; teardown removes whatever the record names, tolerating pieces that are
// already gone, so the same code undoes a failed setup, a normal exit and a crashed run. The
// same attach/detach serves `run`, `network connect/disconnect` and the CNI plugin: anything that
// wires a namespace given by path, for an owner that records its endpoints (EndpointOwner).
import { Cleanup, isErrno, KernelError, TsnetError, UsageError } from "../errors/errors.ts";
import { EEXIST, EXFULL } from "../errors/errno.ts";
import { contains, formatIp, formatPrefix, nth, parseIp, parsePrefix, type IpAddress, type IpPrefix } from "../ip/addr.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { NETNS_RUN_DIR, closeNetns, createNetns, deleteNetns, inNetns, reclaimNetnsLink, type Netns } from "../netns/netns.ts";
import { NLMSG_HDRLEN } from "../netlink/constants.ts";
import { addrDel, addrList } from "../rtnetlink/addr.ts";
import { AF_INET, AF_INET6, BR_MAX_PORTS, IFF_UP, RT_TABLE_MAIN, RTM_DELLINK, RTMGRP_LINK } from "../rtnetlink/constants.ts";
import { linkDelIfExists, linkGet, linkRename, linkSet } from "../rtnetlink/link.ts";
import { routeList } from "../rtnetlink/route.ts";
import { saveRecord, type ContainerRecord, type Endpoint } from "../state/containers.ts";
import { leaseHolder, nextLease, releaseLease, takeLease, takeLeaseAt, type LeaseOwner } from "../state/leases.ts";
import type { NetworkRecord } from "../state/networks.ts";
import { crashPoint } from "../errors/crashpoint.ts";
import { formatMac, macFor } from "./bridge.ts";
import { planAttach, planCniAdd, planTeardown, type AttachPlan, type AttachRead, type AttachRequest } from "../plan/attach.ts";
import { aimPorts, type PublishedPort } from "../ip/port.ts";
import type { PortOwner } from "../nat/portmap.ts";
import { publishAimed } from "./publish.ts";
import { Committer, LOOPBACK_IFINDEX } from "../plan/commit.ts";
import { hostCommitEnv } from "./commit.ts";
import { linkKey } from "../plan/ops.ts";
import { SET_ASIDE_PREFIX, reapSetAside } from "./reap.ts";
import { hostRtnl } from "./host.ts";
import { leaseRange, networkUp, subnetsOf, usableRange, type Subnet } from "./networks.ts";

/** How long a link name still taken by a deletion under way is waited for. */
const NAME_WAIT_MS = 2000;

export interface Sandbox {
  ns: Netns;
  /** rtnetlink inside the namespace, open until the sandbox is configured (completeSandbox). */
  rtnl?: NetlinkSocket;
  /** lo is still down: it goes up with the first endpoint's configuration, in one round trip. */
  loDown?: boolean;
}

/** How to attach a container to one network (Docker's --ip, --mac-address, --network-alias). */
export interface AttachOptions {
  /** A static IPv4 address (`--ip`). */
  ip?: IpAddress;
  /** Where `ip` came from, for messages (`--ip` unless said otherwise). */
  ipWhat?: string;
  /** A static IPv6 address on a dual-stack network (`--ip6`). */
  ip6?: IpAddress;
  mac?: Uint8Array;
  aliases?: string[];
  /**
   * Put the bridge port in hairpin mode (the container publishes ports); the network's own
   * `hairpin` setting, when it has one, wins.
   */
  hairpin?: boolean;
  /** Routes besides the default one; one to 0.0.0.0/0 replaces it. */
  routes?: ExtraRoute[];
  /**
   * A CNI ADD: the host veth's name may still be held by a link on its way out (deleted with its
   * namespace, or left down by an older tsnet's DEL): wait for it, or delete it, before refusing.
   */
  awaitNames?: boolean;
  /** The namespace was just made by this run and holds only lo (its eth0 can take ifindex 2). */
  freshNamespace?: boolean;
  /**
   * Ports to publish at the endpoint's addresses, as the last step of its plan (CNI ADD's port
   * mappings, planCniAdd); a port another owner holds is a PortTakenError, and the endpoint is undone.
   */
  publish?: { owner: PortOwner; ports: readonly PublishedPort[] };
}

/**
 * The container's own namespace, persisted at /run/netns/tsnet-NAME, with an rtnetlink socket
 * opened inside it. lo is brought up with the first endpoint (or by completeSandbox), so the
 * namespace is configured in one round trip.
 */
export function createSandbox(rec: ContainerRecord): Sandbox {
  const recordIt = (path: string, identity: string) => {
    rec.netns = path;
    rec.netnsId = identity;
    saveRecord(rec);
  };
  const { ns, result: rtnl } = createNetns(`tsnet-${rec.name}`, recordIt, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${rec.name})`));
  crashPoint("after-netns");
  return { ns, rtnl, loDown: true };
}

/** Whatever the endpoints left to do: lo up (a namespace with no network), the socket closed. */
export function completeSandbox(sb: Sandbox): void {
  if (!sb.rtnl) return;
  try {
    if (sb.loDown) linkSet(sb.rtnl, LOOPBACK_IFINDEX, { up: true }, "lo");
    sb.loDown = false;
  } finally {
    sb.rtnl.close();
    sb.rtnl = undefined;
  }
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
  // The whole subnet, not only its --ip-range: Docker takes a static address outside the range too.
  const r = usableRange(sub);
  if (ip.value === sub.gateway.value || ip.value < r.first.value || ip.value > r.last.value) {
    throw new UsageError(`${what} ${formatIp(ip)} is not usable on network ${net.name} (it is the network, gateway or broadcast address): give another`);
  }
}

/** `--ip` (family 4) or `--ip6` (6) as an address of its family; one line naming the flag otherwise. */
export function staticAddress(text: string, family: 4 | 6): IpAddress {
  const a = parseIp(text);
  if (a?.family === family) return a;
  const [flag, example, other] = family === 4 ? ["--ip", "10.78.0.10", "an IPv6 address goes in --ip6"] : ["--ip6", "fd00:80::10", "an IPv4 address goes in --ip"];
  throw new UsageError(`invalid ${flag} "${text}": give an IPv${family} address, e.g. ${flag} ${example}${a ? ` (${other})` : ""}`);
}

/**
 * `--ip` and `--ip6` as text, parsed and checked against the network before anything is made:
 * each of its own family, `--ip6` only on a dual-stack network, both inside the network.
 */
export function staticAddresses(net: NetworkRecord, ip?: string, ip6?: string): { ip?: IpAddress; ip6?: IpAddress } {
  const out: { ip?: IpAddress; ip6?: IpAddress } = {};
  if (ip !== undefined) out.ip = staticAddress(ip, 4);
  if (ip6 !== undefined) {
    out.ip6 = staticAddress(ip6, 6);
    if (!subnetsOf(net).some((s) => s.subnet.family === 6)) {
      throw new UsageError(`--ip6 ${ip6}: network ${net.name} has no IPv6 subnet: use a network made with tsnet network create --ipv6`);
    }
  }
  if ((out.ip || out.ip6) && net.builtin) {
    throw new UsageError(`${out.ip ? "--ip" : "--ip6"} is supported on user-defined networks only: create one with tsnet network create NAME`);
  }
  if (out.ip) checkStaticIp(net, out.ip, "--ip");
  if (out.ip6) checkStaticIp(net, out.ip6, "--ip6");
  return out;
}

/** A route inside the namespace besides the default one (from a delegated IPAM plugin). */
export interface ExtraRoute {
  dst: IpPrefix;
  /** The next hop; the network's gateway when absent. */
  gw?: IpAddress;
}

/**
 * Attaches the owner's namespace to a bridge network: brings the network up, leases an address,
 * records the endpoint, then makes the veth pair with its peer born inside the namespace, and
 * configures it there. `where` is a sandbox this run made (its socket is reused) or an fd on a
 * namespace given by path. Throws with what it made undone.
 */
export function attachEndpoint(owner: EndpointOwner, net: NetworkRecord, where: Sandbox | number, o: AttachOptions = {}): Endpoint {
  const sb = typeof where === "number" ? undefined : where;
  const nsFd = sb ? sb.ns.fd : (where as number);
  if (net.driver !== "bridge" || !net.bridge) throw new UsageError(`network ${net.name} has no bridge to attach to`);
  const host = hostRtnl();
  const bridgeIndex = networkUp(net);
  const ifname = owner.nextIfname();
  const hostVeth = owner.hostVethName(ifname);
  // In a namespace of its own making, where only lo (1) exists, the peer asks for ifindex 2, so
  // nothing has to look it up before configuring it; its names cannot be taken there.
  const fresh = owner.endpoints.length === 0 && o.freshNamespace === true;
  // The sandbox's own socket when it is still open; otherwise one opened inside for this.
  const inside = sb?.rtnl ?? inNetns(nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${owner.what})`));
  try {
    if (o.awaitNames) {
      // A veth of this name that is down is one an older tsnet's DEL of the same attachment left
      // to its namespace, which has stayed: it is deleted now (its inside end with it). tsnet's
      // DEL now sets the pair aside under another name at both ends (detachEndpoint), so the
      // runtime's interface name is free when DEL returns: one still there is the caller's mistake.
      const left = linkGet(host, hostVeth);
      if (left?.kind === "veth" && !(left.flags & IFF_UP)) linkDelIfExists(host, hostVeth);
      if (linkGet(inside, ifname)) {
        throw new TsnetError(`${owner.netns ?? "the namespace"} already has an interface named ${ifname}: give another interface name`);
      }
      // The host end of an earlier pair of this attachment whose namespace the kernel is destroying
      // (removed by the runtime without a DEL) may still hold the name for some milliseconds.
      if (!linkGoneWithin(host, hostVeth, NAME_WAIT_MS)) {
        throw new KernelError("add veth", hostVeth, EEXIST, "a link of that name exists on the host and is not tsnet's: remove it if nothing uses it");
      }
    }
    return attachWith(owner, net, { sb, nsFd, inside, bridgeIndex, ifname, hostVeth, fresh }, o);
  } finally {
    if (inside !== sb?.rtnl) inside.close();
  }
}

interface Where {
  sb: Sandbox | undefined;
  nsFd: number;
  inside: NetlinkSocket;
  bridgeIndex: number;
  ifname: string;
  hostVeth: string;
  fresh: boolean;
}

/** Takes the lease of a static address (`--ip`, `--ip6`), checked first; names its holder if taken. */
function takeStatic(net: NetworkRecord, ip: IpAddress, what: string, leaseOwner: LeaseOwner): IpAddress {
  checkStaticIp(net, ip, what);
  if (!takeLeaseAt(net.id, ip, leaseOwner)) {
    const holder = leaseHolder(net.id, ip);
    const by = holder ? ` by ${holder.cniContainer ? `CNI container ${holder.cniContainer.slice(0, 12)}` : `container ${holder.names[0] ?? holder.container.slice(0, 12)}`}` : "";
    throw new TsnetError(`${what} ${formatIp(ip)} is already in use on network ${net.name}${by}: give another address`);
  }
  return ip;
}

function attachWith(owner: EndpointOwner, net: NetworkRecord, w: Where, o: AttachOptions): Endpoint {
  const { sb, nsFd, inside, ifname, fresh } = w;
  const leaseOwner = owner.leaseOwner(ifname, o.aliases ?? []);
  // One address per subnet: IPv4, and IPv6 on a dual-stack network.
  const leased: { address: IpAddress; sub: Subnet }[] = [];
  const undoLeases = () => {
    for (const l of leased) releaseLease(net.id, l.address, leaseOwner.container);
  };
  try {
    for (const sub of subnetsOf(net)) {
      const fixed = sub.subnet.family === 4 ? o.ip : o.ip6;
      const what = sub.subnet.family === 4 ? (o.ipWhat ?? "--ip") : "--ip6";
      leased.push({ sub, address: fixed ? takeStatic(net, fixed, what, leaseOwner) : takeLease(net.id, { ...leaseRange(sub), skip: sub.gateway }, leaseOwner, net.name) });
    }
  } catch (e) {
    undoLeases();
    throw e;
  }
  crashPoint("after-lease");
  const mac = o.mac ?? macFor(leased[0]!.address);
  const netns = sb ? sb.ns.name : (owner.netns ?? "the namespace");
  const aimed = o.publish ? aimPorts(o.publish.ports, leased.map((l) => l.address)) : [];
  let plan: AttachPlan;
  try {
    const read = readAttach(inside, net, leased, fresh);
    const req = attachRequest(net, { netns, fresh, loUp: sb?.loDown === true, hostVeth: w.hostVeth, ifname, mac }, leased, o);
    plan = o.publish ? planCniAdd(read, req, o.publish.owner, aimed) : planAttach(read, req);
  } catch (e) {
    undoLeases();
    throw e;
  }
  const gatewayOf = (sub: Subnet) => gatewayOfSubnet(net, sub);
  const ep: Endpoint = {
    networkId: net.id,
    network: net.name,
    bridge: net.bridge!,
    hostVeth: w.hostVeth,
    ifname,
    mac: formatMac(mac),
    ips: leased.map(({ address, sub }) => {
      const gw = gatewayOf(sub);
      return { address: formatIp(address), prefix: sub.subnet.prefix, ...(gw && { gateway: formatIp(gw) }) };
    }),
    aliases: o.aliases ?? [],
  };
  if (o.routes?.length) ep.routes = o.routes.map((r) => ({ dst: formatPrefix(r.dst), ...(r.gw && { gw: formatIp(r.gw) }) }));
  // Until it exists, undo must not delete a link of that name: it would be someone else's.
  ep.vethMade = false;
  owner.endpoints.push(ep);
  owner.save();
  try {
    const c = new Committer(hostCommitEnv({ name: netns, rtnl: inside, fd: nsFd }, { [linkKey(undefined, net.bridge!)]: w.bridgeIndex }), plan);
    const [veth, ...rest] = plan.ops;
    // One message makes both ends: the host end attached to the bridge and up, the container end
    // born inside the namespace under its final name (so no rename or move is needed). It comes
    // back with its ifindex (NLM_F_ECHO), which the guard needs.
    try {
      c.run([veth!]);
    } catch (e) {
      // The kernel numbers a bridge's ports in 10 bits (BR_MAX_PORTS), and says only EXFULL.
      if (isErrno(e, EXFULL)) {
        throw new TsnetError(`network ${net.name} is full: its bridge ${net.bridge} has ${BR_MAX_PORTS - 1} ports, the most a Linux bridge takes: put further containers on another network (tsnet network create)`);
      }
      throw e;
    }
    ep.vethMade = true;
    crashPoint("after-veth");
    // The guard (before the peer goes up) and hairpin on the host socket, disable_ipv6 inside,
    // then lo, eth0, addresses and routes inside in one round trip; the ports (one nf_tables
    // transaction) last, the table re-made with them if the kernel says it is missing.
    const links = rest.filter((op) => op.op !== "nft-elements");
    c.run(links);
    if (o.publish) publishAimed(o.publish.owner, aimed, () => c.run(rest.filter((op) => op.op === "nft-elements")));
    if (sb) sb.loDown = false;
    if (plan.noDefaultRoute || plan.noDefaultRoute6) {
      if (plan.noDefaultRoute) ep.noDefaultRoute = true;
      if (plan.noDefaultRoute6) ep.noDefaultRoute6 = true;
      owner.save();
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

/** isGateway false: the bridge has no address, so nothing routes through it. */
function gatewayOfSubnet(net: NetworkRecord, sub: Subnet): IpAddress | undefined {
  return net.isGateway === false ? undefined : sub.gateway;
}

/**
 * What attaching reads of the namespace: in one of this run's own making, nothing; in one given
 * by path (a CNI runtime's, a `network connect`), whether an earlier network or plugin gave each
 * family a default route.
 */
function readAttach(inside: NetlinkSocket, net: NetworkRecord, leased: readonly { sub: Subnet }[], fresh: boolean): AttachRead {
  const defaultRoutes = fresh || net.internal ? [] : leased.map((l) => l.sub.subnet.family).filter((f) =>
    routeList(inside, f === 4 ? AF_INET : AF_INET6).some((r) => r.dstLen === 0 && r.table === RT_TABLE_MAIN));
  return { defaultRoutes };
}

/** The planner's request for an endpoint on net with these addresses. */
function attachRequest(
  net: NetworkRecord,
  at: { netns: string; fresh: boolean; loUp: boolean; hostVeth: string; ifname: string; mac: Uint8Array },
  leased: readonly { address: IpAddress; sub: Subnet }[],
  o: AttachOptions,
): AttachRequest {
  return {
    netns: at.netns, fresh: at.fresh, loUp: at.loUp,
    network: { name: net.name, bridge: net.bridge!, mtu: net.mtu, internal: net.internal },
    hostVeth: at.hostVeth, ifname: at.ifname, mac: formatMac(at.mac),
    leased: leased.map(({ address, sub }) => ({ address, prefix: sub.subnet.prefix, gateway: gatewayOfSubnet(net, sub) })),
    hairpin: net.hairpin ?? o.hairpin ?? false,
    routes: o.routes,
  };
}

/** Where `tsnet explain` plans an endpoint: the namespace as the plan names it, and how to read it. */
export interface ExplainedPlace {
  /** The namespace's name under /run/netns, or a CNI runtime's path. */
  netns: string;
  /** Made by the explained command itself: nothing to read, and it holds only lo. */
  fresh: boolean;
  /** lo goes up with this endpoint (a namespace the command makes). */
  loUp: boolean;
  /** An open fd on an existing namespace, to read its routes and interfaces. */
  nsFd?: number;
}

/**
 * attachEndpoint as operations, changing nothing (`tsnet explain`): the addresses it would lease
 * now (the next free ones after each cursor, or --ip/--ip6 checked and found free), taking none,
 * then the same read and planner as attachEndpoint. Returns the plan and the addresses.
 */
export function planEndpoint(owner: EndpointOwner, net: NetworkRecord, place: ExplainedPlace, o: AttachOptions = {}): { plan: AttachPlan; read: AttachRead; req: AttachRequest; ips: IpAddress[] } {
  if (net.driver !== "bridge" || !net.bridge) throw new UsageError(`network ${net.name} has no bridge to attach to`);
  const ifname = owner.nextIfname();
  const hostVeth = owner.hostVethName(ifname);
  const leased = subnetsOf(net).map((sub) => {
    const fixed = sub.subnet.family === 4 ? o.ip : o.ip6;
    const what = sub.subnet.family === 4 ? (o.ipWhat ?? "--ip") : "--ip6";
    if (!fixed) return { sub, address: nextLease(net.id, { ...leaseRange(sub), skip: sub.gateway }, net.name) };
    checkStaticIp(net, fixed, what);
    const holder = leaseHolder(net.id, fixed);
    if (holder) throw new TsnetError(`${what} ${formatIp(fixed)} is already in use on network ${net.name} by ${holder.names[0] ?? holder.container.slice(0, 12)}: give another address`);
    return { sub, address: fixed };
  });
  let read: AttachRead = { defaultRoutes: [] };
  if (place.nsFd !== undefined) {
    const inside = inNetns(place.nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${owner.what})`));
    try {
      if (o.awaitNames && linkGet(inside, ifname)) throw new TsnetError(`${owner.netns ?? "the namespace"} already has an interface named ${ifname}: give another interface name`);
      read = readAttach(inside, net, leased, place.fresh);
    } finally {
      inside.close();
    }
  }
  const mac = o.mac ?? macFor(leased[0]!.address);
  const req = attachRequest(net, { netns: place.netns, fresh: place.fresh, loUp: place.loUp, hostVeth, ifname, mac }, leased, o);
  return { plan: planAttach(read, req), read, req, ips: leased.map((l) => l.address) };
}

/**
 * Removes one endpoint: its veth pair from the namespace and the bridge (only a veth this endpoint
 * made), then its leases. Deleting a link blocks the caller in the kernel's rcu_barrier() (15-40
 * ms measured), and so does moving it to another namespace (dev_change_net_namespace has its own
 * rcu_barrier(); 13-50 ms measured): no way of taking a link out of a namespace that lives on is
 * cheap. So, given the namespace (`ns`, an fd), the pair is set aside instead (setAsideVeth, well
 * under a millisecond): gone from the container's view and the bridge at once, and destroyed with
 * its namespace by the kernel's cleanup worker. `ns` "gone": the namespace is no more (the kernel
 * took the inside end, and takes the host end with it if it has not yet); only the host end is set
 * aside. Without `ns` (a failed attach's undo) the veth is deleted, blocking as said.
 */
export function detachEndpoint(owner: EndpointOwner, ep: Endpoint, ns?: number | "gone"): void {
  const c = new Cleanup();
  if (ep.vethMade !== false) {
    if (ns === undefined) c.step(() => linkDelIfExists(hostRtnl(), ep.hostVeth));
    else c.step(() => setAsideVeth(owner, ep, ns === "gone" ? undefined : ns));
  }
  crashPoint("teardown-after-veth");
  c.step(() => forgetEndpoint(owner, ep));
  c.done();
}

/**
 * What a veth pair set aside is called, at both ends: the kernel numbers it (the first free
 * number), so neither the runtime's interface name nor the endpoint's host name stays taken, and
 * `ip link` says what it is. Not of the form of tsnet's bridge names (BRIDGE_RE: "tsnet..."), so
 * `network rm` never takes one for a bridge of its own.
 */
export const SET_ASIDE_NAME = `${SET_ASIDE_PREFIX}%d`;

/**
 * Sets the endpoint's veth pair aside without deleting it (see detachEndpoint). Inside the
 * namespace behind nsFd, the endpoint's interface, if it is still the host end's peer: its
 * addresses removed, down (its routes go with it), renamed; on the host: the host end down, off
 * the bridge, renamed. A few round trips, no RCU wait. The pair stays, down and bare, until its
 * namespace is destroyed (a CNI runtime removes it after DEL; a container's goes when it ends),
 * and the kernel's cleanup worker then destroys both ends.
 */
export function setAsideVeth(owner: Pick<EndpointOwner, "what">, ep: Pick<Endpoint, "hostVeth" | "ifname">, nsFd: number | undefined): void {
  const host = hostRtnl();
  const port = linkGet(host, ep.hostVeth);
  if (!port || port.kind !== "veth") return;
  if (nsFd !== undefined) {
    // An older pair still set aside here (no manager deleted it: a CNI namespace, or a manager
    // gone) is deleted first, paying the barrier then: a namespace holds at most one (src/network/reap.ts).
    reapSetAside(nsFd, Infinity, owner.what);
    const inside = inNetns(nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${owner.what})`));
    try {
      const link = linkGet(inside, ep.ifname);
      // A link of that name that is not this pair's other end (moved, or someone else's) is left alone.
      if (link && link.kind === "veth" && link.index === port.peer && link.peer === port.index) {
        const addrs = [...addrList(inside, AF_INET), ...addrList(inside, AF_INET6)].filter((a) => a.index === link.index);
        // Down first: it takes the routes through the link (and its IPv6 addresses) with it, and
        // older kernels rename only a link that is down.
        inside.batch(() => {
          linkSet(inside, link.index, { up: false }, ep.ifname);
          linkRename(inside, link.index, SET_ASIDE_NAME, ep.ifname);
        });
        // One by one, each tolerating an address already gone (IPv6's went down with the link; an
        // IPv4 primary's secondaries go with it).
        for (const a of addrs) addrDel(inside, link.index, a.address, a.prefix, ep.ifname);
      }
    } finally {
      inside.close();
    }
  }
  host.batch(() => {
    linkSet(host, port.index, { up: false, master: 0 }, ep.hostVeth);
    linkRename(host, port.index, SET_ASIDE_NAME, ep.hostVeth);
  });
}

/**
 * True when no link of that name exists on the host, or the one there goes within `ms`: a
 * deletion handed to the kernel may still be under way. The events socket is opened only when
 * there is something to wait for.
 */
function linkGoneWithin(host: NetlinkSocket, name: string, ms: number): boolean {
  if (!linkGet(host, name)) return true;
  const events = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink link events", { groups: RTMGRP_LINK, timeoutMs: ms });
  try {
    // Subscribed before this second look, so a deletion in between cannot be missed.
    const link = linkGet(host, name);
    if (!link) return true;
    events.waitFor((m) => m.type === RTM_DELLINK && m.view.getInt32(NLMSG_HDRLEN + 4, true) === link.index, Date.now() + ms);
  } catch {
    // A timeout says nothing the next look does not.
  } finally {
    events.close();
  }
  return !linkGet(host, name);
}

/**
 * What differs between an endpoint as its owner recorded it and as the kernel has it: the bridge
 * up, the host end on it and up, the inside end up with its MAC, each address and each route the
 * endpoint made, its lease (CNI CHECK). An empty list: all there.
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
    const addrs = [...addrList(inside, AF_INET), ...addrList(inside, AF_INET6)].filter((a) => a.index === link.index);
    for (const ip of ep.ips) {
      if (!addrs.some((a) => formatIp(a.address) === ip.address && a.prefix === ip.prefix)) problems.push(`${ep.ifname} lacks address ${ip.address}/${ip.prefix}`);
      const a = parseIp(ip.address);
      if (a && leaseHolder(ep.networkId, a)?.container !== owner.id) problems.push(`the lease of ${ip.address} on network ${net.name} is not held`);
    }
    const routes = [
      ...routeList(inside, AF_INET).map((r) => ({ ...r, family: 4 })),
      ...routeList(inside, AF_INET6).map((r) => ({ ...r, family: 6 })),
    ].filter((r) => r.table === RT_TABLE_MAIN);
    const has = (family: number, dstLen: number, dst: string | undefined, gw: string | undefined) =>
      routes.some((r) => r.family === family && r.dstLen === dstLen && (dstLen === 0 || (r.dst && formatIp(r.dst)) === dst) && (gw === undefined || (r.gateway && formatIp(r.gateway)) === gw) && r.oif === link.index);
    // Each family's gateway: IPv4's, and a dual-stack endpoint's IPv6 one.
    const gwOf = (family: number) => ep.ips.find((i) => parseIp(i.address)?.family === family)?.gateway;
    const gw = gwOf(4), gw6 = gwOf(6);
    if (!ep.noDefaultRoute && gw && !has(4, 0, undefined, gw)) problems.push(`the default route via ${gw} is missing`);
    if (!ep.noDefaultRoute6 && gw6 && !has(6, 0, undefined, gw6)) problems.push(`the IPv6 default route via ${gw6} is missing`);
    for (const r of ep.routes ?? []) {
      const p = parsePrefix(r.dst);
      if (p && !has(p.family, p.prefix, formatIp(nth(p, 0n)), r.gw ?? gwOf(p.family))) problems.push(`the route to ${r.dst} is missing`);
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

/**
 * Removes everything the record names; goes on past failures and reports them all at the end.
 * The veths are not deleted one by one: unmounting the namespace (and closing its last fd) lets
 * the kernel destroy it, and the veth pairs with it, in its cleanup worker, as `ip netns del`
 * does. A link deletion would block here for the kernel's rcu_barrier() (15-40 ms); the
 * namespace's end costs nothing on this path. The addresses are released now: leases are
 * handed out round-robin, so an old veth still holding one for a few milliseconds is never given
 * the same address again at once (ARCHITECTURE.md). Unless `shared`: another container (joined
 * with --network container:) still lives in the namespace, which then outlives this one, so its
 * veths are deleted here, blocking as said, and their addresses are truly free when released.
 */
export function teardownSandbox(rec: ContainerRecord, sandbox?: Sandbox, shared = false): void {
  const c = new Cleanup();
  if (sandbox?.rtnl) {
    const rtnl = sandbox.rtnl;
    sandbox.rtnl = undefined;
    c.step(() => rtnl.close());
  }
  if (sandbox) c.step(() => closeNetns(sandbox.ns));
  const owner = containerOwner(rec);
  const netns = rec.netns;
  // Only a veth its endpoint made: until then a link of that name would be someone else's.
  const veths = owner.endpoints.filter((ep) => ep.vethMade !== false).map((ep) => ep.hostVeth);
  const plan = planTeardown(netns && netnsName(netns), veths, shared);
  const committer = new Committer({ ...hostCommitEnv(), netnsDel: (name) => deleteNetns(pathOfNetns(name)) });
  // Each step on its own, the rest going on past a failure.
  for (const op of plan.ops) c.step(() => committer.run([op]));
  crashPoint("teardown-after-netns");
  for (const ep of [...owner.endpoints]) c.step(() => forgetEndpoint(owner, ep));
  c.done();
}

/** A namespace's path as a plan names it: its name under /run/netns (as `ip netns` does), else the path. */
function netnsName(path: string): string {
  return path.startsWith(`${NETNS_RUN_DIR}/`) && !path.slice(NETNS_RUN_DIR.length + 1).includes("/") ? path.slice(NETNS_RUN_DIR.length + 1) : path;
}

function pathOfNetns(name: string): string {
  return name.startsWith("/") ? name : `${NETNS_RUN_DIR}/${name}`;
}

/** After a crash: the namespace file a run made but had not recorded yet (see createNetns). */
export function reclaimNetns(rec: ContainerRecord): void {
  const pid = Number(rec.manager?.split("-")[0]);
  if (!rec.netns && rec.name && pid > 0) reclaimNetnsLink(`tsnet-${rec.name}`, pid);
}

/** Releases the endpoint's leases and forgets it in the owner's list (the caller saves). */
function forgetEndpoint(owner: EndpointOwner, ep: Endpoint): void {
  const c = new Cleanup();
  for (const ip of ep.ips) {
    const a = parseIp(ip.address);
    if (a) c.step(() => releaseLease(ep.networkId, a, owner.id));
  }
  const i = owner.endpoints.findIndex((e) => e === ep || e.hostVeth === ep.hostVeth);
  if (i >= 0) owner.endpoints.splice(i, 1);
  c.done();
}

