// The loopback guard on each container's way into the host (CVE-2020-8558). route_localnet,
// which a published port reached at 127.0.0.1 needs on the bridge, also lets the host route
// packets for 127.0.0.0/8 that come in from the bridge: a container that sends one to its
// gateway's MAC would reach the host's loopback-only services. nf_tables' raw-prerouting guard
// (src/nat/ruleset.ts) drops them, but `nft flush ruleset` removes it, and on a host with only
// CNI attachments no tsnet process is there to notice. This guard does not live in nf_tables: a
// classic BPF program in a cls_bpf filter, direct action, on the clsact ingress hook of the host
// end of each container's veth. Every frame a container sends passes there first, before the
// bridge and before any netfilter hook; no process keeps it, and it goes with the veth.
//
// Why the veth and not the bridge device: with br_netfilter (bridge-nf-call-iptables, the
// default), the bridge runs the IPv4 prerouting hooks, conntrack's NAT among them, on the port,
// before passing a frame up to the bridge device. The reply to a connection the host made to a
// published port at 127.0.0.1 has then already been translated back to 127.0.0.1 when it reaches
// the bridge's own ingress: a guard there drops it (seen: curl 127.0.0.1:PORT timed out). At the
// veth's ingress nothing has been translated yet, so the reply is for the gateway's address and
// only a packet the container itself addressed to 127.0.0.0/8 matches.
import { KernelError } from "../errors/errors.ts";
import { EEXIST, ENODEV, ENOENT, EOPNOTSUPP } from "../errors/errno.ts";
import { warn } from "../errors/notice.ts";
import {
  BPF_ABS, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JEQ, BPF_K, BPF_LD, BPF_LDX, BPF_W, BpfProgram, SKF_AD_OFF, SKF_AD_PROTOCOL,
} from "../netlink/bpf.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import {
  ETH_P_8021AD, ETH_P_8021Q, ETH_P_ALL, ETH_P_IP, ETH_P_IPV6, TC_ACT_SHOT, TC_ACT_UNSPEC, TCA_BPF_FLAG_ACT_DIRECT,
} from "../rtnetlink/constants.ts";
import { linkList } from "../rtnetlink/link.ts";
import {
  bpfFilterAdd, clsactAdd, CLSACT_INGRESS, filterList, OP_ADD_BPF_FILTER, OP_ADD_CLSACT, OP_REPLACE_BPF_FILTER, type BpfFilter,
  type FilterInfo,
} from "../rtnetlink/tc.ts";

/** The first priority: the guard runs before any filter an administrator adds to the link. */
export const GUARD_PRIO = 1;
/** "tsnt": tsnet's filter at GUARD_PRIO is the one with this handle (and the guard's program). */
export const GUARD_HANDLE = 0x74736e74;

const ETH_HLEN = 14, VLAN_HLEN = 4;
/** IPv4 header: the destination address's first byte. */
const IPV4_DADDR = 16;
/** IPv6 header: the destination address's offset. */
const IPV6_DADDR = 24;
const IN_LOOPBACKNET = 127;
/** VLAN tags still in the frame's data that the program looks through; a deeper one is dropped. */
const MAX_TAGS = 2;

/**
 * The program. At tc ingress cls_bpf runs it with the MAC header pushed back (offset 0 is the
 * Ethernet header) and absolute loads read through non-linear data (skb_copy_bits), so the
 * offsets are from the frame's start. skb->protocol (SKF_AD_PROTOCOL) is what the kernel goes
 * by: by the time the filter runs it has moved the outer VLAN tag into the skb's metadata, and
 * later, on the bridge, it strips further tags of VLAN 0 from the data and still delivers the
 * packet to IP (seen: a SYN under four such tags was answered), so the program looks through the
 * tags left in the data too:
 *
 *   A = skb->protocol; X = 14 (the network header)
 *   level n (0..MAX_TAGS): A == ETH_P_IP -> ipv4
 *                          A == 802.1Q or 802.1ad -> A = ethertype after the tag at X; X += 4;
 *                                                    next level (past MAX_TAGS: drop)
 *                          else -> pass
 *   level n also:          A == ETH_P_IPV6 -> ipv6
 *   ipv4: byte at X + 16 (the destination's first byte) == 127 -> drop, else pass
 *   ipv6: the 4 words at X + 24 (the destination) == 0, 0, 0, 1 (::1) -> drop, else pass
 *   drop: TC_ACT_SHOT;  pass: TC_ACT_UNSPEC (no verdict: later filters, then the stack, decide)
 *
 * The kernel drops a packet for ::1 from any link but lo in IPv6 input, but the bridge's
 * prerouting hooks (br_netfilter) run before that, and NAT there could rewrite it first: the
 * guard drops it where the container sends it.
 */
