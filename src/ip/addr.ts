// Addresses that carry their family. Every layer above the wire (network records, leases, IPAM,
// DNS answers) handles IPv4 and IPv6 alike through these types; an address is an unsigned
// integer of 32 or 128 bits held as a bigint, so lease arithmetic and overlap checks are the same
// code for both families. IPv4-only wire encoders (nf_tables IPv4 matches) convert with toV4().
import { formatIPv4, parseIPv4 } from "./ipv4.ts";

export type Family = 4 | 6;

export interface IpAddress {
  readonly family: Family;
  /** The address as an unsigned integer, most significant byte first on the wire. */
  readonly value: bigint;
}

export interface IpPrefix {
  readonly family: Family;
  /** Network address (host bits zero). */
  readonly net: bigint;
  readonly prefix: number;
}

export function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function ipv4(value: number): IpAddress {
  return { family: 4, value: BigInt(value >>> 0) };
}

/** The IPv4 address as a u32, for IPv4-only encoders; throws for IPv6. */
export function toV4(a: IpAddress): number {
  if (a.family !== 4) throw new RangeError(`${formatIp(a)} is not an IPv4 address`);
  return Number(a.value);
}

function parseV6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length > 45) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      // A dotted IPv4 tail (::ffff:192.0.2.1) stands for the last two groups.
      if (i === items.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  let v = 0n;
  for (const g of [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail]) v = (v << 16n) | BigInt(g);
  return v;
}

export function parseIp(s: string): IpAddress | undefined {
  const v4 = parseIPv4(s);
  if (v4 !== undefined) return ipv4(v4);
  const v6 = s.includes(":") ? parseV6(s) : undefined;
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

/** RFC 5952 text: lowercase, the longest run of two or more zero groups as "::". */
function formatV6(v: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function formatIp(a: IpAddress): string {
  return a.family === 4 ? formatIPv4(Number(a.value)) : formatV6(a.value);
}

/** Network byte order, 4 or 16 bytes. */
export function ipBytes(a: IpAddress): Uint8Array {
  const n = bitsOf(a.family) / 8;
  const out = new Uint8Array(n);
  let v = a.value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function ipFromBytes(b: Uint8Array): IpAddress {
  if (b.length !== 4 && b.length !== 16) throw new RangeError(`an address is 4 or 16 bytes, not ${b.length}`);
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return { family: b.length === 4 ? 4 : 6, value: v };
}

function maskOf(family: Family, prefix: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return prefix === 0 ? 0n : (all << (bits - BigInt(prefix))) & all;
}

/**
 * "10.77.0.0/16" or "fd00:77::/64". With `strict`, host bits must be zero (a subnet given as
 * 10.77.0.1/16 is a mistake worth naming); otherwise they are cleared.
 */
export function parsePrefix(s: string, strict = false): IpPrefix | undefined {
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const addr = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!addr || !/^\d{1,3}$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bitsOf(addr.family)) return undefined;
  const net = addr.value & maskOf(addr.family, prefix);
  if (strict && net !== addr.value) return undefined;
  return { family: addr.family, net, prefix };
}

export function formatPrefix(p: IpPrefix): string {
  return `${formatIp({ family: p.family, value: p.net })}/${p.prefix}`;
}

export function contains(p: IpPrefix, a: IpAddress): boolean {
  return p.family === a.family && (a.value & maskOf(p.family, p.prefix)) === p.net;
}

export function overlaps(a: IpPrefix, b: IpPrefix): boolean {
  if (a.family !== b.family) return false;
  const m = maskOf(a.family, Math.min(a.prefix, b.prefix));
  return (a.net & m) === (b.net & m);
}

/** The n-th address of the prefix (0 is the network address itself). */
export function nth(p: IpPrefix, n: bigint): IpAddress {
  return { family: p.family, value: p.net + n };
}

/** How many addresses the prefix spans. */
export function sizeOf(p: IpPrefix): bigint {
  return 1n << BigInt(bitsOf(p.family) - p.prefix);
}

export function sameIp(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/** IPv6 link-local space: no network's (every IPv6 link has an address and a route in it). */
export const LINK_LOCAL_V6: IpPrefix = parsePrefix("fe80::/10")!;
