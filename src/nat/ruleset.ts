// tsnet's one nf_tables table: published ports (Docker's `-p`), outbound masquerade, and the
// guards and isolation between networks, derived from the set of networks.
//
// table inet tsnet — inet rather than ip: one table (and one transaction) can later carry IPv6
// maps and rules beside the IPv4 ones; the price is that every IPv4 header match is preceded by
// `meta nfproto ipv4` and NAT names its family (`dnat ip to`), both of which nft prints back as
// plain `ip ...` syntax.
//
//   map ports        { type inet_proto . inet_service : ipv4_addr . inet_service }
//   map hostip_ports { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//   map ports6        { type inet_proto . inet_service : ipv6_addr . inet_service }
//   map hostip_ports6 { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service }
//   set bridges      { type ifname }            every tsnet bridge
//   set internal     { type ifname }            bridges of --internal networks
//   set same_bridge  { type ifname . ifname }   "br . br" for each bridge
//   chain guard      { type filter hook prerouting priority raw
//                      iifname != "lo" ip daddr 127.0.0.0/8 counter drop
//                      iifname != "lo" ip6 daddr ::1 counter drop }
//   chain direct     { type filter hook prerouting priority mangle (after conntrack, before DNAT)
//                      per subnet: ip daddr <subnet> iifname != @bridges fib daddr type != local
//                                  ct state != established,related counter drop
//                                  (ip6 daddr for an IPv6 subnet) }
//   chain prerouting { type nat hook prerouting priority dstnat
//                      dnat ip to ip daddr . meta l4proto . th dport map @hostip_ports
//                      fib daddr type local dnat ip to meta l4proto . th dport map @ports
//                      dnat ip6 to ip6 daddr . meta l4proto . th dport map @hostip_ports6
//                      ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6 }
//   chain output     { type nat hook output priority dstnat — the same two rules }
//   chain forward    { type filter hook forward priority filter
//                      iifname @internal iifname . oifname != @same_bridge counter drop
//                      oifname @internal iifname . oifname != @same_bridge counter drop
//                      ct status dnat accept
//                      per network with icc false: iifname <bridge> oifname <bridge> counter drop
//                      iifname @bridges oifname @bridges iifname . oifname != @same_bridge counter drop }
//   chain postrouting { type nat hook postrouting priority srcnat
//                      per subnet: ip saddr <subnet> oifname != <bridge> masquerade (not internal,
//                                  not ipMasq false; ip6 saddr for an IPv6 subnet: NAT66)
//                      per subnet: ct status dnat ip saddr <subnet> oifname <bridge> masquerade
//                                  (not internal, not hairpin false; ip6 likewise)
//                      ip saddr 127.0.0.0/8 oifname @bridges masquerade }
//
// Why each piece:
// - output: connections the host itself opens never pass prerouting.
// - Localhost (127.0.0.1:port) works because each bridge has route_localnet=1 (the network layer
//   sets it) and the 127.0.0.0/8 source is masqueraded as it leaves by a bridge: the container
//   could not answer 127.0.0.1.
// - guard, loopback: a neighbour can send packets for 127.0.0.1 (or any 127.x) to the host;
//   prerouting DNATs them into a container before routing could call them martians, so ports
//   published on loopback only, or on all addresses, would be reached that way (measured: it
//   works without the guard, whether or not route_localnet is set). At raw priority, before any
//   DNAT, packets for 127.0.0.0/8 that did not come in on lo are dropped. Containers' own such
//   packets are also dropped on their veth (src/network/guard.ts), a guard no flush removes.
// - guard, direct access: a LAN neighbour that routes a container subnet via this host would
//   otherwise reach every container port, published or not (Docker's "DROP DIRECT ACCESS").
//   Published ports are untouched: at raw priority their destination is still a host address.
//   So is each bridge's gateway address, which lies in the subnet but is the host's own (`fib
//   daddr type != local`): a LAN host reaching a published port (or any host service) at a
//   gateway address is answered like at any other host address.
//   Packets from tsnet bridges pass on to the forward chain, which isolates networks. Answers to
//   connections the containers opened pass: with masquerade off (enable_ip_masquerade=false,
//   CNI ipMasq false) they come back to the container's own address, which is why this guard
//   sits after conntrack (mangle priority), where `ct state` is known, and not at raw.
// - IPv6 (dual-stack networks): the same guards, masquerade (NAT66, as Docker 27 does by
//   default) and hairpin, matched on ip6 headers; the forward chain matches interface names only,
//   so isolation and --internal hold for both families as they are. The ::1 guard is defence in
//   depth: the kernel itself drops a packet for ::1 that did not come in on lo (RFC 4291), but
//   only once it reaches IPv6 input, after the bridge's prerouting hooks have run.
// - forward: isolation needs only the three sets, whatever the number of networks (no rule per
//   pair of networks). With br_netfilter a packet between two ports of one bridge passes the
//   forward hook with iifname and oifname both the bridge, which is what same_bridge matches.
//   A DNAT-ed connection (a published port) is let through first: published ports answer from
//   every network, as in Docker.
// - icc false (Docker's enable_icc=false): two containers of one bridge talk through the bridge,
//   which br_netfilter hands to the forward hook with both names the bridge; a published port,
//   DNAT-ed, is accepted before that drop, as Docker accepts it before its icc rule.
// - IPv6: a port is published in the maps of its host address's family and aimed at the
//   container's address of that family (nf_tables has no NAT between families). ::1 is left
//   out: IPv6 has no route_localnet, and br_netfilter de-NATs a reply back to ::1 at the bridge,
//   before IPv6 input drops any packet for ::1 that arrived on an interface other than lo
//   (see ARCHITECTURE.md, "IPv6"). Connections to [::1]:PORT are relayed by the process holding the port
//   instead (src/network/loopback6.ts), so the every-address rule must not DNAT them.
// - hairpin: a container reaching a published port of its own bridge is DNATed back onto the
//   bridge; without masquerade the answer would go straight back and never match.
// - masquerade is per network and by source subnet, because postrouting knows no input
//   interface; an internal network has none.
import { formatIp, ipBytes, parsePrefix, toV4, type IpPrefix } from "../ip/addr.ts";
import { parseCidr, type Cidr } from "../ip/ipv4.ts";
import { LOOPBACK_V6, formatHostPort, isAnyAddress, type AimedPort } from "../ip/port.ts";
import {
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPS_DST_NAT,
  NF_IP_PRI_NAT_DST,
  NF_IP_PRI_NAT_SRC,
  NF_IP_PRI_FILTER,
  NF_IP_PRI_MANGLE,
  NF_IP_PRI_RAW,
  NF_CT_STATE_ESTABLISHED_BIT,
  NF_CT_STATE_RELATED_BIT,
  NFPROTO_IPV4,
  NFPROTO_IPV6,
  NFT_CMP_NEQ,
  NFT_NAT_DNAT,
  NFTNL_UDATA_COMMENT_MAXLEN,
  RTN_LOCAL,
} from "../nftables/constants.ts";
import { padded, reg32, type Expr } from "../nftables/expr/expr.ts";
import { counter } from "../nftables/expr/counter.ts";
import { accept, drop } from "../nftables/expr/immediate.ts";
import { lookup } from "../nftables/expr/lookup.ts";
import { concat, ctStateNone, ctStatusAny, fibDaddrType, fields, iifname, inSet, ip6Daddr, ip6Prefix, ipPrefix, oifname, type Field } from "../nftables/expr/match.ts";
import { masquerade, nat } from "../nftables/expr/nat.ts";
import type { TableSpec, ElementAdd } from "../nftables/ensure.ts";
import type { RuleSpec } from "../nftables/rule.ts";
import type { SetElement } from "../nftables/set.ts";
import { concatValue, ifname, inet_proto, inet_service, ipv4_addr, ipv6_addr, value } from "../nftables/types.ts";

