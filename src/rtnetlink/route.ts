import { NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { Attrs } from "../netlink/reader.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { formatIp, ipBytes, ipFromBytes, type IpAddress } from "../ip/addr.ts";
import { afOf } from "./addr.ts";
import {
  AF_INET, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_TABLE, RTM_GETROUTE,
  RTM_NEWROUTE, RTN_UNICAST, RTPROT_BOOT,
} from "./constants.ts";

export interface RouteInfo {
  table: number;
  type: number;
  /** Absent for a default route. */
  dst?: IpAddress;
  dstLen: number;
  gateway?: IpAddress;
  oif?: number;
}

const RTMSG_LEN = 12;

// rtmsg: | family u8 | dst_len u8 | src_len u8 | tos u8 | table u8 | protocol u8 | scope u8 |
//        | type u8 | flags u32 |
// RTM_NEWROUTE: rtmsg, [RTA_DST], RTA_GATEWAY, RTA_OIF
export function routeAdd(nl: NetlinkSocket, r: { dst?: IpAddress; dstLen: number; gateway: IpAddress; oif: number }, what: string): void {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq);
  const h = w.struct(RTMSG_LEN);
  const v = w.view;
  v.setUint8(h, afOf(r.gateway));
  v.setUint8(h + 1, r.dstLen);
  v.setUint8(h + 4, RT_TABLE_MAIN);
  v.setUint8(h + 5, RTPROT_BOOT);
  v.setUint8(h + 6, RT_SCOPE_UNIVERSE);
  v.setUint8(h + 7, RTN_UNICAST);
  if (r.dst && r.dstLen > 0) w.attrBytes(RTA_DST, ipBytes(r.dst));
  w.attrBytes(RTA_GATEWAY, ipBytes(r.gateway));
  w.attrU32(RTA_OIF, r.oif);
  w.end(at);
  const dst = !r.dst || r.dstLen === 0 ? "default" : `${formatIp(r.dst)}/${r.dstLen}`;
  nl.request(w, { seq, at, op: "add route", object: `${dst} via ${formatIp(r.gateway)} in ${what}` });
}

export function routeList(nl: NetlinkSocket, family = AF_INET): RouteInfo[] {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = w.begin(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
  const h = w.struct(RTMSG_LEN);
  w.view.setUint8(h, family);
  w.end(at);
  const out: RouteInfo[] = [];
  nl.dump(w, { seq, at, op: "list routes", object: "" }, (m) => {
    if (m.type !== RTM_NEWROUTE) return;
    const v = m.view;
    const a = new Attrs(v, NLMSG_HDRLEN + RTMSG_LEN);
    const dst = a.bytes(RTA_DST);
    const gw = a.bytes(RTA_GATEWAY);
    out.push({
      dstLen: v.getUint8(NLMSG_HDRLEN + 1),
      table: a.u32(RTA_TABLE) ?? v.getUint8(NLMSG_HDRLEN + 4),
      type: v.getUint8(NLMSG_HDRLEN + 7),
      dst: dst ? ipFromBytes(dst) : undefined,
      gateway: gw ? ipFromBytes(gw) : undefined,
      oif: a.u32(RTA_OIF),
    });
  });
  return out;
}
