// A table spec in nft's own input language, for `tsnet explain`: what a person would type to get
// the same ruleset. The rules are read back from the bytes tsnet would send (each Expr encoded,
// its attributes decoded), not from a second description kept beside them, so the text cannot
// drift from what tsnet writes. The bytes are turned into nft syntax the way `nft list` does it:
// registers are followed from the loads that fill them to the cmp, lookup or nat that reads them,
// and a protocol match nft would add by itself (`meta nfproto ipv4` before `ip daddr` in an inet
// table, `meta l4proto udp` before `udp dport`) is left out, as nft leaves it out when printing.
// Anything this file does not know is an error, never a guess: the text is only worth showing if
// `nft -f` of it gives back what tsnet writes (test/explain.test.ts loads it and compares).
import { NetlinkWriter } from "../netlink/writer.ts";
import { formatIp, ipFromBytes } from "../ip/addr.ts";
import {
  IFNAMSIZ,
  NF_ACCEPT,
  NF_DROP,
  NF_IP_PRI_FILTER,
  NF_IP_PRI_MANGLE,
  NF_IP_PRI_NAT_DST,
  NF_IP_PRI_NAT_SRC,
  NF_IP_PRI_RAW,
  NFPROTO_IPV4,
  NFPROTO_IPV6,
  NFT_CMP_EQ,
  NFT_CMP_NEQ,
  NFT_CT_STATE,
  NFT_CT_STATUS,
  NFT_FIB_RESULT_ADDRTYPE,
  NFT_GOTO,
  NFT_JUMP,
  NFT_META_IIFNAME,
  NFT_META_L4PROTO,
  NFT_META_NFPROTO,
  NFT_META_OIFNAME,
  NFT_NAT_DNAT,
  NFT_NAT_SNAT,
  NFT_PAYLOAD_NETWORK_HEADER,
  NFT_PAYLOAD_TRANSPORT_HEADER,
  NFT_REG_1,
  NFT_REG32_00,
  NFT_REG_VERDICT,
  NFT_RETURN,
  NFTA_BITWISE_DREG,
  NFTA_BITWISE_LEN,
  NFTA_BITWISE_MASK,
  NFTA_BITWISE_SREG,
  NFTA_BITWISE_XOR,
  NFTA_CMP_DATA,
  NFTA_CMP_OP,
  NFTA_CMP_SREG,
  NFTA_CT_DREG,
  NFTA_CT_KEY,
  NFTA_DATA_VALUE,
  NFTA_DATA_VERDICT,
  NFTA_FIB_DREG,
  NFTA_FIB_FLAGS,
  NFTA_FIB_RESULT,
  NFTA_FIB_F_DADDR,
  NFTA_IMMEDIATE_DATA,
  NFTA_IMMEDIATE_DREG,
  NFTA_LOOKUP_DREG,
  NFTA_LOOKUP_FLAGS,
  NFTA_LOOKUP_SET,
  NFTA_LOOKUP_SREG,
  NFTA_MASQ_FLAGS,
  NFTA_META_DREG,
  NFTA_META_KEY,
  NFTA_NAT_FAMILY,
  NFTA_NAT_FLAGS,
  NFTA_NAT_REG_ADDR_MIN,
  NFTA_NAT_REG_PROTO_MIN,
  NFTA_NAT_TYPE,
  NFTA_PAYLOAD_BASE,
  NFTA_PAYLOAD_DREG,
  NFTA_PAYLOAD_LEN,
  NFTA_PAYLOAD_OFFSET,
  NFTA_VERDICT_CHAIN,
  NFTA_VERDICT_CODE,
  NFT_LOOKUP_F_INV,
  IPPROTO_TCP,
  IPPROTO_UDP,
  NFTNL_UDATA_COMMENT_MAXLEN,
} from "./constants.ts";
import type { ElementAdd, TableSpec } from "./ensure.ts";
import type { Expr } from "./expr/expr.ts";
import { padded } from "./expr/expr.ts";
import type { RuleSpec } from "./rule.ts";
import { attrList, attrString, type RawAttr } from "./schema.ts";
import type { SetElement, SetSpec } from "./set.ts";
import type { FieldType } from "./types.ts";

