// Composite matches written the way nft writes them, so `nft list` prints them back in nft
// syntax (e.g. a /8 prefix loads 1 byte instead of masking 4; `ip saddr` in an inet table is
// preceded by `meta nfproto ipv4`, which nft then hides as implied).
import { ipBytes, type IpPrefix } from "../../ip/addr.ts";
import { mask as ipMask } from "../../ip/ipv4.ts";
import {
  IFNAMSIZ,
  NFPROTO_IPV4,
  NFPROTO_IPV6,
  NFT_CMP_EQ,
  NFT_CMP_NEQ,
  NFT_CT_STATE,
  NFT_CT_STATUS,
  NFT_FIB_RESULT_ADDRTYPE,
  NFT_META_IIFNAME,
  NFT_META_L4PROTO,
  NFT_META_NFPROTO,
  NFT_META_OIFNAME,
  NFT_PAYLOAD_NETWORK_HEADER,
  NFT_PAYLOAD_TRANSPORT_HEADER,
  NFT_REG_1,
  NFTA_FIB_F_DADDR,
} from "../constants.ts";
import { bitwise } from "./bitwise.ts";
import { cmp } from "./cmp.ts";
import { ctLoad } from "./ct.ts";
import { padded, reg32, type Expr, type Register } from "./expr.ts";
import { fib } from "./fib.ts";
import { metaLoad } from "./meta.ts";
import { payloadLoad } from "./payload.ts";
import { lookup } from "./lookup.ts";
import { value } from "../types.ts";

function u32Host(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

/** Interface names compare as IFNAMSIZ bytes, NUL padded (what the meta register holds). */
export const ifnameBytes = value.ifname;

/** `iifname "lo"` / `iifname != "lo"` */
export function iifname(name: string, op = NFT_CMP_EQ): Expr[] {
  return [metaLoad(NFT_META_IIFNAME, NFT_REG_1), cmp(op, NFT_REG_1, ifnameBytes(name))];
}

/** `oifname "br0"` / `oifname != "br0"` */
export function oifname(name: string, op = NFT_CMP_EQ): Expr[] {
  return [metaLoad(NFT_META_OIFNAME, NFT_REG_1), cmp(op, NFT_REG_1, ifnameBytes(name))];
}

/** `meta nfproto ipv4`: the dependency of every IPv4 header match in an inet table. */
export function nfproto(proto: number): Expr[] {
  return [metaLoad(NFT_META_NFPROTO, NFT_REG_1), cmp(NFT_CMP_EQ, NFT_REG_1, [proto])];
}

/** `meta l4proto tcp` */
export function l4proto(proto: number): Expr[] {
  return [metaLoad(NFT_META_L4PROTO, NFT_REG_1), cmp(NFT_CMP_EQ, NFT_REG_1, [proto])];
}

const IPV4_SADDR_OFFSET = 12;
const IPV4_DADDR_OFFSET = 16;
const IPV6_SADDR_OFFSET = 8;
const IPV6_DADDR_OFFSET = 24;

/** `ip6 daddr ::1` (op NEQ for `!=`), in an inet table: one whole address. */
export function ip6Daddr(addr: Uint8Array, op = NFT_CMP_EQ): Expr[] {
  if (addr.length !== 16) throw new RangeError(`an IPv6 address is 16 bytes, not ${addr.length}`);
  return [...nfproto(NFPROTO_IPV6), payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV6_DADDR_OFFSET, 16, NFT_REG_1), cmp(op, NFT_REG_1, addr)];
}

/**
 * `ip saddr 10.88.0.0/16` (or daddr; op NEQ for `!=`), in an inet table. A byte-aligned prefix
 * loads only its bytes; any other prefix loads 4 bytes and masks them with bitwise.
 */
export function ipPrefix(field: "saddr" | "daddr", net: number, prefix: number, op = NFT_CMP_EQ): Expr[] {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new RangeError(`bad prefix /${prefix}`);
  const offset = field === "saddr" ? IPV4_SADDR_OFFSET : IPV4_DADDR_OFFSET;
  const m = ipMask(prefix);
  const addr = new Uint8Array(4);
  new DataView(addr.buffer).setUint32(0, (net & m) >>> 0, false);
  const out = nfproto(NFPROTO_IPV4);
  if (prefix % 8 === 0) {
    if (prefix === 0) throw new RangeError("a /0 prefix matches everything: leave the match out");
    out.push(payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, offset, prefix / 8, NFT_REG_1));
    out.push(cmp(op, NFT_REG_1, addr.subarray(0, prefix / 8)));
  } else {
    const mb = new Uint8Array(4);
    new DataView(mb.buffer).setUint32(0, m, false);
    out.push(payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, offset, 4, NFT_REG_1));
    out.push(bitwise(NFT_REG_1, NFT_REG_1, mb));
    out.push(cmp(op, NFT_REG_1, addr));
  }
  return out;
}

/**
 * `ip6 saddr fd00:1::/64` (or daddr; op NEQ for `!=`), in an inet table, as nft writes it: a
 * byte-aligned prefix loads only its bytes (8 for a /64); any other loads all 16 and masks them.
 * The address is 16 bytes, which NFT_REG_1 (16 bytes wide) holds whole.
 */