export function loopbackGuardProgram(): Uint8Array {
  const p = new BpfProgram();
  p.op(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL);
  p.op(BPF_LDX | BPF_W | BPF_IMM, ETH_HLEN);
  for (let level = 0; level <= MAX_TAGS; level++) {
    const deeper = level < MAX_TAGS ? `tag${level}` : "drop";
    p.jump(BPF_JEQ | BPF_K, ETH_P_IP, "ipv4", undefined);
    p.jump(BPF_JEQ | BPF_K, ETH_P_IPV6, "ipv6", undefined);
    p.jump(BPF_JEQ | BPF_K, ETH_P_8021Q, deeper, undefined);
    p.jump(BPF_JEQ | BPF_K, ETH_P_8021AD, deeper, "pass");
    if (level === MAX_TAGS) break;
    // struct vlan_hdr at X: | TCI u16 | encapsulated ethertype u16 |
    p.label(`tag${level}`);
    p.op(BPF_LD | BPF_H | BPF_IND, 2);
    p.op(BPF_LDX | BPF_W | BPF_IMM, ETH_HLEN + VLAN_HLEN * (level + 1));
  }
  p.label("ipv4");
  p.op(BPF_LD | BPF_B | BPF_IND, IPV4_DADDR);
  p.jump(BPF_JEQ | BPF_K, IN_LOOPBACKNET, "drop", "pass");
  // struct ipv6hdr: the destination is 16 bytes at offset 24, read as four big-endian words.
  p.label("ipv6");
  for (let i = 0; i < 4; i++) {
    p.op(BPF_LD | BPF_W | BPF_IND, IPV6_DADDR + 4 * i);
    p.jump(BPF_JEQ | BPF_K, i === 3 ? 1 : 0, i === 3 ? "drop" : undefined, "pass");
  }
  p.label("drop").ret(TC_ACT_SHOT);
  p.label("pass").ret(TC_ACT_UNSPEC);
  return p.encode();
}

