// The default network, as Docker's "bridge" network with docker0: one Linux bridge holding the
// gateway address of a /16; containers are veth ends attached to it.
import { writeFileSync, readFileSync } from "node:fs";
import { UsageError } from "../errors/errors.ts";
import { formatCidr, formatIPv4, ipv4Bytes, overlaps, parseCidr, type Cidr } from "../ip/ipv4.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { addrAdd, addrList } from "../rtnetlink/addr.ts";
import { IFF_UP, RT_TABLE_MAIN, RTN_UNICAST } from "../rtnetlink/constants.ts";
import { linkAdd, linkDel, linkGet, linkList, linkSet } from "../rtnetlink/link.ts";
import { routeList } from "../rtnetlink/route.ts";
import { withLock } from "../state/files.ts";
import { ensureNatTable } from "../nat/portmap.ts";

export interface BridgeNetwork {
  name: string;
  bridge: string;
  subnet: Cidr;
  gateway: number;
}

// Clear of Docker's 172.17.0.0/16 (and its 172.18-31 pools), Podman's 10.88.0.0/16 and 10.89.x
// networks, and the usual Kubernetes pod and service ranges.
export const DEFAULT_SUBNET = "10.77.0.0/16";
export const SUBNET_ENV = "TSNET_BRIDGE_SUBNET";

export function defaultNetwork(): BridgeNetwork {
  const text = process.env[SUBNET_ENV] || DEFAULT_SUBNET;
  const subnet = parseCidr(text);
  if (!subnet || subnet.prefix > 30 || subnet.prefix < 8) {
    throw new UsageError(`${SUBNET_ENV}="${text}" is not a usable IPv4 subnet: give one like 10.77.0.0/16 (prefix 8 to 30)`);
  }
  return { name: "bridge", bridge: "tsnet0", subnet, gateway: subnet.net + 1 };
}

/**
 * A MAC derived from an IPv4 address, 02:74:a:b:c:d (locally administered, unicast): unique as
 * long as the address is, and stable, so a reused address never meets a stale ARP entry.
 */
export function macFor(address: number): Uint8Array {
  return new Uint8Array([0x02, 0x74, ...ipv4Bytes(address)]);
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Makes sure the bridge exists, is up and holds the gateway address; returns its ifindex. */
export function ensureBridge(nl: NetlinkSocket, net: BridgeNetwork): number {
  const existing = linkGet(nl, net.bridge);
  if (existing && existing.flags & IFF_UP && hasAddress(nl, existing.index, net.gateway)) {
    enableRouting(net);
    return existing.index;
  }
  // Creation and repair are serialised so that concurrent first runs make one bridge.
  return withLock(`network-${net.name}`, () => {
    let link = linkGet(nl, net.bridge);
    let created = false;
    if (!link) {
      refuseOverlap(nl, net);
      linkAdd(nl, { name: net.bridge, kind: "bridge", mac: macFor(net.gateway), up: true });
      created = true;
      link = linkGet(nl, net.bridge);
    }
    try {
      if (!link) throw new UsageError(`bridge ${net.bridge} vanished while being set up`);
      if (!(link.flags & IFF_UP)) linkSet(nl, link.index, { up: true }, net.bridge);
      if (!hasAddress(nl, link.index, net.gateway)) {
        addrAdd(nl, link.index, net.gateway, net.subnet.prefix, net.bridge);
      }
      enableRouting(net, true);
      return link.index;
    } catch (e) {
      if (created) linkDel(nl, net.bridge);
      throw e;
    }
  });
}

function hasAddress(nl: NetlinkSocket, index: number, address: number): boolean {
  return addrList(nl).some((a) => a.index === index && a.address === address);
}

function refuseOverlap(nl: NetlinkSocket, net: BridgeNetwork): void {
  const clash = routeList(nl).find(
    (r) => r.table === RT_TABLE_MAIN && r.type === RTN_UNICAST && r.dstLen > 0 && overlaps(net.subnet, { net: r.dst, prefix: r.dstLen }),
  );
  if (!clash) return;
  const dev = linkList(nl).find((l) => l.index === clash.oif)?.name ?? `ifindex ${clash.oif}`;
  throw new UsageError(
    `the ${net.name} network's subnet ${formatCidr(net.subnet)} overlaps the host route ${formatIPv4(clash.dst)}/${clash.dstLen} dev ${dev}: ` +
      `set ${SUBNET_ENV} to a free range (for example 10.78.0.0/16)`,
  );
}

/**
 * Routing between the bridge and the host's other links needs IPv4 forwarding (as Docker sets
 * it), and a published port reached at 127.0.0.1 is routed out through the bridge with its
 * loopback source, which the kernel allows only with route_localnet on the bridge (the remote
 * misuse of that is stopped by the nf_tables guard, see src/nat/). On the slow path (bridge made
 * or mended) tsnet's table is also compared with its spec and rewritten where it drifted; on the
 * fast path only its existence is checked.
 */
function enableRouting(net: BridgeNetwork, repair = false): void {
  ensureNatTable(net, repair);
  setSysctl("/proc/sys/net/ipv4/ip_forward");
  setSysctl(`/proc/sys/net/ipv4/conf/${net.bridge}/route_localnet`);
}

function setSysctl(path: string): void {
  if (readFileSync(path, "utf8").trim() !== "1") writeFileSync(path, "1\n");
}
