import { NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { Attrs, type NetlinkMessage } from "../netlink/reader.ts";
import type { NetlinkSocket, Pending } from "../netlink/socket.ts";
import type { NetlinkWriter } from "../netlink/writer.ts";
import { isErrno } from "../errors/errors.ts";
import { EADDRNOTAVAIL } from "../errors/errno.ts";
import { formatIp, ipBytes, ipFromBytes, type IpAddress } from "../ip/addr.ts";
import { AF_INET, AF_INET6, IFA_ADDRESS, IFA_F_NODAD, IFA_LOCAL, RT_SCOPE_UNIVERSE, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR } from "./constants.ts";

export interface AddrInfo {
  index: number;
  prefix: number;
  address: IpAddress;
}

/** The rtnetlink family of an address: AF_INET or AF_INET6. */
export function afOf(a: IpAddress): number {
  return a.family === 4 ? AF_INET : AF_INET6;
}

const IFADDRMSG_LEN = 8;

// RTM_NEWADDR: ifaddrmsg | family u8 | prefixlen u8 | flags u8 | scope u8 | index u32 |,
//   IFA_LOCAL (the interface's own address), IFA_ADDRESS (same, on a non point-to-point link)
// An IPv6 address is added with IFA_F_NODAD: tsnet leased it, so no other node on the bridge has
// it, and without the flag it stays tentative (unusable as a source or a next hop) for the
// second or more duplicate address detection takes.
export function addrAdd(nl: NetlinkSocket, index: number, address: IpAddress, prefix: number, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq);
  const h = w.struct(IFADDRMSG_LEN);
  w.view.setUint8(h, afOf(address));
  w.view.setUint8(h + 1, prefix);
  if (address.family === 6) w.view.setUint8(h + 2, IFA_F_NODAD);
  w.view.setUint8(h + 3, RT_SCOPE_UNIVERSE);
  w.view.setUint32(h + 4, index, true);
  const b = ipBytes(address);
  w.attrBytes(IFA_LOCAL, b);
  w.attrBytes(IFA_ADDRESS, b);
  w.end(at);
  nl.request(w, { seq, at, op: "add address", object: `${formatIp(address)}/${prefix} to ${what}` });
}

// RTM_DELADDR: ifaddrmsg | family u8 | prefixlen u8 | flags u8 | scope u8 | index u32 |, IFA_LOCAL
/** Removes an address from a link; one that is not there is not an error (EADDRNOTAVAIL). */
export function addrDel(nl: NetlinkSocket, index: number, address: IpAddress, prefix: number, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, seq);
  const h = w.struct(IFADDRMSG_LEN);
  w.view.setUint8(h, afOf(address));
  w.view.setUint8(h + 1, prefix);
  w.view.setUint32(h + 4, index, true);
  w.attrBytes(IFA_LOCAL, ipBytes(address));
  w.end(at);
  try {
    nl.request(w, { seq, at, op: "remove address", object: `${formatIp(address)}/${prefix} from ${what}` });
  } catch (e) {
    if (!isErrno(e, EADDRNOTAVAIL)) throw e;
  }
}

/** Addresses of one family (AF_INET or AF_INET6) on every link. */
export function addrList(nl: NetlinkSocket, family = AF_INET): AddrInfo[] {
  const w = nl.writer.reset();
  const p = addrDumpRequest(w, nl.nextSeq(), family);
  const out: AddrInfo[] = [];
  nl.dump(w, p, (m) => addrOf(m, family, out));
  return out;
}

// RTM_GETADDR dump: | nlmsghdr | ifaddrmsg { family u8, prefixlen u8, flags u8, scope u8, index u32 } (zero but family) |
/** Appends an address dump request of one family to w. */
export function addrDumpRequest(w: NetlinkWriter, seq: number, family: number): Pending {
  const at = w.begin(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const h = w.struct(IFADDRMSG_LEN);
  w.view.setUint8(h, family);
  w.end(at);
  return { seq, at, op: "list addresses", object: "" };
}

/** An RTM_NEWADDR of the family, appended to out (its local address, else its address). */
export function addrOf(m: NetlinkMessage, family: number, out: AddrInfo[]): void {
  if (m.type !== RTM_NEWADDR) return;
  const v = m.view;
  const fam = v.getUint8(NLMSG_HDRLEN);
  if (fam !== family) return;
  const a = new Attrs(v, NLMSG_HDRLEN + IFADDRMSG_LEN);
  const bytes = a.bytes(IFA_LOCAL) ?? a.bytes(IFA_ADDRESS);
  if (!bytes) return;
  out.push({ prefix: v.getUint8(NLMSG_HDRLEN + 1), index: v.getUint32(NLMSG_HDRLEN + 4, true), address: ipFromBytes(bytes) });
}
