// Traffic control over rtnetlink, as much as a guard on a link's ingress needs: the clsact qdisc,
// a cls_bpf filter running a classic BPF program in direct-action mode (its return value is the
// verdict: no action objects, so neither act_gact nor cls_flower is needed), and the list of a
// hook's filters to find one again. tsnet never runs `tc`; these messages are what
// `tc qdisc add dev DEV clsact` and `tc filter add dev DEV ingress ... bpf da bytecode ...` send.
import { NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { Attrs } from "../netlink/reader.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import type { NetlinkWriter } from "../netlink/writer.ts";
import {
  AF_UNSPEC, RTM_GETTFILTER, RTM_NEWQDISC, RTM_NEWTFILTER, TC_H_CLSACT, TC_H_MAKE, TC_H_MIN_INGRESS, TCA_BPF_FLAGS,
  TCA_BPF_OPS, TCA_BPF_OPS_LEN, TCA_KIND, TCA_OPTIONS,
} from "./constants.ts";

/** The operations' names in a KernelError, so a caller can tell which step the kernel refused. */
export const OP_ADD_CLSACT = "add clsact qdisc", OP_ADD_BPF_FILTER = "add bpf filter", OP_REPLACE_BPF_FILTER = "replace bpf filter";

/** The ingress hook of a link's clsact qdisc, as a filter's parent (`tc filter ... ingress`). */
export const CLSACT_INGRESS = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS);

const TCMSG_LEN = 20;

// tcmsg: | family u8 | pad u8 | pad u16 | ifindex i32 | handle u32 | parent u32 | info u32 |
// (host order). A filter's info is (prio << 16) | protocol, the protocol in network order.
function tcmsg(w: NetlinkWriter, ifindex: number, handle: number, parent: number, info: number): void {
  const h = w.struct(TCMSG_LEN);
  const v = w.view;
  v.setUint8(h, AF_UNSPEC);
  v.setInt32(h + 4, ifindex, true);
  v.setUint32(h + 8, handle >>> 0, true);
  v.setUint32(h + 12, parent >>> 0, true);
  v.setUint32(h + 16, info >>> 0, true);
}

/** tcm_info of a filter: its priority and the protocol it sees (host order in, network order out). */
export function filterInfo(prio: number, protocol: number): number {
  return ((prio << 16) | (((protocol & 0xff) << 8) | ((protocol >> 8) & 0xff))) >>> 0;
}

// RTM_NEWQDISC (NLM_F_CREATE | NLM_F_EXCL): tcmsg { handle TC_H_MAKE(TC_H_CLSACT, 0) = ffff:,
// parent TC_H_CLSACT }, TCA_KIND "clsact"
export function encodeClsactAdd(w: NetlinkWriter, seq: number, ifindex: number): number {
  const at = w.begin(RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq);
  tcmsg(w, ifindex, TC_H_MAKE(TC_H_CLSACT, 0), TC_H_CLSACT, 0);
  w.attrStr(TCA_KIND, "clsact");
  w.end(at);
  return at;
}

/**
 * Adds the clsact qdisc to the link (the anchor of its ingress and egress filter hooks, with no
 * queueing of its own). EEXIST when a clsact or ingress qdisc is already there; ENOENT or
 * EOPNOTSUPP when the kernel has no clsact (CONFIG_NET_SCH_INGRESS).
 */
export function clsactAdd(nl: NetlinkSocket, ifindex: number, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = encodeClsactAdd(w, seq, ifindex);
  nl.request(w, { seq, at, op: OP_ADD_CLSACT, object: what });
}

export interface BpfFilter {
  /** The hook (CLSACT_INGRESS). */
  parent: number;
  prio: number;
  /** Host order; ETH_P_ALL for every packet (including VLAN-tagged ones). */
  protocol: number;
  handle: number;
  /** The classic BPF program (struct sock_filter array, as BpfProgram.encode() makes). */
  ops: Uint8Array;
  /** TCA_BPF_FLAG_ACT_DIRECT: the program's return value is the TC_ACT_* verdict. */
  flags: number;
}

