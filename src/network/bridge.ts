// A bridge network's kernel objects on the host, as Docker makes docker0 and br-<id>: one Linux
// bridge holding the gateway address of each subnet, IPv4 forwarding, route_localnet on the
// bridge once tsnet's table is in place (planned by src/plan/network.ts, committed by
// networks.ts; here the MAC, the readiness check and route_localnet's own switch) (for published ports reached at 127.0.0.1; the misuse of
// it is stopped by the loopback guard on each container's veth, src/network/guard.ts, and by the
// one in tsnet's table, src/nat/ruleset.ts).
import { ipBytes, type IpAddress } from "../ip/addr.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { addrList, afOf } from "../rtnetlink/addr.ts";
import { AF_INET, IFF_UP } from "../rtnetlink/constants.ts";
import { linkGet, linkGetWithAddrs } from "../rtnetlink/link.ts";
import { guardBridgePorts } from "./guard.ts";
import { hostRtnl } from "./host.ts";
import { writeSysctl } from "../plan/commit.ts";
import { sysctlKey } from "../plan/ops.ts";

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

/**
 * The bridge is there, up, with every gateway address: nothing to make. The link and the first
 * family's addresses in one round trip; a dual-stack network's other family in a second.
 */
export function bridgeReady(nl: NetlinkSocket, spec: BridgeSpec): number | undefined {
  const families = [...new Set(spec.gateways.map((g) => afOf(g.address)))];
  const { link, addrs } = linkGetWithAddrs(nl, spec.bridge, families[0] ?? AF_INET);
  if (!link || !(link.flags & IFF_UP)) return undefined;
  for (const f of families.slice(1)) addrs.push(...addrList(nl, f));
  for (const g of spec.gateways) {
    if (!addrs.some((a) => a.index === link.index && a.address.family === g.address.family && a.address.value === g.address.value)) return undefined;
  }
  return link.index;
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
  return writeSysctl(sysctlKey("net", "ipv4", "conf", bridge, "route_localnet"), on ? "1" : "0");
}
