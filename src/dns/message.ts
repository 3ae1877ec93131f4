// The few pieces of the DNS wire format (RFC 1035) a container's resolver needs: read a query's
// header and question, and build an answer of A/AAAA/PTR records or an error. A query it can read
// and cannot answer is forwarded upstream untouched, so the rest never needs to be understood here.

export const TYPE_A = 1;
export const TYPE_PTR = 12;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

const HEADER_LEN = 12;
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
/** RFC 1035 4.2.1: what a client without EDNS takes over UDP. */
const UDP_PLAIN_LIMIT = 512;
/** RFC 1035 3.1: a name, length octets included, is at most 255 octets on the wire. */
const MAX_NAME_WIRE = 255;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const OPCODE_MASK = 0x7800;
const DECODER = new TextDecoder();

export interface Question {
  id: number;
  flags: number;
  /** Lower-case, without the trailing dot. */
  name: string;
  type: number;
  qclass: number;
  /** Byte length of header + question: the part an answer repeats. */
  end: number;
}

/**
 * Header and the single question of a standard query; undefined for anything else (several
 * questions, compression in the question, a name over 255 octets, a truncated message), which
 * screenQuery answers with FORMERR.
 */
export function parseQuestion(msg: Uint8Array): Question | undefined {
  if (msg.length < HEADER_LEN + 5) return undefined;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = v.getUint16(2);
  if (flags & FLAG_QR || (flags & OPCODE_MASK) !== 0 || v.getUint16(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = HEADER_LEN;
  for (;;) {
    if (at >= msg.length) return undefined;
    const len = msg[at]!;
    if (len === 0) {
      at++;
      break;
    }
    if (len > 63 || at + 1 + len > msg.length || at + 1 + len + 1 - HEADER_LEN > MAX_NAME_WIRE) return undefined;
    labels.push(DECODER.decode(msg.subarray(at + 1, at + 1 + len)));
    at += 1 + len;
  }
  if (at + 4 > msg.length) return undefined;
  return { id: v.getUint16(0), flags, name: labels.join(".").toLowerCase(), type: v.getUint16(at), qclass: v.getUint16(at + 2), end: at + 4 };
}

/**
 * What a resolver does with a packet sent to it, read from the header before anything else, as
 * Docker's embedded DNS does: a standard query of one readable question is answered; a response
 * (QR set) or a packet too short for a header is dropped (answering would let two resolvers, or a
 * spoofed source, bounce packets forever); another opcode gets NOTIMP, anything else FORMERR.
 */
export function screenQuery(msg: Uint8Array): { question: Question } | { error: Uint8Array } | undefined {
  if (msg.length < HEADER_LEN || msg[2]! & 0x80) return undefined;
  if ((((msg[2]! << 8) | msg[3]!) & OPCODE_MASK) !== 0) return { error: buildHeaderError(msg, RCODE_NOTIMP)! };
  const question = parseQuestion(msg);
  return question ? { question } : { error: buildHeaderError(msg, RCODE_FORMERR)! };
}

export interface Answer {
  type: number;
  /** 4 bytes for A, 16 for AAAA, an encoded name for PTR (see encodeName). */
  data: Uint8Array;
  ttl: number;
}

/** A name as length-prefixed labels ending in the root label. */
export function encodeName(name: string): Uint8Array {
  const parts = name.replace(/\.$/, "").split(".").filter(Boolean);
  const enc = parts.map((p) => new TextEncoder().encode(p));
  const out = new Uint8Array(enc.reduce((n, p) => n + 1 + p.length, 1));
  let at = 0;
  for (const p of enc) {
    out[at++] = p.length;
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Reply: | id | flags: QR AA, the query's RD, RA, rcode | qd 1 | an n | ns 0 | ar 0 | question |
//        then per answer | name: pointer c0 0c to the question | type | class IN | ttl u32 | rdlength | rdata |
export function buildReply(query: Uint8Array, q: Question, rcode: number, answers: readonly Answer[] = []): Uint8Array {
  const size = q.end + answers.reduce((n, a) => n + 12 + a.data.length, 0);
  const out = new Uint8Array(size);
  out.set(query.subarray(0, q.end));
  const v = new DataView(out.buffer);
  v.setUint16(2, FLAG_QR | FLAG_AA | (q.flags & FLAG_RD) | FLAG_RA | rcode);
  v.setUint16(4, 1);
  v.setUint16(6, answers.length);
  v.setUint16(8, 0);
  v.setUint16(10, 0);
  let at = q.end;
  for (const a of answers) {
    v.setUint16(at, 0xc00c);
    v.setUint16(at + 2, a.type);
    v.setUint16(at + 4, CLASS_IN);
    v.setUint32(at + 6, a.ttl);
    v.setUint16(at + 10, a.data.length);
    out.set(a.data, at + 12);
    at += 12 + a.data.length;
  }
  return out;
}

/**
 * The most a UDP answer to this query may carry: 512 bytes (RFC 1035), or the payload size its
 * EDNS OPT record advertises (RFC 6891: the OPT's class field), when the one additional record
 * after the question is an OPT.
 *
 *   | header (arcount 1) | question, ending at q.end | root name 00 | type OPT 00 29 | class: payload size u16 | ...
 */
export function udpAnswerLimit(query: Uint8Array, q: Question): number {
  const v = new DataView(query.buffer, query.byteOffset, query.byteLength);
  if (query.length < q.end + 5 || v.getUint16(10) !== 1 || query[q.end] !== 0 || v.getUint16(q.end + 1) !== TYPE_OPT) return UDP_PLAIN_LIMIT;
  return Math.max(UDP_PLAIN_LIMIT, v.getUint16(q.end + 3));
}

/**
 * An answer as it may go back over UDP: as it is if it fits the client's limit, else its header
 * with TC set and the question alone (RFC 1035 4.2.1, RFC 7766), so the client asks again over TCP
 * instead of taking a datagram larger than it said it can take.
 */
export function fitForUdp(answer: Uint8Array, query: Uint8Array, q: Question): Uint8Array {
  if (answer.length <= udpAnswerLimit(query, q) || answer.length < HEADER_LEN) return answer;
  const out = new Uint8Array(q.end);
  out.set(answer.subarray(0, 4));
  out.set(query.subarray(HEADER_LEN, q.end), HEADER_LEN);
  const v = new DataView(out.buffer);
  v.setUint16(2, v.getUint16(2) | FLAG_TC);
  v.setUint16(4, 1);
  return out;
}

/** A minimal error reply when not even the question could be read: the header alone. */
export function buildHeaderError(query: Uint8Array, rcode: number): Uint8Array | undefined {
  if (query.length < HEADER_LEN) return undefined;
  const out = new Uint8Array(HEADER_LEN);
  out.set(query.subarray(0, 2));
  const v = new DataView(out.buffer);
  const flags = new DataView(query.buffer, query.byteOffset).getUint16(2);
  v.setUint16(2, FLAG_QR | (flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | rcode);
  return out;
}

/** The message id (first two bytes), read or replaced for forwarding. */
export function messageId(msg: Uint8Array): number {
  return (msg[0]! << 8) | msg[1]!;
}

export function withId(msg: Uint8Array, id: number): Uint8Array {
  const out = new Uint8Array(msg);
  out[0] = id >> 8;
  out[1] = id & 255;
  return out;
}

/** "4.3.2.1.in-addr.arpa" -> [1, 2, 3, 4]; undefined for other names. */
export function reverseV4(name: string): Uint8Array | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (!m) return undefined;
  const b = [m[4], m[3], m[2], m[1]].map(Number);
  return b.every((x) => x <= 255) ? new Uint8Array(b) : undefined;
}

/**
 * "b.a.9.8. ... .ip6.arpa" (RFC 3596: 32 nibbles, the last first) -> the 16 bytes of the address;
 * undefined for other names.
 */
export function reverseV6(name: string): Uint8Array | undefined {
  const m = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(name);
  if (!m) return undefined;
  const nibbles = m[1]!.split(".", 32).reverse();
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = (Number.parseInt(nibbles[2 * i]!, 16) << 4) | Number.parseInt(nibbles[2 * i + 1]!, 16);
  return out;
}

/**
 * Whether answer is a response to query's question (q, as parseQuestion read it): one question,
 * the same bytes as the query's (name, type and class). A forged answer must then also guess the
 * question, besides the id and port (RFC 5452).
 */
export function answersQuestion(query: Uint8Array, q: Question, answer: Uint8Array): boolean {
  if (answer.length < q.end || answer[4] !== 0 || answer[5] !== 1 || !(answer[2]! & 0x80)) return false;
  for (let i = HEADER_LEN; i < q.end; i++) if (answer[i] !== query[i]) return false;
  return true;
}
