// A bridge network's kernel objects on the host, as Docker makes docker0 and br-<id>: one Linux
// bridge holding the gateway address of each subnet, IPv4 forwarding, route_localnet on the
// bridge once tsnet's table is in place (for published ports reached at 127.0.0.1; the misuse of
// it is stopped by the loopback guard on each container's veth, src/network/guard.ts, and by the
// one in tsnet's table, src/nat/ruleset.ts).
import { KernelError, TsnetError } from "../errors/errors.ts";
import { ENODEV } from "../errors/errno.ts";
import { ipBytes, type IpAddress } from "../ip/addr.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { addrAdd, addrDel, addrList, afOf } from "../rtnetlink/addr.ts";
import { IFF_UP } from "../rtnetlink/constants.ts";
import { linkAdd, linkDelIfExists, linkGet, linkSet } from "../rtnetlink/link.ts";
import { guardBridgePorts } from "./guard.ts";
import { enableSysctl, hostRtnl, setSysctl } from "./host.ts";

export interface BridgeSpec {
  bridge: string;
  /** Gateway address and prefix length of each subnet. */
  gateways: { address: IpAddress; prefix: number }[];
  /** The bridge's MTU (com.docker.network.driver.mtu, as Docker sets it on the bridge too); the kernel's when absent. */
  mtu?: number;
}

/**
 * A MAC derived from an IPv4 address, 02:74:a:b:c:d (locally administered, unicast): unique as
 * long as the address is, and stable, so a reused address never meets a stale ARP entry.
 * From an IPv6 address, its last four bytes.
 */
export function macFor(address: IpAddress): Uint8Array {
  const b = ipBytes(address);
  return new Uint8Array([0x02, 0x74, ...b.subarray(b.length - 4)]);
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}

export function parseMac(s: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)) return undefined;
  return new Uint8Array(s.split(":").map((x) => Number.parseInt(x, 16)));
}

/** The bridge is there, up, with every gateway address: nothing to make. */
export function bridgeReady(nl: NetlinkSocket, spec: BridgeSpec): number | undefined {
  const link = linkGet(nl, spec.bridge);
  if (!link || !(link.flags & IFF_UP)) return undefined;
  for (const g of spec.gateways) {
    if (!addrList(nl, afOf(g.address)).some((a) => a.index === link.index && a.address.value === g.address.value)) return undefined;
  }
  return link.index;
}

/**
 * Makes the bridge (or mends it: up, addresses). Returns its ifindex and whether it was created,
 * so a caller that fails later undoes only what it made.
 */
export function makeBridge(nl: NetlinkSocket, spec: BridgeSpec): { index: number; created: boolean } {
  // Before the bridge exists: a bridge with no gateway address is ready (up) from its creation.
  const dual = spec.gateways.some((g) => g.address.family === 6);
  enableForwarding(dual);
  let link = linkGet(nl, spec.bridge);
  let created = false;
  if (link && link.kind !== "bridge") {
    throw new TsnetError(`cannot use ${spec.bridge} as a bridge: a link of that name exists and is ${link.kind ? `a ${link.kind}` : "not a bridge"}; give the network another bridge name`);
  }
  if (!link) {
    linkAdd(nl, { name: spec.bridge, kind: "bridge", mac: spec.gateways[0] && macFor(spec.gateways[0].address), up: true, mtu: spec.mtu });
    created = true;
    link = linkGet(nl, spec.bridge);
  }
  try {
    if (!link) throw new KernelError("find link", spec.bridge, ENODEV, "it vanished while being set up");
    if (!(link.flags & IFF_UP)) linkSet(nl, link.index, { up: true }, spec.bridge);
    // A host whose default is disable_ipv6=1 would refuse the IPv6 gateway address (EACCES).
    if (dual) setSysctl(`/proc/sys/net/ipv6/conf/${spec.bridge}/disable_ipv6`, false);
    // The gateway addresses last: with them the bridge is ready (bridgeReady), and other
    // processes attach to it at once, so nothing may fail after them.
    for (const g of spec.gateways) {
      if (!addrList(nl, afOf(g.address)).some((a) => a.index === link.index && a.address.value === g.address.value)) {
        addrAdd(nl, link.index, g.address, g.prefix, spec.bridge);
      }
    }
    return { index: link.index, created };
  } catch (e) {
    if (created) deleteBridge(nl, spec.bridge);
    throw e;
  }
}

/**
 * What a network put on a bridge it did not make (a host's bridge named by -o
 * com.docker.network.bridge.name): its gateway addresses and route_localnet go, the bridge stays.
 */
export function releaseForeignBridge(nl: NetlinkSocket, spec: BridgeSpec): void {
  const link = linkGet(nl, spec.bridge);
  if (!link) return;
  for (const g of spec.gateways) addrDel(nl, link.index, g.address, g.prefix, spec.bridge);
  setSysctl(`/proc/sys/net/ipv4/conf/${spec.bridge}/route_localnet`, false);
}

/** Removes the bridge; one that is already gone is not an error. */
export function deleteBridge(nl: NetlinkSocket, bridge: string): void {
  linkDelIfExists(nl, bridge);
}

/**
 * Routing between the bridge and the host's other links needs IPv4 forwarding, and IPv6
 * forwarding for a dual-stack network (as Docker sets them). IPv6's switch is all/forwarding,
 * which also makes every interface of the host a router: the kernel then ignores router
 * advertisements on interfaces whose accept_ra is 1 (the default), so a host that configures
 * its own IPv6 address or default route by SLAAC must set accept_ra=2 on that interface first
 * (Docker's documentation says the same of its ip6tables/forwarding setup).
 */
export function enableForwarding(ipv6 = false): void {
  enableSysctl("/proc/sys/net/ipv4/ip_forward");
  if (ipv6) enableSysctl("/proc/sys/net/ipv6/conf/all/forwarding");
}

/**
 * A published port reached at 127.0.0.1 is routed out through the bridge with its loopback
 * source, which the kernel allows only with route_localnet on the bridge. route_localnet also
 * lets packets for 127.0.0.0/8 in from the bridge, so it is safe only while a guard drops them:
 * each veth on the bridge gets the loopback guard, which a firewall reload cannot remove, when it
 * is made, and every one is checked (and given it if missing) right before route_localnet is
 * turned on; and callers turn it on only once tsnet's table, with its own guard, is in place, and
 * off when that guard is found missing (src/network/firewall.ts). A bridge that does not exist is
 * skipped (false).
 */
export function setRouteLocalnet(bridge: string, on: boolean): boolean {
  if (on) {
    const nl = hostRtnl();
    const link = linkGet(nl, bridge);
    if (!link) return false;
    guardBridgePorts(nl, link.index);
  }
  return setSysctl(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, on);
}
