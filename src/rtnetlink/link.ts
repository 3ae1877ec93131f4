import { NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { Attrs, type NetlinkMessage } from "../netlink/reader.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { KernelError } from "../errors/errors.ts";
import { ENODEV } from "../errors/errno.ts";
import type { NetlinkWriter } from "../netlink/writer.ts";
import { addrDumpRequest, addrOf, type AddrInfo } from "./addr.ts";
import {
  AF_BRIDGE, AF_UNSPEC, IFF_UP, IFLA_ADDRESS, IFLA_BRPORT_MODE, IFLA_IFNAME, IFLA_INFO_DATA,
  IFLA_INFO_KIND, IFLA_LINK, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_NET_NS_FD, IFLA_OPERSTATE,
  IFLA_LINK_NETNSID, IFLA_PROTINFO, IFLA_TARGET_NETNSID, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK, VETH_INFO_PEER,
} from "./constants.ts";

/** What tsnet asks of a new or changed link. Kernel kind strings ("bridge", "veth") tag the kind. */
export interface LinkSpec {
  name: string;
  kind?: "bridge" | "veth";
  mac?: Uint8Array;
  mtu?: number;
  up?: boolean;
  /** ifindex of the bridge to attach to. */
  master?: number;
  /** Create (or move) the link into the namespace behind this fd. */
  nsFd?: number;
  /** The other end of a veth pair. */
  peer?: LinkSpec;
  /** The ifindex to give a new link (0 or absent: the kernel's next). */
  index?: number;
}

export interface LinkInfo {
  index: number;
  name: string;
  flags: number;
  operstate: number;
  mac?: Uint8Array;
  master?: number;
  kind?: string;
  /** IFLA_LINK: a veth's peer's ifindex (in the peer's namespace). */
  peer?: number;
  /** IFLA_LINK_NETNSID: the peer's namespace, as the id this namespace knows it by (absent: this one). */
  peerNetnsId?: number;
}

const IFINFOMSG_LEN = 16;

// ifinfomsg: | family u8 | pad u8 | type u16 | index i32 | flags u32 | change u32 |
function ifinfomsg(w: NetlinkWriter, family: number, index: number, up?: boolean): void {
  const at = w.struct(IFINFOMSG_LEN);
  w.view.setUint8(at, family);
  w.view.setInt32(at + 4, index, true);
  if (up !== undefined) {
    w.view.setUint32(at + 8, up ? IFF_UP : 0, true);
    w.view.setUint32(at + 12, IFF_UP, true);
  }
}

// RTM_NEWLINK: ifinfomsg, IFLA_IFNAME, [IFLA_ADDRESS], [IFLA_MTU], [IFLA_MASTER], [IFLA_NET_NS_FD],
//   IFLA_LINKINFO { IFLA_INFO_KIND, [IFLA_INFO_DATA { VETH_INFO_PEER { ifinfomsg, attrs... } }] }
// A veth peer is a whole ifinfomsg plus attributes nested in the parent's link info, so one
// message creates both ends, each already in its namespace, attached and up.
function linkBody(w: NetlinkWriter, spec: LinkSpec): void {
  ifinfomsg(w, AF_UNSPEC, spec.index ?? 0, spec.up);
  w.attrStr(IFLA_IFNAME, spec.name);
  if (spec.mac) w.attrBytes(IFLA_ADDRESS, spec.mac);
  if (spec.mtu !== undefined) w.attrU32(IFLA_MTU, spec.mtu);
  if (spec.master !== undefined) w.attrU32(IFLA_MASTER, spec.master);
  if (spec.nsFd !== undefined) w.attrU32(IFLA_NET_NS_FD, spec.nsFd);
  if (spec.kind) {
    w.nest(IFLA_LINKINFO, () => {
      w.attrStr(IFLA_INFO_KIND, spec.kind!);
      const peer = spec.peer;
      if (peer) w.nest(IFLA_INFO_DATA, () => w.nest(VETH_INFO_PEER, () => linkBody(w, peer)));
    });
  }
}

/**
 * Makes a link. With `made`, the request carries NLM_F_ECHO and `made` is given the new link as
 * the kernel sends it back (Linux 6.3+; an older kernel only acks, and `made` is not called), so
 * its ifindex needs no lookup.
 */
export function linkAdd(nl: NetlinkSocket, spec: LinkSpec, made?: (link: LinkInfo) => void): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL | (made ? NLM_F_ECHO : 0), seq);
  linkBody(w, spec);
  w.end(at);
  const onReply = made && ((m: NetlinkMessage) => {
    if (m.type !== RTM_NEWLINK) return;
    const link = parseLink(m);
    if (link.name === spec.name) made(link);
  });
  nl.request(w, { seq, at, op: `add ${spec.kind ?? "link"}`, object: spec.name, ...(onReply && { onReply }) });
}