/** The filter as tsnet adds it to a link. */
export function loopbackGuardFilter(): BpfFilter {
  return {
    parent: CLSACT_INGRESS,
    prio: GUARD_PRIO,
    // Every protocol: a filter for ETH_P_IP alone would not see a VLAN-tagged frame.
    protocol: ETH_P_ALL,
    handle: GUARD_HANDLE,
    ops: loopbackGuardProgram(),
    flags: TCA_BPF_FLAG_ACT_DIRECT,
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Whether a dumped filter is the guard, whole: the handle, protocol, program and direct action. */
export function isLoopbackGuard(f: FilterInfo, want = loopbackGuardFilter()): boolean {
  return f.kind === "bpf" && f.prio === want.prio && f.handle === want.handle && f.protocol === want.protocol &&
    f.bpf !== undefined && sameBytes(f.bpf.ops, want.ops) && (f.bpf.flags & TCA_BPF_FLAG_ACT_DIRECT) !== 0;
}

/**
 * What the kernel lacks, from a failed step: ENOENT or EOPNOTSUPP adding the qdisc (no clsact) or
 * the filter (no cls_bpf). Undefined for any other failure, which is an error.
 */
export function missingFeature(e: unknown): string | undefined {
  if (!(e instanceof KernelError) || (e.errno !== ENOENT && e.errno !== EOPNOTSUPP)) return undefined;
  if (e.op === OP_ADD_CLSACT) return "no clsact qdisc (CONFIG_NET_SCH_INGRESS)";
  if (e.op === OP_ADD_BPF_FILTER || e.op === OP_REPLACE_BPF_FILTER) return "no cls_bpf classifier (CONFIG_NET_CLS_BPF)";
  return undefined;
}

const warned = new Set<string>();

/** The kernel cannot carry the guard: one warning per process, and the caller goes on without it. */
function unguarded(e: unknown, link: string): false {
  const missing = missingFeature(e);
  if (!missing) throw e;
  if (!warned.has(missing)) {
    warned.add(missing);
    warn(`the kernel has ${missing}: no loopback guard on ${link}, so while route_localnet is on, only nf_tables' guard (which a ruleset flush removes) keeps containers from the host's 127.0.0.1`);
  }
  return false;
}

/**
 * Puts the guard on a link just made (a container's veth, before its other end is up): the
 * clsact qdisc and the filter, in one round trip. Another tsnet's check of the bridge's veths
 * (guardBridgePorts, in a restore) may have got there first: EEXIST, and then the guard is checked
 * as on any other veth. Returns false, with a one-line warning per process, when the kernel has
 * no clsact or no cls_bpf: then only nf_tables' guard protects, as before this guard existed.
 */
export function addLoopbackGuard(nl: NetlinkSocket, ifindex: number, link: string): boolean {
  try {
    nl.batch(() => {
      clsactAdd(nl, ifindex, link);
      bpfFilterAdd(nl, ifindex, loopbackGuardFilter(), false, `loopback guard on ${link}`);
    });
    return true;
  } catch (e) {
    if (e instanceof KernelError && e.errno === EEXIST) return ensureLoopbackGuard(nl, ifindex, link);
    return unguarded(e, link);
  }
}

/**
 * Makes sure a link that may carry it already has the guard, exactly once: the guard found whole
 * is left alone; another program at its handle (an older tsnet's, or tampering) is replaced in one
 * step; otherwise the qdisc (unless one is there) and the filter are added. A concurrent tsnet
 * adding it too gets EEXIST for the same handle: never two. False as addLoopbackGuard.
 */
export function ensureLoopbackGuard(nl: NetlinkSocket, ifindex: number, link: string): boolean {
  const want = loopbackGuardFilter();
  const at = filterList(nl, ifindex, CLSACT_INGRESS, link).filter((f) => f.prio === want.prio && f.handle === want.handle);
  if (at.some((f) => isLoopbackGuard(f, want))) return true;
  try {
    if (!at.length) {
      try {
        clsactAdd(nl, ifindex, link);
      } catch (e) {
        // A clsact (or ingress) qdisc is already there: its ingress hook is the one wanted.
        if (!(e instanceof KernelError && e.errno === EEXIST)) throw e;
      }
    }
    try {
      bpfFilterAdd(nl, ifindex, want, at.length > 0, `loopback guard on ${link}`);
    } catch (e) {
      if (!(e instanceof KernelError && e.errno === EEXIST)) throw e;
    }
    return true;
  } catch (e) {
    return unguarded(e, link);
  }
}

/**
 * The guard on every veth attached to the bridge (the way containers, run or CNI, come in): what
 * is checked before route_localnet goes on. One dump of the links, then one of each port's
 * ingress filters. False when the kernel cannot carry the guard.
 */
export function guardBridgePorts(nl: NetlinkSocket, bridgeIndex: number): boolean {
  let all = true;
  for (const port of linkList(nl)) {
    if (port.master !== bridgeIndex || port.kind !== "veth") continue;
    try {
      if (!ensureLoopbackGuard(nl, port.index, port.name)) all = false;
    } catch (e) {
      // A container that ended meanwhile: its veth is gone, and its way in with it.
      if (!(e instanceof KernelError && e.errno === ENODEV)) throw e;
    }
  }
  return all;
}
