// Transports that are not the kernel (see transport.ts): a recorder that keeps what a real
// socket sent and received, and a replay that answers the same requests with the same datagrams
// from such a record, or from a function of the request (a scripted kernel, for answers no kernel
// gives on demand: errors, malformed replies, silence).
//
// A record is a list of exchanges, one per datagram sent: the request's bytes and every datagram
// received before the next send, as hex. Sequence numbers and port ids differ from run to run,
// so a request is compared with its header's seq and pid zeroed, and a reply's seq is rewritten
// from the recorded request's to the replayed one's.
import { KernelError } from "../errors/errors.ts";
import { NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_ERROR, NLMSG_HDRLEN } from "./constants.ts";
import { splitMessages, type NetlinkMessage } from "./reader.ts";
import type { NetlinkTransport } from "./transport.ts";

export interface Exchange {
  sent: string;
  received: string[];
}

const EAGAIN = 11;

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, "hex"));
}

/** Wraps a transport (the kernel's) and keeps every exchange it carries. */
export class RecordingTransport implements NetlinkTransport {
  readonly exchanges: Exchange[] = [];

  constructor(private readonly inner: NetlinkTransport) {}

  get fd(): number {
    return this.inner.fd;
  }

  get portid(): number {
    return this.inner.portid;
  }

  setOption(name: number, value: number): void {
    this.inner.setOption(name, value);
  }

  send(buf: Uint8Array, len: number): void {
    this.inner.send(buf, len);
    this.exchanges.push({ sent: toHex(buf.subarray(0, len)), received: [] });
  }

  receive(buf: Uint8Array): number {
    const n = this.inner.receive(buf);
    this.exchanges.at(-1)?.received.push(toHex(buf.subarray(0, n)));
    return n;
  }

  close(inWorker?: boolean): void {
    this.inner.close(inWorker);
  }
}

/** The sequence numbers of a datagram's messages, and its bytes with every header's seq and pid zeroed. */
function normalized(b: Uint8Array): { seqs: number[]; bytes: Uint8Array } {
  const copy = b.slice();
  const seqs: number[] = [];
  for (const m of splitMessages(copy, copy.byteLength)) {
    seqs.push(m.seq);
    m.view.setUint32(8, 0, true);
    m.view.setUint32(12, 0, true);
  }
  return { seqs, bytes: copy };
}

/** The kernel's part played from a function of each request: its replies, in order (none: silence). */
export type Answer = (request: NetlinkMessage[], raw: Uint8Array) => Uint8Array[];

/**
 * A transport whose kernel is a record (see RecordingTransport) or a function. A request that
 * differs from the record, or comes after its end, throws, naming the exchange and the first
 * differing byte: what the code under test sent is what the test is about.
 */
export class ReplayTransport implements NetlinkTransport {
  readonly fd = -1;
  readonly portid = 0x7e57;
  /** Every request sent, as sent. */
  readonly sent: Uint8Array[] = [];
  private next = 0;
  private pending: Uint8Array[] = [];
  private closed = false;

  constructor(private readonly kernel: readonly Exchange[] | Answer, private readonly what = "replayed netlink") {}

  setOption(): void {}

  send(buf: Uint8Array, len: number): void {
    if (this.closed) throw new KernelError("sendto", `${this.what} (closed socket)`, 9);
    const req = buf.slice(0, len);
    this.sent.push(req);
    if (typeof this.kernel === "function") {
      this.pending = this.kernel(splitMessages(req, req.byteLength), req).map((r) => this.addressed(r, new Map()));
      return;
    }
    const at = this.next++;
    const ex = this.kernel[at];
    if (!ex) throw new Error(`${this.what}: request ${at + 1} is beyond the record's ${this.kernel.length}: ${toHex(req).slice(0, 80)}...`);
    const want = normalized(fromHex(ex.sent));
    const got = normalized(req);
    const diff = firstDifference(want.bytes, got.bytes);
    if (diff !== undefined) {
      throw new Error(`${this.what}: request ${at + 1} differs from the record at byte ${diff} (recorded ${want.bytes.byteLength} bytes, sent ${got.bytes.byteLength})`);
    }
    const seqs = new Map(want.seqs.map((s, i) => [s, got.seqs[i]!]));
    this.pending = ex.received.map((r) => this.addressed(fromHex(r), seqs));
  }

  receive(buf: Uint8Array): number {
    const d = this.pending.shift();
    if (!d) throw new KernelError("recvfrom", this.what, EAGAIN, "no reply in the record");
    buf.set(d);
    return d.byteLength;
  }

  /** Whether every recorded exchange has been asked for. */
  get finished(): boolean {
    return typeof this.kernel === "function" || this.next === this.kernel.length;
  }

  close(): void {
    this.closed = true;
  }

  /** A reply as this socket receives it: addressed to its port, its seq the replayed request's. */
  private addressed(d: Uint8Array, seqs: ReadonlyMap<number, number>): Uint8Array {
    const copy = d.slice();
    for (const m of splitMessages(copy, copy.byteLength)) {
      const s = seqs.get(m.seq);
      if (s !== undefined) m.view.setUint32(8, s, true);
      if (m.view.getUint32(12, true) !== 0) m.view.setUint32(12, this.portid, true);
    }
    return copy;
  }
}

function firstDifference(a: Uint8Array, b: Uint8Array): number | undefined {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.byteLength === b.byteLength ? undefined : n;
}

// Replies a scripted kernel sends. NLMSG_ERROR payload: | error i32 (negative errno, 0 = ack) |
// the request's nlmsghdr (16 bytes, as with NETLINK_CAP_ACK) | ext-ack TLVs when flagged |.
/** The kernel's answer to a request message: an ack (errno 0) or an error. */
export function ackFor(request: NetlinkMessage, errno = 0, extAck?: Uint8Array): Uint8Array {
  const tlvs = extAck ?? new Uint8Array(0);
  const len = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN + tlvs.byteLength;
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, NLMSG_ERROR, true);
  dv.setUint16(6, NLM_F_CAPPED | (tlvs.byteLength ? NLM_F_ACK_TLVS : 0), true);
  dv.setUint32(8, request.seq, true);
  dv.setUint32(12, request.portid || 1, true);
  dv.setInt32(16, -errno, true);
  out.set(new Uint8Array(request.view.buffer, request.view.byteOffset, NLMSG_HDRLEN), 20);
  out.set(tlvs, 36);
  return out;
}
