// IPv4 addresses as unsigned 32-bit numbers: arithmetic for leases and overlap checks is plain
// integer math, and the wire form is 4 bytes in network order.

export interface Cidr {
  /** Network address (host bits zero) as u32. */
  net: number;
  prefix: number;
}

export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = v * 256 + o;
  }
  return v >>> 0;
}

export function formatIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

export function ipv4Bytes(v: number): Uint8Array {
  return new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
}

export function ipv4FromBytes(b: ArrayLike<number>): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr(s: string): Cidr | undefined {
  const [a, p, extra] = s.split("/");
  if (a === undefined || p === undefined || extra !== undefined || !/^\d{1,2}$/.test(p)) return undefined;
  const addr = parseIPv4(a);
  const prefix = Number(p);
  if (addr === undefined || prefix > 32) return undefined;
  return { net: (addr & mask(prefix)) >>> 0, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.net)}/${c.prefix}`;
}

export function contains(c: Cidr, addr: number): boolean {
  return ((addr & mask(c.prefix)) >>> 0) === c.net;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.net & mask(p)) >>> 0) === ((b.net & mask(p)) >>> 0);
}

/** Last address of the range (the broadcast address for a subnet). */
export function lastAddress(c: Cidr): number {
  return (c.net | (~mask(c.prefix) >>> 0)) >>> 0;
}