export const PORTS_MAP = "ports";
export const HOSTIP_PORTS_MAP = "hostip_ports";
export const PORTS6_MAP = "ports6";
export const HOSTIP_PORTS6_MAP = "hostip_ports6";
export const PORT_SETS = [PORTS_MAP, HOSTIP_PORTS_MAP, PORTS6_MAP, HOSTIP_PORTS6_MAP] as const;
export type PortMap = (typeof PORT_SETS)[number];

/** Which map holds a port: by its host address's family, and whether it is every address. */
export function mapOf(family: 4 | 6, everyAddress: boolean): PortMap {
  if (family === 4) return everyAddress ? PORTS_MAP : HOSTIP_PORTS_MAP;
  return everyAddress ? PORTS6_MAP : HOSTIP_PORTS6_MAP;
}

/** The family of a map's addresses, and whether its key starts with the host address. */
export function mapLayout(set: string): { family: 4 | 6; keyed: boolean } {
  return { family: set === PORTS6_MAP || set === HOSTIP_PORTS6_MAP ? 6 : 4, keyed: set === HOSTIP_PORTS_MAP || set === HOSTIP_PORTS6_MAP };
}

/** What the ruleset needs to know of one bridge network. */
export interface NatNetwork {
  name: string;
  bridge: string;
  /** Its IPv4 subnets. */
  subnets: readonly Cidr[];
  /** Its IPv6 subnets (a dual-stack network's): the same rules, on ip6 headers. */
  subnets6?: readonly IpPrefix[];
  internal: boolean;
  /** Masquerade what its containers send out of the host (CNI ipMasq); true when absent. */
  masquerade?: boolean;
  /** Masquerade a container reaching a published port over its own bridge; true when absent. */
  hairpin?: boolean;
  /** false (enable_icc=false): its containers cannot reach each other; true when absent. */
  icc?: boolean;
}

