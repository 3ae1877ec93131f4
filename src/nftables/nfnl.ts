import { KernelError } from "../errors/errors.ts";
import { NETLINK_NETFILTER, NLM_F_REQUEST, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { Attrs } from "../netlink/reader.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import type { NetlinkWriter } from "../netlink/writer.ts";
import {
  NFGENMSG_LEN,
  NFNETLINK_V0,
  NFNL_SUBSYS_NFTABLES,
  NFPROTO_INET,
  NFPROTO_IPV4,
  NFPROTO_UNSPEC,
  NFT_MSG_GETGEN,
  NFT_MSG_NEWGEN,
  NFTA_GEN_ID,
} from "./constants.ts";

/** Table families tsnet uses: `inet` (IPv4 and IPv6 in one table) and `ip`. */
export type Family = "inet" | "ip";

export function nfproto(f: Family): number {
  return f === "inet" ? NFPROTO_INET : NFPROTO_IPV4;
}

/** nf_tables message types carry the subsystem in the high byte. */
export function nftMsgType(msg: number): number {
  return (NFNL_SUBSYS_NFTABLES << 8) | msg;
}

/**
 * The netfilter netlink socket of the calling thread's network namespace. The kernel makes the
 * release of any nfnetlink socket wait until the clean-up of the last committed transactions,
 * anyone's, is done (an RCU grace period: 6-30 ms here), so its close is left to a kernel worker.
 */
export function openNftSocket(): NetlinkSocket {
  return new NetlinkSocket(NETLINK_NETFILTER, "nf_tables", { releaseInWorker: true });
}

// Message: | nlmsghdr | nfgenmsg: family u8 | version u8 (NFNETLINK_V0) | res_id be16 | attributes |
// res_id is 0 except on a batch begin, where it names the subsystem (htons(NFNL_SUBSYS_NFTABLES)).
export function beginNft(w: NetlinkWriter, type: number, flags: number, seq: number, family: number, resId = 0): number {
  const at = w.begin(type, flags, seq);
  const h = w.struct(NFGENMSG_LEN);
  w.view.setUint8(h, family);
  w.view.setUint8(h + 1, NFNETLINK_V0);
  w.view.setUint16(h + 2, resId, false);
  return at;
}

/** Offset of the first attribute of an nf_tables message. */
export const NFT_ATTRS = NLMSG_HDRLEN + NFGENMSG_LEN;

// NFT_MSG_GETGEN: | nfgenmsg family AF_UNSPEC |, answered by NFT_MSG_NEWGEN { NFTA_GEN_ID be32 }
/** The ruleset generation: a batch carrying an older one is refused with ERESTART. */
export function getGeneration(nl: NetlinkSocket): number {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = beginNft(w, nftMsgType(NFT_MSG_GETGEN), NLM_F_REQUEST, seq, NFPROTO_UNSPEC);
  w.end(at);
  const m = nl.query(w, { seq, at, op: "get", object: "nf_tables generation" });
  const id = m.type === nftMsgType(NFT_MSG_NEWGEN) ? new Attrs(m.view, NFT_ATTRS).be32(NFTA_GEN_ID) : undefined;
  if (id === undefined) throw new KernelError("get", "nf_tables generation", 71, "no NFTA_GEN_ID in the answer");
  return id;
}