// RTM_NEWTFILTER: tcmsg { handle, parent, info (prio << 16) | htons(protocol) },
//   TCA_KIND "bpf",
//   TCA_OPTIONS { TCA_BPF_OPS_LEN u16 (instructions), TCA_BPF_OPS (8 bytes each), TCA_BPF_FLAGS u32 }
// NLM_F_CREATE | NLM_F_EXCL adds; NLM_F_CREATE | NLM_F_REPLACE swaps the program of the filter at
// that handle in one step (the hook is never without it). No TCA_BPF_NAME: cls_bpf keeps a name
// only for eBPF programs and drops it for classic ones (cls_bpf_prog_from_ops).
export function encodeBpfFilterAdd(w: NetlinkWriter, seq: number, ifindex: number, f: BpfFilter, replace: boolean): number {
  if (f.ops.length === 0 || f.ops.length % 8) throw new RangeError(`a classic BPF program is whole 8-byte instructions, not ${f.ops.length} bytes`);
  const at = w.begin(RTM_NEWTFILTER, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL), seq);
  tcmsg(w, ifindex, f.handle, f.parent, filterInfo(f.prio, f.protocol));
  w.attrStr(TCA_KIND, "bpf");
  w.nest(TCA_OPTIONS, () => {
    w.attrU16(TCA_BPF_OPS_LEN, f.ops.length / 8);
    w.attrBytes(TCA_BPF_OPS, f.ops);
    w.attrU32(TCA_BPF_FLAGS, f.flags);
  });
  w.end(at);
  return at;
}

/**
 * Adds (or, with `replace`, swaps in place) a cls_bpf filter running a classic program. ENOENT
 * when the hook has no qdisc, or the kernel no cls_bpf (CONFIG_NET_CLS_BPF); EEXIST when a filter
 * has that handle already (without `replace`).
 */
export function bpfFilterAdd(nl: NetlinkSocket, ifindex: number, f: BpfFilter, replace: boolean, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = encodeBpfFilterAdd(w, seq, ifindex, f, replace);
  nl.request(w, { seq, at, op: replace ? OP_REPLACE_BPF_FILTER : OP_ADD_BPF_FILTER, object: what });
}

/** One filter of a hook, as the kernel dumps it. */
export interface FilterInfo {
  parent: number;
  prio: number;
  /** Host order. */
  protocol: number;
  handle: number;
  kind: string;
  /** For a classic cls_bpf program: its instructions and flags. */
  bpf?: { ops: Uint8Array; flags: number };
}

// RTM_GETTFILTER (NLM_F_DUMP): tcmsg { ifindex, parent }
export function encodeFilterList(w: NetlinkWriter, seq: number, ifindex: number, parent: number): number {
  const at = w.begin(RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, seq);
  tcmsg(w, ifindex, 0, parent, 0);
  w.end(at);
  return at;
}

/** Decodes one RTM_NEWTFILTER message of a dump. */
export function parseFilter(view: DataView): FilterInfo {
  const h = NLMSG_HDRLEN;
  const info = view.getUint32(h + 16, true);
  const a = new Attrs(view, h + TCMSG_LEN);
  const out: FilterInfo = {
    handle: view.getUint32(h + 8, true),
    parent: view.getUint32(h + 12, true),
    prio: info >>> 16,
    protocol: ((info & 0xff) << 8) | ((info >> 8) & 0xff),
    kind: a.str(TCA_KIND) ?? "",
  };
  const opts = out.kind === "bpf" ? a.nested(TCA_OPTIONS) : undefined;
  const ops = opts?.bytes(TCA_BPF_OPS);
  if (opts && ops) out.bpf = { ops, flags: opts.u32(TCA_BPF_FLAGS) ?? 0 };
  return out;
}

/**
 * The filters on one hook of the link (none when it has no qdisc there). The kernel also lists
 * each priority's classifier itself, with handle 0 and no options: those are left out.
 */
export function filterList(nl: NetlinkSocket, ifindex: number, parent: number, what: string): FilterInfo[] {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = encodeFilterList(w, seq, ifindex, parent);
  const out: FilterInfo[] = [];
  nl.dump(w, { seq, at, op: "list tc filters", object: what }, (m) => {
    if (m.type !== RTM_NEWTFILTER) return;
    const f = parseFilter(m.view);
    if (f.handle !== 0) out.push(f);
  });
  return out;
}