export function ip6Prefix(field: "saddr" | "daddr", p: IpPrefix, op = NFT_CMP_EQ): Expr[] {
  if (p.family !== 6 || !Number.isInteger(p.prefix) || p.prefix < 1 || p.prefix > 128) throw new RangeError(`bad IPv6 prefix /${p.prefix}`);
  const offset = field === "saddr" ? IPV6_SADDR_OFFSET : IPV6_DADDR_OFFSET;
  const addr = ipBytes({ family: 6, value: p.net });
  const out = nfproto(NFPROTO_IPV6);
  if (p.prefix % 8 === 0) {
    out.push(payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, offset, p.prefix / 8, NFT_REG_1));
    out.push(cmp(op, NFT_REG_1, addr.subarray(0, p.prefix / 8)));
  } else {
    const all = (1n << 128n) - 1n;
    const mb = ipBytes({ family: 6, value: (all << BigInt(128 - p.prefix)) & all });
    out.push(payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, offset, 16, NFT_REG_1));
    out.push(bitwise(NFT_REG_1, NFT_REG_1, mb));
    out.push(cmp(op, NFT_REG_1, addr));
  }
  return out;
}

/** `fib daddr type local` (or `!= local`): route type of the destination, compared in host byte order. */
export function fibDaddrType(rtnType: number, op = NFT_CMP_EQ): Expr[] {
  return [fib(NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1), cmp(op, NFT_REG_1, u32Host(rtnType))];
}

/** `ct status dnat` (any of the IPS_* bits set): status is a host-order u32. */
export function ctStatusAny(bits: number): Expr[] {
  return [
    ctLoad(NFT_CT_STATUS, NFT_REG_1),
    bitwise(NFT_REG_1, NFT_REG_1, u32Host(bits)),
    cmp(NFT_CMP_NEQ, NFT_REG_1, u32Host(0)),
  ];
}

/**
 * `ct state & BITS == 0` (none of them: `ct state != established,related` for one bit each, as
 * nft writes a mask): ct state is a host-order u32 of NF_CT_STATE_* bits.
 */
export function ctStateNone(bits: number): Expr[] {
  return [ctLoad(NFT_CT_STATE, NFT_REG_1), bitwise(NFT_REG_1, NFT_REG_1, u32Host(bits)), cmp(NFT_CMP_EQ, NFT_REG_1, u32Host(0))];
}

/** One field of a concatenation: how many bytes it is and how to load it into a register. */
export interface Field {
  readonly len: number;
  load(dreg: Register): Expr;
  /** Matches that must precede the load (nft's protocol dependency). */
  readonly needs?: () => Expr[];
}

export const fields = {
  /** `meta l4proto` */
  l4proto: { len: 1, load: (r: Register) => metaLoad(NFT_META_L4PROTO, r) } satisfies Field,
  /** `th dport`: destination port of any transport header that has one (tcp, udp, sctp, ...). */
  thDport: { len: 2, load: (r: Register) => payloadLoad(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, r) } satisfies Field,
  /** `ip daddr` */
  ipDaddr: {
    len: 4,
    load: (r: Register) => payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV4_DADDR_OFFSET, 4, r),
    needs: () => nfproto(NFPROTO_IPV4),
  } satisfies Field,
  /** `ip6 daddr` */
  ip6Daddr: {
    len: 16,
    load: (r: Register) => payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV6_DADDR_OFFSET, 16, r),
    needs: () => nfproto(NFPROTO_IPV6),
  } satisfies Field,
  /** `meta iifname` */
  iifname: { len: IFNAMSIZ, load: (r: Register) => metaLoad(NFT_META_IIFNAME, r) } satisfies Field,
  /** `meta oifname` */
  oifname: { len: IFNAMSIZ, load: (r: Register) => metaLoad(NFT_META_OIFNAME, r) } satisfies Field,
  /** `ip saddr` */
  ipSaddr: {
    len: 4,
    load: (r: Register) => payloadLoad(NFT_PAYLOAD_NETWORK_HEADER, IPV4_SADDR_OFFSET, 4, r),
    needs: () => nfproto(NFPROTO_IPV4),
  } satisfies Field,
};

/**
 * `a . b . c`: loads each field into the next free 32-bit registers from `first` on. Returns the
 * expressions (dependencies first) and the register the concatenation starts in.
 */
export function concat(parts: readonly Field[], first = 0): { exprs: Expr[]; reg: Register } {
  const deps: Expr[] = [];
  const loads: Expr[] = [];
  let n = first;
  for (const f of parts) {
    if (f.needs) deps.push(...f.needs());
    loads.push(f.load(reg32(n)));
    n += padded(f.len) / 4;
  }
  if (n > 16) throw new RangeError("concatenation does not fit in the registers");
  return { exprs: [...deps, ...loads], reg: reg32(first) };
}

/** `a . b @set` (or `!= @set`): the fields, concatenated, looked up in a named set. */
export function inSet(parts: readonly Field[], set: string, invert = false): Expr[] {
  const k = concat(parts);
  return [...k.exprs, lookup({ set, sreg: k.reg, invert })];
}
