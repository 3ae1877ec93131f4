import { NLA_F_NESTED, NLA_HDRLEN, NLMSG_ALIGN } from "./constants.ts";

/**
 * Builds one or more netlink messages back to back in a reusable buffer (a batch is just
 * several messages in one sendto).
 *
 * Message:   | nlmsghdr (16) | family header (fixed struct) | attribute | attribute | ...
 * nlmsghdr:  | len u32 | type u16 | flags u16 | seq u32 | pid u32 |      (host byte order)
 * attribute: | nla_len u16 | nla_type u16 | payload | pad to 4 |        nla_len excludes padding
 * Nested attributes are an attribute whose payload is attributes, flagged NLA_F_NESTED.
 */
export class NetlinkWriter {
  buf: Uint8Array;
  private dv: DataView;
  len = 0;

  constructor(size = 4096) {
    this.buf = new Uint8Array(size);
    this.dv = new DataView(this.buf.buffer);
  }

  reset(): this {
    this.len = 0;
    return this;
  }

  private reserve(n: number): number {
    const at = this.len;
    const need = at + NLMSG_ALIGN(n);
    if (need > this.buf.byteLength) {
      let size = this.buf.byteLength * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    // Padding must be zero: the kernel validates some trailing bytes (strings, struct padding).
    this.buf.fill(0, at, need);
    this.len = need;
    return at;
  }

  /** Opens a message; pass the returned offset to end(). */
  begin(type: number, flags: number, seq: number): number {
    const at = this.reserve(16);
    this.dv.setUint16(at + 4, type, true);
    this.dv.setUint16(at + 6, flags, true);
    this.dv.setUint32(at + 8, seq, true);
    return at;
  }

  end(at: number): void {
    this.dv.setUint32(at, this.len - at, true);
  }

  /** Reserves a zeroed fixed-size family header (ifinfomsg, nfgenmsg, ...); fill it via view. */
  struct(size: number): number {
    return this.reserve(size);
  }

  get view(): DataView {
    return this.dv;
  }

  // Callers take the returned offset before touching buf or dv: reserve() may replace both.
  private attrHeader(type: number, payload: number): number {
    if (NLA_HDRLEN + payload > 0xffff) throw new RangeError(`netlink attribute ${type} of ${payload} bytes exceeds nla_len's 16 bits`);
    const at = this.reserve(NLA_HDRLEN + payload);
    this.dv.setUint16(at, NLA_HDRLEN + payload, true);
    this.dv.setUint16(at + 2, type, true);
    return at + NLA_HDRLEN;
  }

  attrU8(type: number, v: number): this {
    const at = this.attrHeader(type, 1);
    this.dv.setUint8(at, v);
    return this;
  }
  attrU16(type: number, v: number): this {
    const at = this.attrHeader(type, 2);
    this.dv.setUint16(at, v, true);
    return this;
  }
  attrBe16(type: number, v: number): this {
    const at = this.attrHeader(type, 2);
    this.dv.setUint16(at, v, false);
    return this;
  }
  attrU32(type: number, v: number): this {
    const at = this.attrHeader(type, 4);
    this.dv.setUint32(at, v >>> 0, true);
    return this;
  }
  attrBe32(type: number, v: number): this {
    const at = this.attrHeader(type, 4);
    this.dv.setUint32(at, v >>> 0, false);
    return this;
  }
  attrBe64(type: number, v: bigint): this {
    const at = this.attrHeader(type, 8);
    this.dv.setBigUint64(at, v, false);
    return this;
  }
  attrBytes(type: number, bytes: ArrayLike<number>): this {
    const at = this.attrHeader(type, bytes.length);
    this.buf.set(bytes, at);
    return this;
  }
  /** A NUL-terminated string, as NLA_NUL_STRING / NLA_STRING policies expect. */
  attrStr(type: number, s: string): this {
    const bytes = new TextEncoder().encode(s);
    const at = this.attrHeader(type, bytes.length + 1);
    this.buf.set(bytes, at);
    return this;
  }
  attrFlag(type: number): this {
    this.attrHeader(type, 0);
    return this;
  }
  /** A nested attribute: whatever fn writes becomes its payload. */
  nest(type: number, fn: () => void): this {
    const at = this.reserve(NLA_HDRLEN);
    fn();
    // nla_len is 16 bits: a nest that outgrew it would be silently truncated by the kernel.
    if (this.len - at > 0xffff) throw new RangeError(`nested netlink attribute ${type} of ${this.len - at} bytes exceeds nla_len's 16 bits`);
    this.dv.setUint16(at, this.len - at, true);
    this.dv.setUint16(at + 2, type | NLA_F_NESTED, true);
    return this;
  }
}