// RTM_NEWLINK (no NLM_F_CREATE): ifinfomsg with index 0, IFLA_IFNAME: the kernel finds the link
// by name, so a change needs no lookup of its ifindex first.
/** Changes an existing link named by name: up/down, master (by ifindex), MTU, MAC. */
export function linkSetNamed(nl: NetlinkSocket, name: string, change: Omit<LinkSpec, "name" | "kind" | "peer" | "nsFd" | "index">): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  ifinfomsg(w, AF_UNSPEC, 0, change.up);
  w.attrStr(IFLA_IFNAME, name);
  if (change.mac) w.attrBytes(IFLA_ADDRESS, change.mac);
  if (change.mtu !== undefined) w.attrU32(IFLA_MTU, change.mtu);
  if (change.master !== undefined) w.attrU32(IFLA_MASTER, change.master);
  w.end(at);
  nl.request(w, { seq, at, op: "set link", object: name });
}

/** Changes an existing link: up/down, master, MAC, namespace. */
export function linkSet(nl: NetlinkSocket, index: number, change: Omit<LinkSpec, "name" | "kind" | "peer">, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  ifinfomsg(w, AF_UNSPEC, index, change.up);
  if (change.mac) w.attrBytes(IFLA_ADDRESS, change.mac);
  if (change.mtu !== undefined) w.attrU32(IFLA_MTU, change.mtu);
  if (change.master !== undefined) w.attrU32(IFLA_MASTER, change.master);
  if (change.nsFd !== undefined) w.attrU32(IFLA_NET_NS_FD, change.nsFd);
  w.end(at);
  nl.request(w, { seq, at, op: "set link", object: what });
}

// RTM_NEWLINK: ifinfomsg (index), IFLA_IFNAME
/**
 * Renames a link. A name with `%d` is a pattern: the kernel gives the first free number. Older
 * kernels refuse to rename a link that is up (EBUSY): take it down first.
 */
export function linkRename(nl: NetlinkSocket, index: number, name: string, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  ifinfomsg(w, AF_UNSPEC, index);
  w.attrStr(IFLA_IFNAME, name);
  w.end(at);
  nl.request(w, { seq, at, op: "rename link", object: what });
}

// RTM_SETLINK, family AF_BRIDGE: ifinfomsg, IFLA_PROTINFO { IFLA_BRPORT_MODE u8 }
/** Hairpin mode lets the bridge send a frame back out of the port it came in by. */
export function bridgePortHairpin(nl: NetlinkSocket, index: number, on: boolean, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  ifinfomsg(w, AF_BRIDGE, index);
  w.nest(IFLA_PROTINFO, () => w.attrU8(IFLA_BRPORT_MODE, on ? 1 : 0));
  w.end(at);
  nl.request(w, { seq, at, op: "set hairpin on", object: what });
}

export function linkDel(nl: NetlinkSocket, name: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  ifinfomsg(w, AF_UNSPEC, 0);
  w.attrStr(IFLA_IFNAME, name);
  w.end(at);
  nl.request(w, { seq, at, op: "delete link", object: name });
}

function parseLink(m: NetlinkMessage): LinkInfo {
  const v = m.view;
  const a = new Attrs(v, NLMSG_HDRLEN + IFINFOMSG_LEN);
  return {
    index: v.getInt32(NLMSG_HDRLEN + 4, true),
    flags: v.getUint32(NLMSG_HDRLEN + 8, true),
    name: a.str(IFLA_IFNAME) ?? "",
    operstate: a.u8(IFLA_OPERSTATE) ?? 0,
    mac: a.bytes(IFLA_ADDRESS),
    master: a.u32(IFLA_MASTER),
    kind: a.nested(IFLA_LINKINFO)?.str(IFLA_INFO_KIND),
    peer: a.u32(IFLA_LINK),
    peerNetnsId: a.u32(IFLA_LINK_NETNSID),
  };
}