export interface NatTableOptions {
  /** Table name (family inet); "tsnet" unless a test wants its own. */
  table?: string;
  /** Every bridge network tsnet knows; the whole ruleset is derived from this list. */
  networks: readonly NatNetwork[];
}

/**
 * `dnat ip to <key> map @<set>` (ip6 for family 6) for a map whose data is ipvN_addr .
 * inet_service: the key is loaded from register 0 on, the lookup writes the data over it
 * (address from 32-bit register 0, port in the one after it), and nat takes them from there.
 */
export function dnatMap(key: readonly Field[], set: string, family: 4 | 6 = 4): Expr[] {
  const k = concat(key);
  const addr = reg32(0);
  const port = reg32(padded((family === 4 ? ipv4_addr : ipv6_addr).len) / 4);
  return [...k.exprs, lookup({ set, sreg: k.reg, dreg: addr }), nat({ type: NFT_NAT_DNAT, family: family === 4 ? NFPROTO_IPV4 : NFPROTO_IPV6, addr, proto: port })];
}

export const BRIDGES_SET = "bridges";
/** The raw-priority chain, and the comment of its rule that makes route_localnet safe (see above). */
export const GUARD_CHAIN = "guard";
/** The chain of the direct-access guard (after conntrack: answers to the containers pass). */
export const DIRECT_CHAIN = "direct";
export const LOOPBACK_GUARD = "tsnet: 127.0.0.0/8 only from lo (route_localnet)";
export const LOOPBACK6_GUARD = "tsnet: ::1 only from lo";
export const INTERNAL_SET = "internal";
export const SAME_BRIDGE_SET = "same_bridge";

const LOOPBACK: Cidr = parseCidr("127.0.0.0/8")!;
const LOOPBACK6: IpPrefix = parsePrefix("::1/128")!;

/**
 * tsnet's whole table, derived from the set of networks: adding or removing a network changes
 * its own rules and set elements and nothing else, and two networks can never rewrite each
 * other's rules (each rule and element is computed from the same list under one lock).
 */