/** What nft calls a field type's values when printing and parsing them. */
type Kind = "ifname" | "ipv4" | "ipv6" | "inet_proto" | "inet_service" | "nfproto" | "fib_addrtype" | "ct_state" | "ct_status" | "mark";

/** A value loaded into registers: how nft names it, and how its bytes read. */
interface Loaded {
  text: string;
  kind: Kind;
  len: number;
  /** The `meta nfproto`/`meta l4proto` match this load makes implied (nft drops it when printing). */
  implies?: { key: "nfproto" | "l4proto"; value: number };
}

/** A rule being put into words: tokens, some of them dependencies a later load may make implied. */
interface Token {
  text: string;
  dep?: { key: "nfproto" | "l4proto"; value: number };
}

export class NftTextError extends Error {}

function fail(what: string): never {
  throw new NftTextError(`cannot write as nft text: ${what}`);
}

/** 32-bit register number (0..15) of a register as the kernel numbers it. */
function reg32Index(r: number): number {
  if (r >= NFT_REG_1 && r <= NFT_REG_1 + 3) return (r - NFT_REG_1) * 4;
  if (r >= NFT_REG32_00 && r < NFT_REG32_00 + 16) return r - NFT_REG32_00;
  return fail(`register ${r}`);
}

function bytes(v: DataView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** One expression's attributes, decoded from the bytes its encoder writes. */
interface Decoded {
  name: string;
  u32(type: number): number | undefined;
  attr(type: number): RawAttr | undefined;
}

function decode(e: Expr): Decoded {
  const w = new NetlinkWriter(256);
  e.encode(w);
  const view = new DataView(w.buf.buffer.slice(0, w.len));
  const list = attrList(view);
  return {
    name: e.name,
    attr: (t) => list.find((a) => a.type === t),
    u32: (t) => {
      const a = list.find((x) => x.type === t);
      return a ? a.value.getUint32(0, false) : undefined;
    },
  };
}

/** NFTA_DATA_VALUE inside a data nest. */
function dataBytes(a: RawAttr | undefined, what: string): Uint8Array {
  const v = a && attrList(a.value).find((x) => x.type === NFTA_DATA_VALUE);
  if (!v) return fail(`${what} without a value`);
  return bytes(v.value);
}

const PROTOS: Record<number, string> = { [IPPROTO_TCP]: "tcp", [IPPROTO_UDP]: "udp", 1: "icmp", 58: "ipv6-icmp", 132: "sctp" };
const RTN_TYPES = ["unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit"];
const CT_STATES: Record<number, string> = { 1: "invalid", 2: "established", 4: "related", 8: "new", 64: "untracked" };
const CT_STATUS: Record<number, string> = { 1: "expected", 2: "seen-reply", 4: "assured", 8: "confirmed", 16: "snat", 32: "dnat", 512: "dying" };

function quote(s: string, what: string): string {
  // nft's scanner has no escapes inside a quoted string.
  if (/["\n\r\\]/.test(s)) fail(`${what} ${JSON.stringify(s)} holds a character nft cannot quote`);
  return `"${s}"`;
}

function hostU32(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

function flagNames(bits: number, names: Record<number, string>, what: string): string[] {
  const out: string[] = [];
  for (let b = 1; b !== 0 && b <= bits; b <<= 1) {
    if (!(bits & b)) continue;
    const n = names[b];
    if (!n) fail(`${what} bit ${b}`);
    out.push(n);
  }
  return out;
}

/** A value of a kind, from its bytes (len bytes; a shorter prefix of an address is padded). */
function valueText(kind: Kind, b: Uint8Array): string {
  switch (kind) {
    case "ifname": {
      const end = b.indexOf(0);
      return quote(new TextDecoder().decode(end < 0 ? b : b.subarray(0, end)), "interface name");
    }
    case "ipv4":
    case "ipv6": {
      const full = new Uint8Array(kind === "ipv4" ? 4 : 16);
      full.set(b.subarray(0, full.length));
      return formatIp(ipFromBytes(full));
    }
    case "inet_proto":
      return PROTOS[b[0]!] ?? String(b[0]);
    case "inet_service":
      return String((b[0]! << 8) | b[1]!);
    case "nfproto":
      return b[0] === NFPROTO_IPV4 ? "ipv4" : b[0] === NFPROTO_IPV6 ? "ipv6" : String(b[0]);
    case "fib_addrtype":
      return RTN_TYPES[hostU32(b)] ?? fail(`route type ${hostU32(b)}`);
    case "ct_state":
      return flagNames(hostU32(b), CT_STATES, "ct state").join(",");
    case "ct_status":
      return flagNames(hostU32(b), CT_STATUS, "ct status").join(",");
    case "mark":
      return `0x${hostU32(b).toString(16).padStart(8, "0")}`;
  }
}

function kindOf(f: FieldType): Kind {
  switch (f.nftName) {
    case "ipv4_addr": return "ipv4";
    case "ipv6_addr": return "ipv6";
    case "inet_proto": return "inet_proto";
    case "inet_service": return "inet_service";
    case "ifname": return "ifname";
    case "mark": return "mark";
  }
  return fail(`field type ${f.nftName}`);
}

/** A key or data value of a set: its fields, each padded to 4 bytes when concatenated. */
function fieldsText(fields: readonly FieldType[], b: Uint8Array): string {
  if (fields.length === 1) return valueText(kindOf(fields[0]!), b.subarray(0, fields[0]!.len));
  const out: string[] = [];
  let at = 0;
  for (const f of fields) {
    out.push(valueText(kindOf(f), b.subarray(at, at + f.len)));
    at += padded(f.len);
  }
  return out.join(" . ");
}

/** Bits set from the top of a mask, or undefined when the mask is not a prefix. */
function prefixOf(mask: Uint8Array): number | undefined {
  let n = 0;
  let ended = false;
  for (const byte of mask) {
    for (let bit = 7; bit >= 0; bit--) {
      const set = (byte >> bit) & 1;
      if (set && ended) return undefined;
      if (set) n++;
      else ended = true;
    }
  }
  return n;
}

const IPV4_FIELDS: Record<number, string> = { 12: "saddr", 16: "daddr" };
const IPV6_FIELDS: Record<number, string> = { 8: "saddr", 24: "daddr" };
const TH_FIELDS: Record<number, string> = { 0: "sport", 2: "dport" };

/** One rule's expressions as nft syntax. `sets` gives the key and data fields of a named set. */
export function ruleText(exprs: readonly Expr[], sets: ReadonlyMap<string, SetSpec>): string {
  const regs = new Map<number, Loaded>();
  const tokens: Token[] = [];
  // What the rule has matched so far: the network and transport protocol (nft's context).
  let nfproto: number | undefined;
  let l4proto: number | undefined;
  /** Drops the dependency token a load makes implied, as nft does when it prints. */
  const consume = (implies: Loaded["implies"]) => {
    if (!implies) return;
    const i = tokens.findIndex((t) => t.dep && t.dep.key === implies.key && t.dep.value === implies.value);
    if (i >= 0) tokens.splice(i, 1);
  };
  const regOf = (d: Decoded, attr: number, what: string): number => {
    const r = d.u32(attr);
    if (r === undefined) return fail(`${what} without a register`);
    return reg32Index(r);
  };
  const read = (r: number, what: string): Loaded => regs.get(r) ?? fail(`${what} reads register ${r}, which nothing loaded`);
  /** The fields of a concatenation from register r on: as many as the set's key has. */
  const readConcat = (r: number, fields: readonly FieldType[]): { text: string; parts: Loaded[] } => {
    const parts: Loaded[] = [];
    let at = r;
    for (const f of fields) {
      const l = read(at, "lookup");
      if (l.len !== f.len) fail(`a lookup key field of ${l.len} bytes where the set has ${f.len}`);
      parts.push(l);
      at += padded(f.len) / 4;
    }
    return { text: parts.map((p) => p.text).join(" . "), parts };
  };
  for (const e of exprs) {
    const d = decode(e);
    switch (d.name) {
      case "meta": {
        const key = d.u32(NFTA_META_KEY);
        const dreg = regOf(d, NFTA_META_DREG, "meta");
        if (key === NFT_META_IIFNAME) regs.set(dreg, { text: "iifname", kind: "ifname", len: IFNAMSIZ });
        else if (key === NFT_META_OIFNAME) regs.set(dreg, { text: "oifname", kind: "ifname", len: IFNAMSIZ });
        else if (key === NFT_META_NFPROTO) regs.set(dreg, { text: "meta nfproto", kind: "nfproto", len: 1 });
        else if (key === NFT_META_L4PROTO) regs.set(dreg, { text: "meta l4proto", kind: "inet_proto", len: 1 });
        else fail(`meta key ${key}`);
        break;
      }
      case "payload": {
        const base = d.u32(NFTA_PAYLOAD_BASE);
        const offset = d.u32(NFTA_PAYLOAD_OFFSET)!;
        const len = d.u32(NFTA_PAYLOAD_LEN)!;
        const dreg = regOf(d, NFTA_PAYLOAD_DREG, "payload");
        if (base === NFT_PAYLOAD_NETWORK_HEADER) {
          const v6 = nfproto === NFPROTO_IPV6;
          if (nfproto !== NFPROTO_IPV4 && !v6) fail(`a network header load without a protocol match before it`);
          const field = (v6 ? IPV6_FIELDS : IPV4_FIELDS)[offset];
          const full = v6 ? 16 : 4;
          if (!field || len > full) fail(`network header bytes ${offset}+${len}`);
          regs.set(dreg, {
            text: `${v6 ? "ip6" : "ip"} ${field}`, kind: v6 ? "ipv6" : "ipv4", len,
            implies: { key: "nfproto", value: v6 ? NFPROTO_IPV6 : NFPROTO_IPV4 },
          });
        } else if (base === NFT_PAYLOAD_TRANSPORT_HEADER) {
          const field = TH_FIELDS[offset];
          if (!field || len !== 2) fail(`transport header bytes ${offset}+${len}`);
          // After `meta l4proto tcp`, nft says `tcp dport` (and hides the l4proto match).
          const proto = l4proto !== undefined ? PROTOS[l4proto] : undefined;
          const named = proto === "tcp" || proto === "udp";
          regs.set(dreg, {
            text: `${named ? proto : "th"} ${field}`, kind: "inet_service", len,
            ...(named && { implies: { key: "l4proto" as const, value: l4proto! } }),
          });
        } else {
          fail(`payload base ${base}`);
        }
        break;
      }
      case "ct": {
        const key = d.u32(NFTA_CT_KEY);
        const dreg = regOf(d, NFTA_CT_DREG, "ct");
        if (key === NFT_CT_STATE) regs.set(dreg, { text: "ct state", kind: "ct_state", len: 4 });
        else if (key === NFT_CT_STATUS) regs.set(dreg, { text: "ct status", kind: "ct_status", len: 4 });
        else fail(`ct key ${key}`);
        break;
      }
      case "fib": {
        const flags = d.u32(NFTA_FIB_FLAGS);
        const result = d.u32(NFTA_FIB_RESULT);
        if (flags !== NFTA_FIB_F_DADDR || result !== NFT_FIB_RESULT_ADDRTYPE) fail(`fib flags ${flags} result ${result}`);
        regs.set(regOf(d, NFTA_FIB_DREG, "fib"), { text: "fib daddr type", kind: "fib_addrtype", len: 4 });
        break;
      }
      case "bitwise": {
        const src = read(regOf(d, NFTA_BITWISE_SREG, "bitwise"), "bitwise");
        const dreg = regOf(d, NFTA_BITWISE_DREG, "bitwise");
        const len = d.u32(NFTA_BITWISE_LEN)!;
        const mask = dataBytes(d.attr(NFTA_BITWISE_MASK), "bitwise mask");
        const xor = dataBytes(d.attr(NFTA_BITWISE_XOR), "bitwise xor");
        if (xor.some((x) => x !== 0)) fail("a bitwise xor");
        if (len !== mask.length) fail("a bitwise length unlike its mask");
        if (src.kind === "ipv4" || src.kind === "ipv6") {
          // An address masked to a prefix: the cmp that follows prints it as addr/prefix.
          const p = prefixOf(mask);
          if (p === undefined) fail(`an address mask that is not a prefix`);
          regs.set(dreg, { ...src, text: src.text, masked: p } as Loaded & { masked: number });
        } else if (src.kind === "ct_state" || src.kind === "ct_status") {
          regs.set(dreg, { ...src, masked: hostU32(mask) } as Loaded & { masked: number });
        } else {
          fail(`a bitwise on ${src.text}`);
        }
        break;
      }
      case "cmp": {
        const src = read(regOf(d, NFTA_CMP_SREG, "cmp"), "cmp") as Loaded & { masked?: number };
        const op = d.u32(NFTA_CMP_OP);
        if (op !== NFT_CMP_EQ && op !== NFT_CMP_NEQ) fail(`cmp op ${op}`);
        const data = dataBytes(d.attr(NFTA_CMP_DATA), "cmp");
        const neg = op === NFT_CMP_NEQ ? "!= " : "";
        consume(src.implies);
        if (src.kind === "ct_state" || src.kind === "ct_status") {
          const bits = src.masked;
          if (bits === undefined || hostU32(data) !== 0) fail(`${src.text} compared without a mask`);
          const names = flagNames(bits, src.kind === "ct_state" ? CT_STATES : CT_STATUS, src.text);
          // `ct status dnat`: any of one bit; other forms spelled out as the mask they are.
          if (op === NFT_CMP_NEQ && names.length === 1) tokens.push({ text: `${src.text} ${names[0]}` });
          else tokens.push({ text: `${src.text} & (${names.join("|")}) ${op === NFT_CMP_EQ ? "==" : "!="} 0` });
          break;
        }
        if (src.kind === "ipv4" || src.kind === "ipv6") {
          const full = src.kind === "ipv4" ? 32 : 128;
          const prefix = (src as { masked?: number }).masked ?? data.length * 8;
          const addr = valueText(src.kind, data);
          tokens.push({ text: `${src.text} ${neg}${prefix === full ? addr : `${addr}/${prefix}`}` });
          break;
        }
        if (data.length !== src.len && !(src.kind === "fib_addrtype")) fail(`${src.text} compared with ${data.length} bytes`);
        const text = `${src.text} ${neg}${valueText(src.kind, data)}`;
        if (src.kind === "nfproto" && op === NFT_CMP_EQ) {
          nfproto = data[0];
          tokens.push({ text, dep: { key: "nfproto", value: data[0]! } });
        } else if (src.kind === "inet_proto" && src.text === "meta l4proto" && op === NFT_CMP_EQ) {
          l4proto = data[0];
          tokens.push({ text, dep: { key: "l4proto", value: data[0]! } });
        } else {
          tokens.push({ text });
        }
        break;
      }
      case "lookup": {
        const name = d.attr(NFTA_LOOKUP_SET);
        const set = name ? sets.get(attrString(name.value)) : undefined;
        if (!set) return fail(`a lookup in a set the table does not declare`);
        const key = readConcat(regOf(d, NFTA_LOOKUP_SREG, "lookup"), set.key);
        for (const p of key.parts) consume(p.implies);
        const inv = ((d.u32(NFTA_LOOKUP_FLAGS) ?? 0) & NFT_LOOKUP_F_INV) !== 0;
        if (d.attr(NFTA_LOOKUP_DREG) === undefined) {
          tokens.push({ text: `${key.text} ${inv ? "!= " : ""}@${set.name}` });
          break;
        }
        if (inv || !set.data) fail(`a map lookup in @${set.name}`);
        // The data lands in the registers from dreg on: nat reads it from there.
        let at = regOf(d, NFTA_LOOKUP_DREG, "lookup");
        set.data.forEach((f, i) => {
          regs.set(at, { text: `${key.text} map @${set.name}`, kind: kindOf(f), len: f.len, mapField: i } as Loaded);
          at += padded(f.len) / 4;
        });
        break;
      }
      case "immediate": {
        const dreg = d.u32(NFTA_IMMEDIATE_DREG);
        const data = d.attr(NFTA_IMMEDIATE_DATA);
        if (!data) fail("an immediate without data");
        if (dreg === NFT_REG_VERDICT) {
          const v = attrList(data.value).find((a) => a.type === NFTA_DATA_VERDICT);
          const va = v ? attrList(v.value) : [];
          const code = va.find((a) => a.type === NFTA_VERDICT_CODE)?.value.getInt32(0, false);
          const chain = va.find((a) => a.type === NFTA_VERDICT_CHAIN);
          if (code === NF_ACCEPT) tokens.push({ text: "accept" });
          else if (code === NF_DROP) tokens.push({ text: "drop" });
          else if (code === NFT_RETURN) tokens.push({ text: "return" });
          else if ((code === NFT_JUMP || code === NFT_GOTO) && chain) tokens.push({ text: `${code === NFT_JUMP ? "jump" : "goto"} ${attrString(chain.value)}` });
          else fail(`verdict ${code}`);
        } else {
          // A constant for nat: its kind is decided by the register nat reads it from.
          const b = dataBytes(data, "immediate");
          regs.set(reg32Index(dreg!), { text: "", kind: "mark", len: b.length, constant: b } as Loaded);
        }
        break;
      }
      case "counter":
        tokens.push({ text: "counter" });
        break;
      case "masq": {
        if (d.u32(NFTA_MASQ_FLAGS)) fail("masquerade flags");
        tokens.push({ text: "masquerade" });
        break;
      }
      case "nat": {
        const type = d.u32(NFTA_NAT_TYPE);
        const fam = d.u32(NFTA_NAT_FAMILY);
        if (type !== NFT_NAT_DNAT && type !== NFT_NAT_SNAT) fail(`nat type ${type}`);
        if (fam !== NFPROTO_IPV4 && fam !== NFPROTO_IPV6) fail(`nat family ${fam}`);
        if (d.u32(NFTA_NAT_FLAGS)) fail("nat flags");
        const v6 = fam === NFPROTO_IPV6;
        const addrReg = d.u32(NFTA_NAT_REG_ADDR_MIN);
        const protoReg = d.u32(NFTA_NAT_REG_PROTO_MIN);
        if (addrReg === undefined) fail("nat without an address");
        const addr = read(reg32Index(addrReg), "nat") as Loaded & { mapField?: number; constant?: Uint8Array };
        const port = protoReg === undefined ? undefined : read(reg32Index(protoReg), "nat") as Loaded & { mapField?: number; constant?: Uint8Array };
        let to: string;
        if (addr.mapField === 0) {
          // Both from one map's data (address . port): `to KEY map @MAP`.
          if (port && !(port.mapField === 1 && port.text === addr.text)) fail("nat reading a port from elsewhere than its map");
          to = addr.text;
        } else if (addr.constant) {
          const a = valueText(v6 ? "ipv6" : "ipv4", addr.constant);
          if (port && !port.constant) fail("nat with a constant address and a loaded port");
          const p = port?.constant ? valueText("inet_service", port.constant) : undefined;
          to = p === undefined ? a : v6 ? `[${a}]:${p}` : `${a}:${p}`;
        } else {
          return fail(`nat from ${addr.text}`);
        }
        tokens.push({ text: `${type === NFT_NAT_DNAT ? "dnat" : "snat"} ${v6 ? "ip6" : "ip"} to ${to}` });
        break;
      }
      default:
        fail(`expression "${d.name}"`);
    }
  }
  return tokens.map((t) => t.text).join(" ");
}

const PRIORITIES: Record<number, string> = {
  [NF_IP_PRI_RAW]: "raw",
  [NF_IP_PRI_MANGLE]: "mangle",
  [NF_IP_PRI_NAT_DST]: "dstnat",
  [NF_IP_PRI_FILTER]: "filter",
  [NF_IP_PRI_NAT_SRC]: "srcnat",
};

function setType(s: SetSpec): string {
  const names = (f: readonly FieldType[]) => f.map((x) => x.nftName).join(" . ");
  return s.data ? `${names(s.key)} : ${names(s.data)}` : names(s.key);
}

/** One element as nft writes it: `KEY [comment "..."] [: DATA]`. */
export function elementText(s: SetSpec, e: SetElement): string {
  let t = fieldsText(s.key, e.key);
  if (e.comment !== undefined) {
    if (new TextEncoder().encode(e.comment).length + 1 > NFTNL_UDATA_COMMENT_MAXLEN) fail(`comment longer than nft allows`);
    t += ` comment ${quote(e.comment, "comment")}`;
  }
  if (s.data) {
    if (!e.data) fail(`an element of map @${s.name} without data`);
    t += ` : ${fieldsText(s.data, e.data)}`;
  } else if (e.data) {
    fail(`an element of set @${s.name} with data`);
  }
  return t;
}

function setsOf(spec: TableSpec): Map<string, SetSpec> {
  return new Map((spec.sets ?? []).map((s) => [s.name, s]));
}

function ruleLine(r: RuleSpec, sets: ReadonlyMap<string, SetSpec>): string {
  const text = ruleText(r.exprs, sets);
  return r.comment === undefined ? text : `${text} comment ${quote(r.comment, "comment")}`;
}

export interface TableTextOptions {
  /**
   * The table may exist already (with other elements, older rules): the text then makes it
   * match the spec the way ensureTable does, in one transaction: what is missing is added, each
   * chain with rules is flushed and written again, each set with listed elements emptied and
   * filled again, and maps without a list (the published ports) are left as they are.
   * Otherwise the text is the declaration alone, as `nft list table` prints it.
   */
  existing?: boolean;
}

/**
 * The table in nft's input language (one `nft -f` transaction). Throws NftTextError for an
 * expression or value this file cannot put into words.
 */
export function tableText(spec: TableSpec, o: TableTextOptions = {}): string {
  const sets = setsOf(spec);
  const id = `${spec.family} ${spec.name}`;
  const out: string[] = [];
  const block = (full: boolean) => {
    out.push(`table ${id} {`);
    for (const s of spec.sets ?? []) {
      out.push(`\t${s.data ? "map" : "set"} ${s.name} {`, `\t\ttype ${setType(s)}`);
      if (full && s.elements?.length) out.push(`\t\telements = { ${s.elements.map((e) => elementText(s, e)).join(", ")} }`);
      out.push("\t}");
    }
    for (const c of spec.chains ?? []) {
      out.push(`\tchain ${c.name} {`);
      if (c.base) out.push(`\t\t${chainHead(c)}`);
      if (full) for (const r of c.rules ?? []) out.push(`\t\t${ruleLine(r, sets)}`);
      out.push("\t}");
    }
    out.push("}");
  };
  if (!o.existing) {
    block(true);
    return out.join("\n") + "\n";
  }
  // Declarations first (adding what exists is a no-op), then the contents the spec fixes.
  block(false);
  for (const s of spec.sets ?? []) {
    if (!s.elements) continue;
    out.push(`flush set ${id} ${s.name}`);
    if (s.elements.length) out.push(`add element ${id} ${s.name} { ${s.elements.map((e) => elementText(s, e)).join(", ")} }`);
  }
  for (const c of spec.chains ?? []) {
    if (!c.rules) continue;
    out.push(`flush chain ${id} ${c.name}`);
    for (const r of c.rules) out.push(`add rule ${id} ${c.name} ${ruleLine(r, sets)}`);
  }
  return out.join("\n") + "\n";
}

/** Elements added to sets of the table (published ports), one `add element` per set. */
export function elementsText(spec: TableSpec, adds: readonly ElementAdd[]): string {
  const sets = setsOf(spec);
  const id = `${spec.family} ${spec.name}`;
  return adds.filter((a) => a.elements.length).map((a) => {
    const s = sets.get(a.set) ?? fail(`elements for @${a.set}, which the table does not declare`);
    return `add element ${id} ${a.set} { ${a.elements.map((e) => elementText(s, e)).join(", ")} }\n`;
  }).join("");
}

/** One change of a transaction that was planned against the table as read (see src/plan/ops.ts). */
export type NftChangeText =
  | { change: "add-table" }
  | { change: "add-set"; set: SetSpec }
  | { change: "add-chain"; chain: import("./chain.ts").ChainSpec }
  | { change: "add-rule"; chain: string; rule: RuleSpec }
  | { change: "delete-rule"; chain: string; handle: bigint; comment?: string }
  | { change: "add-elements"; set: string; elements: readonly SetElement[] }
  | { change: "delete-elements"; set: string; elements: readonly SetElement[] };

function chainHead(c: import("./chain.ts").ChainSpec): string {
  if (!c.base) return "";
  // nft 1.0 knows dstnat only on prerouting and srcnat only on postrouting: a number elsewhere.
  const named = PRIORITIES[c.base.priority];
  const allowed = (named !== "dstnat" && named !== "srcnat") || c.base.hook === (named === "dstnat" ? "prerouting" : "postrouting");
  const prio = named && allowed ? named : String(c.base.priority);
  return `type ${c.base.type} hook ${c.base.hook} priority ${prio}; policy ${c.base.policy ?? "accept"};`;
}

/**
 * The changes of one transaction as nft commands, in order (nft -f sends them as one batch).
 * `spec` declares the sets that elements and lookups name.
 */
export function changesText(spec: TableSpec, changes: readonly NftChangeText[]): string {
  const sets = setsOf(spec);
  for (const c of changes) if (c.change === "add-set") sets.set(c.set.name, c.set);
  const id = `${spec.family} ${spec.name}`;
  const setOf = (name: string) => sets.get(name) ?? fail(`elements for @${name}, which the table does not declare`);
  return changes.map((c) => {
    switch (c.change) {
      case "add-table":
        return `add table ${id}\n`;
      case "add-set":
        return `add ${c.set.data ? "map" : "set"} ${id} ${c.set.name} { type ${setType(c.set)}; }\n`;
      case "add-chain":
        return `add chain ${id} ${c.chain.name}${c.chain.base ? ` { ${chainHead(c.chain)} }` : ""}\n`;
      case "add-rule":
        return `add rule ${id} ${c.chain} ${ruleLine(c.rule, sets)}\n`;
      case "delete-rule":
        return `delete rule ${id} ${c.chain} handle ${c.handle}${c.comment !== undefined ? `  # ${c.comment}` : ""}\n`;
      case "add-elements":
      case "delete-elements": {
        const s = setOf(c.set);
        const verb = c.change === "add-elements" ? "add" : "delete";
        // A deletion names keys only.
        const items = c.elements.map((e) => (verb === "add" ? elementText(s, e) : fieldsText(s.key, e.key)));
        return items.length ? `${verb} element ${id} ${c.set} { ${items.join(", ")} }\n` : "";
      }
    }
  }).join("");
}

/** Elements deleted from sets of the table (by key). */
export function elementDeletesText(spec: TableSpec, dels: readonly ElementAdd[]): string {
  return changesText(spec, dels.map((d) => ({ change: "delete-elements" as const, set: d.set, elements: d.elements })));
}