/** A link announcement (RTM_NEWLINK from a RTMGRP_LINK subscription) read as a LinkInfo. */
export const linkOf = parseLink;

// RTM_GETLINK: ifinfomsg (index), [IFLA_TARGET_NETNSID s32]
/**
 * The link by ifindex, undefined when there is none; with `netnsId`, the link of that index in the
 * namespace this one knows by that id (a veth's peerNetnsId), read without entering it.
 */
export function linkGetIndex(nl: NetlinkSocket, index: number, netnsId?: number): LinkInfo | undefined {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_GETLINK, NLM_F_REQUEST, seq);
  ifinfomsg(w, AF_UNSPEC, index);
  if (netnsId !== undefined) w.attrU32(IFLA_TARGET_NETNSID, netnsId);
  w.end(at);
  try {
    return parseLink(nl.query(w, { seq, at, op: "get link", object: `ifindex ${index}` }));
  } catch (e) {
    if ((e as { errno?: number }).errno === ENODEV) return undefined;
    throw e;
  }
}

// RTM_DELLINK: ifinfomsg (index)
/**
 * Deletes the link of that ifindex (a veth: both ends); false when there is none. Blocks in the
 * kernel's rcu_barrier() (see detachEndpoint in src/network/sandbox.ts).
 */
export function linkDelIndex(nl: NetlinkSocket, index: number, what: string): boolean {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq);
  ifinfomsg(w, AF_UNSPEC, index);
  w.end(at);
  try {
    nl.request(w, { seq, at, op: "delete link", object: what });
    return true;
  } catch (e) {
    if (e instanceof KernelError && e.errno === ENODEV) return false;
    throw e;
  }
}

// RTM_GETLINK: ifinfomsg (index 0), IFLA_IFNAME: the kernel looks the link up by name.
function encodeLinkGet(w: NetlinkWriter, seq: number, name: string): number {
  const at = w.begin(RTM_GETLINK, NLM_F_REQUEST, seq);
  ifinfomsg(w, AF_UNSPEC, 0);
  w.attrStr(IFLA_IFNAME, name);
  w.end(at);
  return at;
}

/** The link by name, or undefined when there is none (ENODEV). */
export function linkGet(nl: NetlinkSocket, name: string): LinkInfo | undefined {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = encodeLinkGet(w, seq, name);
  try {
    return parseLink(nl.query(w, { seq, at, op: "get link", object: name }));
  } catch (e) {
    if ((e as { errno?: number }).errno === ENODEV) return undefined;
    throw e;
  }
}

/**
 * The link by name and the addresses of one family on every link, in one round trip (the query,
 * then the dump, in one write): what deciding whether a bridge is ready needs.
 */
export function linkGetWithAddrs(nl: NetlinkSocket, name: string, family: number): { link?: LinkInfo; addrs: AddrInfo[] } {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = encodeLinkGet(w, seq, name);
  const dump = addrDumpRequest(w, nl.nextSeq(), family);
  const out: { link?: LinkInfo; addrs: AddrInfo[] } = { addrs: [] };
  nl.exchange(w, [
    {
      p: { seq, at, op: "get link", object: name }, dump: false,
      onMessage: (m) => void (out.link = parseLink(m)),
      onError: (e) => {
        if (e.errno !== ENODEV) throw e;
      },
    },
    { p: dump, dump: true, onMessage: (m) => void addrOf(m, family, out.addrs) },
  ]);
  return out;
}

export function linkList(nl: NetlinkSocket): LinkInfo[] {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
  ifinfomsg(w, AF_UNSPEC, 0);
  w.end(at);
  const out: LinkInfo[] = [];
  nl.dump(w, { seq, at, op: "list links", object: "" }, (m) => {
    if (m.type === RTM_NEWLINK) out.push(parseLink(m));
  });
  return out;
}

/** Deletes the link; one that is already gone is not an error (teardown is idempotent). */
export function linkDelIfExists(nl: NetlinkSocket, name: string): void {
  try {
    linkDel(nl, name);
  } catch (e) {
    if (!(e instanceof KernelError && e.errno === ENODEV)) throw e;
  }
}
