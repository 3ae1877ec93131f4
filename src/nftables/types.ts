import { ipv4Bytes } from "../ip/ipv4.ts";
import { IFNAMSIZ, TYPE_BITS, TYPE_IFNAME, TYPE_INET_PROTOCOL, TYPE_INET_SERVICE, TYPE_IP6ADDR, TYPE_IPADDR, TYPE_MARK } from "./constants.ts";
import { padded } from "./expr/expr.ts";

/**
 * A set key or map data field type as nft knows it: the kernel only cares about the length;
 * nft reads the type number (NFTA_SET_KEY_TYPE / NFTA_SET_DATA_TYPE) to print elements.
 */
export interface FieldType {
  readonly nftName: string;
  readonly type: number;
  readonly len: number;
  /** Compared as host-order bytes (strings like ifname): nft must be told, to print elements. */
  readonly hostOrder?: boolean;
}

export const ipv4_addr: FieldType = { nftName: "ipv4_addr", type: TYPE_IPADDR, len: 4 };
export const ipv6_addr: FieldType = { nftName: "ipv6_addr", type: TYPE_IP6ADDR, len: 16 };
export const inet_proto: FieldType = { nftName: "inet_proto", type: TYPE_INET_PROTOCOL, len: 1 };
export const inet_service: FieldType = { nftName: "inet_service", type: TYPE_INET_SERVICE, len: 2 };
export const mark: FieldType = { nftName: "mark", type: TYPE_MARK, len: 4 };
/** An interface name: IFNAMSIZ bytes, NUL padded. */
export const ifname: FieldType = { nftName: "ifname", type: TYPE_IFNAME, len: IFNAMSIZ, hostOrder: true };

/**
 * Type number and byte length of a (possibly concatenated) key: nft packs a concatenation's
 * types 6 bits each, first field highest ((t1 << 6) | t2), and the kernel wants every field
 * padded to 4 bytes (tcp . 18080 is 8 bytes: 06000000 46a00000) — an unpadded length is EINVAL.
 */
export function concatType(fields: readonly FieldType[]): { type: number; len: number } {
  if (fields.length === 0) throw new RangeError("a key needs at least one field");
  if (fields.length === 1) return { type: fields[0]!.type, len: fields[0]!.len };
  let type = 0;
  let len = 0;
  for (const f of fields) {
    type = type * (1 << TYPE_BITS) + f.type;
    len += padded(f.len);
  }
  return { type, len };
}

/** Field values as packet bytes (network order), before padding. */
export const value = {
  ipv4: (addr: number): Uint8Array => ipv4Bytes(addr),
  /** 16 bytes, network order. */
  ipv6: (addr: Uint8Array): Uint8Array => {
    if (addr.length !== 16) throw new RangeError(`an IPv6 address is 16 bytes, not ${addr.length}`);
    return addr;
  },
  proto: (p: number): Uint8Array => new Uint8Array([p]),
  port: (p: number): Uint8Array => new Uint8Array([p >> 8, p & 255]),
  ifname: (name: string): Uint8Array => {
    const enc = new TextEncoder().encode(name);
    if (enc.length === 0 || enc.length >= IFNAMSIZ) throw new RangeError(`bad interface name "${name}"`);
    const b = new Uint8Array(IFNAMSIZ);
    b.set(enc);
    return b;
  },
};

/** A key or data value: one field as is, several fields each zero-padded to 4 bytes. */
export function concatValue(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + padded(p.length), 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += padded(p.length);
  }
  return out;
}
