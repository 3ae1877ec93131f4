import { NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_ALIGN, NLMSG_HDRLEN } from "./constants.ts";

/** One received netlink message: header fields plus a view of the whole message. */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  portid: number;
  /** View over the message, header included; the payload starts at NLMSG_HDRLEN. */
  view: DataView;
}

/** Splits a recvfrom() buffer into messages. The views copy nothing; consume before next read. */
export function splitMessages(buf: Uint8Array, n: number): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, n);
  let at = 0;
  while (at + NLMSG_HDRLEN <= n) {
    const len = dv.getUint32(at, true);
    if (len < NLMSG_HDRLEN || at + len > n) break;
    out.push({
      type: dv.getUint16(at + 4, true),
      flags: dv.getUint16(at + 6, true),
      seq: dv.getUint32(at + 8, true),
      portid: dv.getUint32(at + 12, true),
      view: new DataView(buf.buffer, buf.byteOffset + at, len),
    });
    at += NLMSG_ALIGN(len);
  }
  return out;
}

/**
 * Attributes of one level, by type (NLA_F_NESTED / NLA_F_NET_BYTEORDER masked off). Each value
 * is a view of the payload. A repeated type keeps the last one.
 */
export class Attrs {
  private readonly map = new Map<number, DataView>();

  constructor(view: DataView, start: number, end = view.byteLength) {
    let at = start;
    while (at + NLA_HDRLEN <= end) {
      const len = view.getUint16(at, true);
      if (len < NLA_HDRLEN || at + len > end) break;
      const type = view.getUint16(at + 2, true) & NLA_TYPE_MASK;
      this.map.set(type, new DataView(view.buffer, view.byteOffset + at + NLA_HDRLEN, len - NLA_HDRLEN));
      at += NLMSG_ALIGN(len);
    }
  }

  has(type: number): boolean {
    return this.map.has(type);
  }
  raw(type: number): DataView | undefined {
    return this.map.get(type);
  }
  // A value too short for its type reads as absent: never past the attribute, whatever its nla_len.
  u8(type: number): number | undefined {
    const v = this.map.get(type);
    return v && v.byteLength >= 1 ? v.getUint8(0) : undefined;
  }
  u32(type: number): number | undefined {
    const v = this.map.get(type);
    return v && v.byteLength >= 4 ? v.getUint32(0, true) : undefined;
  }
  be32(type: number): number | undefined {
    const v = this.map.get(type);
    return v && v.byteLength >= 4 ? v.getUint32(0, false) : undefined;
  }
  str(type: number): string | undefined {
    const v = this.map.get(type);
    if (!v) return undefined;
    let end = v.byteLength;
    while (end > 0 && v.getUint8(end - 1) === 0) end--;
    return new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset, end));
  }
  bytes(type: number): Uint8Array | undefined {
    const v = this.map.get(type);
    return v && new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  }
  nested(type: number): Attrs | undefined {
    const v = this.map.get(type);
    return v && new Attrs(v, 0);
  }
}