export function natTable(o: NatTableOptions): TableSpec {
  const dnatRules: RuleSpec[] = [
    {
      exprs: dnatMap([fields.ipDaddr, fields.l4proto, fields.thDport], HOSTIP_PORTS_MAP),
      comment: "tsnet: ports published on one host address",
    },
    {
      exprs: [...fibDaddrType(RTN_LOCAL), ...dnatMap([fields.l4proto, fields.thDport], PORTS_MAP)],
      comment: "tsnet: ports published on every host address",
    },
    {
      exprs: dnatMap([fields.ip6Daddr, fields.l4proto, fields.thDport], HOSTIP_PORTS6_MAP, 6),
      comment: "tsnet: ports published on one host IPv6 address",
    },
    {
      exprs: [...ip6Daddr(ipBytes(LOOPBACK_V6), NFT_CMP_NEQ), ...fibDaddrType(RTN_LOCAL), ...dnatMap([fields.l4proto, fields.thDport], PORTS6_MAP, 6)],
      comment: "tsnet: ports published on every host IPv6 address (::1 is relayed)",
    },
  ];
  const nets = [...o.networks].sort((a, b) => a.bridge.localeCompare(b.bridge));
  const pair = [fields.iifname, fields.oifname];
  const guard: RuleSpec[] = [
    {
      // The counter shows attempts in `nft list ruleset`.
      exprs: [...iifname("lo", NFT_CMP_NEQ), ...ipPrefix("daddr", LOOPBACK.net, LOOPBACK.prefix), counter(), drop()],
      comment: LOOPBACK_GUARD,
    },
    {
      exprs: [...iifname("lo", NFT_CMP_NEQ), ...ip6Prefix("daddr", LOOPBACK6), counter(), drop()],
      comment: LOOPBACK6_GUARD,
    },
  ];
  const direct: RuleSpec[] = [];
  const masq: RuleSpec[] = [];
  for (const n of nets) {
    // Both families alike: the match on the subnet is the only difference.
    const matches = [
      ...n.subnets.map((sub) => ({ v6: false, match: (f: "saddr" | "daddr") => ipPrefix(f, sub.net, sub.prefix) })),
      ...(n.subnets6 ?? []).map((sub) => ({ v6: true, match: (f: "saddr" | "daddr") => ip6Prefix(f, sub) })),
    ];
    for (const { v6, match } of matches) {
      const ip = v6 ? " (IPv6)" : "";
      // From another tsnet bridge the forward chain decides (isolation, published ports); the
      // host's own addresses in the subnet (the gateway) are host addresses like any other.
      direct.push({
        exprs: [
          ...match("daddr"), ...inSet([fields.iifname], BRIDGES_SET, true), ...fibDaddrType(RTN_LOCAL, NFT_CMP_NEQ),
          ...ctStateNone(NF_CT_STATE_ESTABLISHED_BIT | NF_CT_STATE_RELATED_BIT), counter(), drop(),
        ],
        comment: `tsnet: ${n.name}: no direct access from outside${ip}`,
      });
      // An internal network has neither a way out nor published ports.
      if (n.internal) continue;
      if (n.masquerade !== false) {
        masq.push({
          exprs: [...match("saddr"), ...oifname(n.bridge, NFT_CMP_NEQ), masquerade()],
          comment: `tsnet: ${n.name}: containers reach out as the host${ip}`,
        });
      }
      if (n.hairpin === false) continue;
      masq.push({
        exprs: [...ctStatusAny(IPS_DST_NAT), ...match("saddr"), ...oifname(n.bridge), masquerade()],
        comment: `tsnet: ${n.name}: hairpin, a container reaching a published port${ip}`,
      });
    }
  }
  masq.push({
    exprs: [...ipPrefix("saddr", LOOPBACK.net, LOOPBACK.prefix), ...inSet([fields.oifname], BRIDGES_SET), masquerade()],
    comment: "tsnet: localhost reaching a published port",
  });
  return {
    family: "inet",
    name: o.table ?? "tsnet",
    sets: [
      { name: PORTS_MAP, key: [inet_proto, inet_service], data: [ipv4_addr, inet_service] },
      { name: HOSTIP_PORTS_MAP, key: [ipv4_addr, inet_proto, inet_service], data: [ipv4_addr, inet_service] },
      { name: PORTS6_MAP, key: [inet_proto, inet_service], data: [ipv6_addr, inet_service] },
      { name: HOSTIP_PORTS6_MAP, key: [ipv6_addr, inet_proto, inet_service], data: [ipv6_addr, inet_service] },
      { name: BRIDGES_SET, key: [ifname], elements: nets.map((n) => ({ key: value.ifname(n.bridge) })) },
      { name: INTERNAL_SET, key: [ifname], elements: nets.filter((n) => n.internal).map((n) => ({ key: value.ifname(n.bridge) })) },
      {
        name: SAME_BRIDGE_SET,
        key: [ifname, ifname],
        elements: nets.map((n) => ({ key: concatValue([value.ifname(n.bridge), value.ifname(n.bridge)]) })),
      },
    ],
    chains: [
      { name: GUARD_CHAIN, base: { type: "filter", hook: "prerouting", priority: NF_IP_PRI_RAW }, rules: guard },
      { name: DIRECT_CHAIN, base: { type: "filter", hook: "prerouting", priority: NF_IP_PRI_MANGLE }, rules: direct },
      { name: "prerouting", base: { type: "nat", hook: "prerouting", priority: NF_IP_PRI_NAT_DST }, rules: dnatRules },
      { name: "output", base: { type: "nat", hook: "output", priority: NF_IP_PRI_NAT_DST }, rules: dnatRules },
      {
        name: "forward",
        base: { type: "filter", hook: "forward", priority: NF_IP_PRI_FILTER },
        rules: [
          {
            exprs: [...inSet([fields.iifname], INTERNAL_SET), ...inSet(pair, SAME_BRIDGE_SET, true), counter(), drop()],
            comment: "tsnet: an internal network has no way out",
          },
          {
            exprs: [...inSet([fields.oifname], INTERNAL_SET), ...inSet(pair, SAME_BRIDGE_SET, true), counter(), drop()],
            comment: "tsnet: and no way in",
          },
          { exprs: [...ctStatusAny(IPS_DST_NAT), accept()], comment: "tsnet: published ports are reachable from every network" },
          // After the DNAT accept: a published port still answers a neighbour on the same bridge.
          ...nets.filter((n) => n.icc === false).map((n) => ({
            exprs: [...iifname(n.bridge), ...oifname(n.bridge), counter(), drop()],
            comment: `tsnet: ${n.name}: containers cannot reach each other (enable_icc=false)`,
          })),
          {
            exprs: [...inSet([fields.iifname], BRIDGES_SET), ...inSet([fields.oifname], BRIDGES_SET), ...inSet(pair, SAME_BRIDGE_SET, true), counter(), drop()],
            comment: "tsnet: networks are isolated from each other",
          },
        ],
      },
      { name: "postrouting", base: { type: "nat", hook: "postrouting", priority: NF_IP_PRI_NAT_SRC }, rules: masq },
    ],
  };
}

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`${what} ${p} is not a port`);
  return p;
}

