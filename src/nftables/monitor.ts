// What `nft monitor` reads: nf_tables announces every committed change on the NFNLGRP_NFTABLES
// group of NETLINK_NETFILTER, one message per object added or deleted, then NFT_MSG_NEWGEN for
// the transaction. `nft flush ruleset` arrives as table deletions (with the chains' before
// them); deleting an element arrives as NFT_MSG_DELSETELEM naming its key.
//
// Notification: | nlmsghdr type (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*), pid = port id of the
//   socket whose batch caused it | nfgenmsg family | attributes of the object, the table's name
//   first-numbered in every kind: NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE,
//   NFTA_SET_TABLE and NFTA_SET_ELEM_LIST_TABLE are all type 1, and the kernel puts it first |
import { NETLINK_NETFILTER, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { watchSocket, type Watch } from "../netlink/watch.ts";
import {
  BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH,
  BPF_MEM, BPF_OR, BPF_ST, BPF_W, BPF_X, BpfProgram,
} from "../netlink/bpf.ts";
import {
  NFNL_SUBSYS_NFTABLES, NFNLGRP_NFTABLES, NFT_MSG_DELSETELEM, NFT_MSG_NEWGEN, NFT_MSG_NEWSETELEM, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE,
} from "./constants.ts";
import { NFT_ATTRS } from "./nfnl.ts";
import { attrList, attrString } from "./schema.ts";
import { elementsOf, type SetElement } from "./set.ts";

/**
 * One announcement. The kind, family, table and port id are read at once; the set and elements
 * only when asked for (most announcements are looked at and dropped), and only while the
 * handler that received them runs.
 */
export class NftEvent {
  constructor(
    /** NFT_MSG_NEWTABLE, NFT_MSG_DELRULE, ... */
    readonly msg: number,
    /** NFPROTO_* of the table. */
    readonly family: number,
    readonly table: string | undefined,
    /** Port id of the socket whose transaction caused it (0 for the kernel itself). */
    readonly portid: number,
    private readonly view: DataView,
  ) {}

  /** For element events: the set. */
  get set(): string | undefined {
    if (this.msg !== NFT_MSG_NEWSETELEM && this.msg !== NFT_MSG_DELSETELEM) return undefined;
    const a = attrList(this.view, NFT_ATTRS).find((x) => x.type === NFTA_SET_ELEM_LIST_SET);
    return a && attrString(a.value);
  }

  /** For element events: the elements added or deleted. */
  get elements(): SetElement[] | undefined {
    if (this.msg !== NFT_MSG_NEWSETELEM && this.msg !== NFT_MSG_DELSETELEM) return undefined;
    return elementsOf(this.view);
  }
}

/** Which announcements reach the reader; the kernel drops the rest without waking it. */
export interface NftWatchFilter {
  /** Only those about this table (NFPROTO_* family and name). */
  family: number;
  table: string;
  /** Only these kinds (NFT_MSG_*). */
  msgs: readonly number[];
}

// How many messages of one datagram the filter looks at. nf_tables puts the announcements of one
// transaction into as few datagrams as fit; a datagram with more messages than this is let
// through whole, for the reader to sort out. Other programs' everyday commits (an element, a
// rule) are one message; a flush of many tables may pass, which is rare and harmless.
const FILTER_MESSAGES = 8;

/**
 * A classic BPF program passing a datagram if any of its first FILTER_MESSAGES messages matches
 * `f`, or if it has more, or one it cannot read whole: it may only ever let too much through.
 * Netlink headers are host order, and both targets (x86-64, arm64) are little-endian, so a u16
 * field's low byte comes first.
 *
 *   per message, at offset `off` (scratch M[1]; the datagram's length in M[0]):
 *     off >= len                      -> drop (every message looked at)
 *     off + head > len                -> pass (cannot look at it)
 *     byte 5 (subsystem) == 10, byte 4 (NFT_MSG_*) in msgs, byte 16 (nfgen_family) == family,
 *     bytes 20.. (first attribute) == | nla_len = 5 + name | type 1 | name NUL |  -> pass
 *     else off += NLMSG_ALIGN(nlmsg_len)  (nlmsg_len < 16 or >= 64 KiB -> pass)
 */
export function nftFilterProgram(f: NftWatchFilter): Uint8Array {
  // Built once per process and filter: building it is most of a subscription's cost.
  const key = `${f.family} ${f.table} ${f.msgs.join(",")}`;
  let program = programs.get(key);
  if (!program) programs.set(key, (program = buildFilter(f)));
  return program;
}

const programs = new Map<string, Uint8Array>();

function buildFilter(f: NftWatchFilter): Uint8Array {
  const name = Buffer.from(`${f.table}\0`, "utf8");
  const attrLen = NLA_HDRLEN + name.length;
  if (attrLen > 255) throw new RangeError(`table name ${f.table} is too long to filter on`);
  const head = NFT_ATTRS + NLA_HDRLEN + name.length;
  const p = new BpfProgram();
  p.op(BPF_LD | BPF_W | BPF_LEN).op(BPF_ST, 0);
  p.op(BPF_LD | BPF_IMM, 0).op(BPF_ST, 1);
  for (let i = 0; i < FILTER_MESSAGES; i++) {
    const [pass, drop, next] = [`pass${i}`, `drop${i}`, `next${i}`];
    p.op(BPF_LD | BPF_MEM, 1).op(BPF_LDX | BPF_MEM, 0);
    p.jump(BPF_JGE | BPF_X, 0, drop, undefined);
    p.op(BPF_ALU | BPF_ADD | BPF_K, head);
    p.jump(BPF_JGT | BPF_X, 0, pass, undefined);
    p.op(BPF_LDX | BPF_MEM, 1);
    p.op(BPF_LD | BPF_B | BPF_IND, 5).jump(BPF_JEQ | BPF_K, NFNL_SUBSYS_NFTABLES, undefined, next);
    p.op(BPF_LD | BPF_B | BPF_IND, 4);
    f.msgs.forEach((m, j) => p.jump(BPF_JEQ | BPF_K, m, `kind${i}`, j === f.msgs.length - 1 ? next : undefined));
    p.label(`kind${i}`);
    p.op(BPF_LD | BPF_B | BPF_IND, NLMSG_HDRLEN).jump(BPF_JEQ | BPF_K, f.family, undefined, next);
    // The attribute header as a big-endian u16 pair: nla_len's low byte first, then nla_type's
    // (its high byte may carry NLA_F_NESTED / NLA_F_NET_BYTEORDER: masked off).
    p.op(BPF_LD | BPF_H | BPF_IND, NFT_ATTRS).jump(BPF_JEQ | BPF_K, attrLen << 8, undefined, next);
    p.op(BPF_LD | BPF_H | BPF_IND, NFT_ATTRS + 2).op(BPF_ALU | BPF_AND | BPF_K, 0xff3f).jump(BPF_JEQ | BPF_K, 0x0100, undefined, next);
    for (let at = 0; at < name.length; ) {
      const size = name.length - at >= 4 ? 4 : name.length - at >= 2 ? 2 : 1;
      const want = size === 4 ? name.readUInt32BE(at) : size === 2 ? name.readUInt16BE(at) : name[at]!;
      p.op(BPF_LD | (size === 4 ? BPF_W : size === 2 ? BPF_H : BPF_B) | BPF_IND, NFT_ATTRS + NLA_HDRLEN + at);
      p.jump(BPF_JEQ | BPF_K, want, undefined, next);
      at += size;
    }
    p.goto(pass);
    p.label(next);
    // nlmsg_len, little-endian u32: its high half must be 0, then low byte | next byte << 8.
    p.op(BPF_LD | BPF_H | BPF_IND, 2).jump(BPF_JEQ | BPF_K, 0, undefined, pass);
    p.op(BPF_LD | BPF_B | BPF_IND, 1).op(BPF_ALU | BPF_LSH | BPF_K, 8).op(BPF_ST, 2);
    p.op(BPF_LD | BPF_B | BPF_IND, 0).op(BPF_LDX | BPF_MEM, 2).op(BPF_ALU | BPF_OR | BPF_X);
    p.jump(BPF_JGE | BPF_K, NLMSG_HDRLEN, undefined, pass);
    p.op(BPF_ALU | BPF_ADD | BPF_K, 3).op(BPF_ALU | BPF_AND | BPF_K, 0xfffffffc);
    p.op(BPF_LDX | BPF_MEM, 1).op(BPF_ALU | BPF_ADD | BPF_X).op(BPF_ST, 1);
    p.goto(`message${i + 1}`);
    // Jumps go forward only: the verdicts sit after the code that jumps to them.
    p.label(pass).ret(0xffffffff);
    p.label(drop).ret(0);
    p.label(`message${i + 1}`);
  }
  p.ret(0xffffffff);
  return p.encode();
}

export interface NftWatchHandlers {
  /** Events that arrived together; `overrun`: some were lost, assume anything changed. */
  events(events: NftEvent[], overrun: boolean): void;
  failed(e: Error): void;
}

export interface NftWatch extends Watch {
  /** The socket's own port id. */
  readonly portid: number;
}

/** Decodes one notification; undefined for what is not nf_tables'. */
export function nftEvent(view: DataView, type: number, portid: number): NftEvent | undefined {
  if (type >> 8 !== NFNL_SUBSYS_NFTABLES || view.byteLength < NFT_ATTRS) return undefined;
  const msg = type & 0xff;
  // The table's name is the first attribute of every kind of object (a generation has none).
  let table: string | undefined;
  if (msg !== NFT_MSG_NEWGEN && view.byteLength >= NFT_ATTRS + NLA_HDRLEN && (view.getUint16(NFT_ATTRS + 2, true) & NLA_TYPE_MASK) === NFTA_SET_ELEM_LIST_TABLE) {
    const len = view.getUint16(NFT_ATTRS, true);
    if (len > NLA_HDRLEN && NFT_ATTRS + len <= view.byteLength) {
      table = attrString(new DataView(view.buffer, view.byteOffset + NFT_ATTRS + NLA_HDRLEN, len - NLA_HDRLEN));
    }
  }
  return new NftEvent(msg, view.getUint8(NLMSG_HDRLEN), table, portid, view);
}

/**
 * Subscribes to nf_tables' announcements in the calling thread's network namespace and delivers
 * them from Bun's event loop (src/netlink/watch.ts): nothing runs while nothing changes. With a
 * filter, the kernel drops what does not match before it is queued (it may pass more).
 */
export function watchNftables(on: NftWatchHandlers, filter?: NftWatchFilter): NftWatch {
  const sock = new NetlinkSocket(NETLINK_NETFILTER, "nf_tables notifications", { groups: 1 << (NFNLGRP_NFTABLES - 1), releaseInWorker: true });
  let w: Watch;
  try {
    // Before anything can be queued: other programs' commits then never wake this process.
    if (filter) sock.attachFilter(nftFilterProgram(filter));
    w = watchSocket(sock.fd, {
      messages(ms, overrun) {
        const events: NftEvent[] = [];
        for (const m of ms) {
          const ev = nftEvent(m.view, m.type, m.portid);
          if (ev) events.push(ev);
        }
        on.events(events, overrun);
      },
      failed(e) {
        sock.close();
        on.failed(e);
      },
    });
  } catch (e) {
    sock.close();
    throw e;
  }
  return {
    portid: sock.portid,
    stop() {
      w.stop();
      sock.close();
    },
  };
}
