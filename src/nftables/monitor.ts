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
  NFNL_SUBSYS_NFTABLES, NFNLGRP_NFTABLES, NFT_MSG_DELSETELEM, NFT_MSG_NEWSETELEM, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE,
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
  // The table's name is the first attribute of every kind of object.
  let table: string | undefined;
  if (view.byteLength >= NFT_ATTRS + NLA_HDRLEN && (view.getUint16(NFT_ATTRS + 2, true) & NLA_TYPE_MASK) === NFTA_SET_ELEM_LIST_TABLE) {
    const len = view.getUint16(NFT_ATTRS, true);
    if (len > NLA_HDRLEN && NFT_ATTRS + len <= view.byteLength) {
      table = attrString(new DataView(view.buffer, view.byteOffset + NFT_ATTRS + NLA_HDRLEN, len - NLA_HDRLEN));
    }
  }
  return new NftEvent(type & 0xff, view.getUint8(NLMSG_HDRLEN), table, portid, view);
}

/**
 * Subscribes to nf_tables' announcements in the calling thread's network namespace and delivers
 * them from Bun's event loop (src/netlink/watch.ts): nothing runs while nothing changes.
 */
export function watchNftables(on: NftWatchHandlers): NftWatch {
  const sock = new NetlinkSocket(NETLINK_NETFILTER, "nf_tables notifications", { groups: 1 << (NFNLGRP_NFTABLES - 1) });
  let w: Watch;
  try {
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