function addressValue(a: AimedPort["hostIp"]): Uint8Array {
  return a.family === 4 ? value.ipv4(toV4(a)) : value.ipv6(ipBytes(a));
}

/**
 * An element's comment: the owner, its name and the protocol, then where the port leads unless
 * that would pass nft's limit (NFTNL_UDATA_COMMENT_MAXLEN with the NUL; a 63-character name
 * publishing one long IPv6 address on another does): the element's key and data say it anyway.
 */
function portComment(who: string, route: string): string {
  const full = `${who} ${route}`;
  return new TextEncoder().encode(full).length < NFTNL_UDATA_COMMENT_MAXLEN ? full : who;
}

/**
 * Map elements for an owner's published ports, each commented "<owner> <name> <proto>
 * <host> -> <container>" (see portComment) so `nft list ruleset` says whose they are and
 * deleteTagged(owner) removes exactly them. Each goes to the map of its host address's family; its container
 * address must be of the same family.
 */
export function portElements(owner: string, name: string, ports: readonly AimedPort[]): ElementAdd[] {
  if (!/^\S+$/.test(owner)) throw new RangeError(`owner tag "${owner}" must be one word`);
  // A CNI runtime's interface name may hold any character the kernel allows in one, '"' and '\\'
  // and control characters included: nft can neither quote those (`nft list ruleset` would print
  // a comment `nft -f` cannot read back) nor should a terminal get them raw.
  const label = name.replace(/["\\\x00-\x1f\x7f]/g, "?");
  const bySet = new Map<PortMap, SetElement[]>();
  for (const p of ports) {
    if (p.containerIp.family !== p.hostIp.family) throw new RangeError(`host address ${formatIp(p.hostIp)} and container address ${formatIp(p.containerIp)} differ in family`);
    const proto = value.proto(p.proto === "tcp" ? IPPROTO_TCP : IPPROTO_UDP);
    const hport = value.port(checkPort(p.hostPort, "host port"));
    const data = concatValue([addressValue(p.containerIp), value.port(checkPort(p.containerPort, "container port"))]);
    const every = isAnyAddress(p.hostIp);
    const host = every ? `${p.hostPort}` : formatHostPort(p.hostIp, p.hostPort);
    const comment = portComment(`${owner} ${label} ${p.proto}`, `${host} -> ${formatHostPort(p.containerIp, p.containerPort)}`);
    const set = mapOf(p.hostIp.family, every);
    const key = every ? concatValue([proto, hport]) : concatValue([addressValue(p.hostIp), proto, hport]);
    let list = bySet.get(set);
    if (!list) bySet.set(set, (list = []));
    list.push({ key, data, comment });
  }
  return PORT_SETS.filter((set) => bySet.has(set)).map((set) => ({ set, elements: bySet.get(set)! }));
}
