// The planner of a network's bring-up (first use, after a reboot, after its bridge was deleted):
// a pure function from what was read (the bridge as the kernel has it, tsnet's table, the veths
// already on the bridge) and the network to the operations networkUp makes, in its order: the
// table first (the guard in it before route_localnet), forwarding, the bridge, its gateway
// addresses last but for route_localnet (with them the bridge is ready and others attach to it).
import { formatIp, type IpAddress } from "../ip/addr.ts";
import { planTable, type TableSpec, type TableState } from "../nftables/ensure.ts";
import { sysctlKey, type Op, type Plan } from "./ops.ts";

export interface NetworkUpRead {
  /** The link of the bridge's name, if there is one. */
  bridge?: { kind?: string; up: boolean; addresses: readonly IpAddress[] };
  /** tsnet's table as read (readTable). */
  table: TableState;
  /** The veths on the bridge now: each is checked for the loopback guard before route_localnet. */
  ports: readonly string[];
  /** The ruleset generation read before the table (the transaction carries it). */
  generation?: number;
}

export interface NetworkUpRequest {
  name: string;
  bridge: string;
  /** "02:74:0a:4d:00:01", from the first gateway. */
  mac?: string;
  mtu?: number;
  gateways: readonly { address: IpAddress; prefix: number }[];
  /** enable_icc=false: br_netfilter's switches on. */
  icc: boolean;
  /** tsnet's whole table, from the set of networks with this one. */
  table: TableSpec;
}

/** The operations that bring a network up. Throws nothing: the caller refused what it must first. */
export function planNetworkUp(read: NetworkUpRead, req: NetworkUpRequest): Plan {
  const ops: Op[] = [];
  const { changes } = planTable(read.table, req.table);
  ops.push({ op: "nft-table", spec: req.table, changes, ...(read.generation !== undefined && { generation: read.generation }), why: `tsnet's table ${req.table.family} ${req.table.name} rewritten from the set of networks, ${req.name} in it, in one transaction` });
  if (!req.icc) {
    for (const f of ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"]) {
      ops.push({
        op: "sysctl", key: sysctlKey("net", "bridge", f), value: "1",
        ifMissing: `network ${req.name} has enable_icc=false, which needs the kernel's br_netfilter (/proc/sys/net/bridge/${f} is missing): load it (modprobe br_netfilter)`,
        why: "the forward chain sees what two ports of one bridge send each other (enable_icc=false)",
      });
    }
  }
  // Routing between the bridge and the host's other links (as Docker sets it). IPv6's switch is
  // all/forwarding, which also makes every interface of the host a router: the kernel then
  // ignores router advertisements on interfaces whose accept_ra is 1 (the default), so a host that
  // configures its own IPv6 address or route by SLAAC must set accept_ra=2 on that interface first.
  const dual = req.gateways.some((g) => g.address.family === 6);
  ops.push({ op: "sysctl", key: "net.ipv4.ip_forward", value: "1", why: "the host routes between the bridge and its other links" });
  if (dual) ops.push({ op: "sysctl", key: "net.ipv6.conf.all.forwarding", value: "1", why: "and IPv6 too (a dual-stack network)" });
  if (!read.bridge) {
    ops.push({
      op: "link-add", name: req.bridge, kind: "bridge", up: true, ...(req.mac && { mac: req.mac }), ...(req.mtu !== undefined && { mtu: req.mtu }),
      why: `the bridge ${req.bridge}, up, its containers' veths attach to it`,
    });
  } else if (!read.bridge.up) {
    ops.push({ op: "link-set", dev: req.bridge, up: true, why: `${req.bridge} up again (it was there, down)` });
  }
  if (dual) ops.push({ op: "sysctl", key: sysctlKey("net", "ipv6", "conf", req.bridge, "disable_ipv6"), value: "0", why: `IPv6 on ${req.bridge} (a host whose default is disable_ipv6=1 would refuse the gateway)` });
  for (const g of req.gateways) {
    if (read.bridge?.addresses.some((a) => a.family === g.address.family && a.value === g.address.value)) continue;
    ops.push({ op: "addr-add", dev: req.bridge, address: g.address, prefix: g.prefix, ...(g.address.family === 6 && { nodad: true }), why: `the gateway ${formatIp(g.address)}: with it the bridge is ready` });
  }
  for (const p of read.ports) ops.push({ op: "guard", dev: p, why: `${p} is on the bridge: it has the loopback guard before route_localnet goes on` });
  ops.push({
    op: "sysctl", key: sysctlKey("net", "ipv4", "conf", req.bridge, "route_localnet"), value: "1",
    why: "a published port reached at 127.0.0.1 is routed out through the bridge (safe now that the guards are in place)",
  });
  return { ops };
}

export interface NetworkRmRead {
  /** tsnet's table as read (readTable). */
  table: TableState;
  /** The ruleset generation read before the table. */
  generation?: number;
  /** The link of the bridge's name, if there is one. */
  bridge?: { addresses: readonly IpAddress[] };
}

export interface NetworkRmRequest {
  name: string;
  bridge: string;
  /** tsnet made the bridge (its name is tsnet's, or tsnet marked it made): it goes. */
  madeByTsnet: boolean;
  /** The network's gateways: on a bridge tsnet did not make, they leave it. */
  gateways: readonly { address: IpAddress; prefix: number }[];
  /** tsnet's whole table, from the set of networks without this one. */
  table: TableSpec;
}

/**
 * The operations that remove a network's kernel objects: the rules first (no rule names a bridge
 * that is gone), then the bridge tsnet made, or, on a bridge the host had before (-o
 * com.docker.network.bridge.name), only what the network put on it: its gateway addresses and
 * route_localnet; the bridge stays, as in Docker.
 */
export function planNetworkRm(read: NetworkRmRead, req: NetworkRmRequest): Plan {
  const { changes } = planTable(read.table, req.table);
  const ops: Op[] = [{
    op: "nft-table", spec: req.table, changes, ...(read.generation !== undefined && { generation: read.generation }),
    why: `tsnet's table ${req.table.family} ${req.table.name} rewritten from the set of networks without ${req.name}, in one transaction`,
  }];
  if (!read.bridge) return { ops };
  if (req.madeByTsnet) {
    ops.push({ op: "link-del", dev: req.bridge, ifExists: true, why: `the bridge ${req.bridge} goes (tsnet made it)` });
    return { ops };
  }
  for (const g of req.gateways) {
    if (!read.bridge.addresses.some((a) => a.family === g.address.family && a.value === g.address.value)) continue;
    ops.push({ op: "addr-del", dev: req.bridge, address: g.address, prefix: g.prefix, why: `the gateway ${formatIp(g.address)} leaves ${req.bridge}, a bridge the host had before the network` });
  }
  ops.push({
    op: "sysctl", key: sysctlKey("net", "ipv4", "conf", req.bridge, "route_localnet"), value: "0",
    why: `route_localnet off on ${req.bridge}: the bridge stays, tsnet's guard in its table no longer covers it`,
  });
  return { ops };
}
