import { attachSocketFilter, strerror } from "../../ffi/libc.ts";
import { KernelError } from "../errors/errors.ts";
import {
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NLM_F_ACK_TLVS,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from "./constants.ts";
import { Attrs, splitMessages, type NetlinkMessage } from "./reader.ts";
import { openTransport, type NetlinkTransport } from "./transport.ts";
import { NetlinkWriter } from "./writer.ts";

/** What a request was for, so a failed ack can name the operation and object. */
export interface Pending {
  seq: number;
  op: string;
  object: string;
  /** Offset of this message in the writer, to locate the attribute an ack's offset points at. */
  at: number;
  /**
   * Names the attribute an error ack points at (nf_tables gives offsets, never ext-ack text).
   * offset is relative to the start of this message, so nested attributes can be resolved.
   */
  attrName?: (type: number, offset: number) => string;
  /**
   * The kernel acks this message only when it fails (an nfnetlink batch begin: a stale
   * generation or a failed commit is reported against it); do not wait for a success ack.
   */
  errorOnly?: boolean;
  /**
   * Called with each message other than the ack that carries this request's sequence number
   * (what NLM_F_ECHO sends back: the object as made), before the ack.
   */
  onReply?: (m: NetlinkMessage) => void;
}

/** One request of NetlinkSocket.exchange. */
export interface Exchange {
  p: Pending;
  /** NLM_F_DUMP: answered by messages until NLMSG_DONE. */
  dump: boolean;
  onMessage(m: NetlinkMessage): void;
  onError?(e: KernelError): void;
}

/**
 * A netlink socket bound in one network namespace, with sequence-checked requests.
 * Replies whose sequence number is not awaited (late acks of an earlier failed batch) are dropped.
 */
export class NetlinkSocket {
  private readonly sock: NetlinkTransport;
  private readonly rbuf = new Uint8Array(65536);
  private seq: number;
  /** Scratch writer for callers that build one request at a time. */
  readonly writer = new NetlinkWriter();

  private readonly releaseInWorker: boolean;

  /**
   * releaseInWorker: the socket's release blocks in the kernel (nf_tables: see openNftSocket), so
   * its close, and its implicit close at exit, leave the release to a kernel worker.
   * transport: what to speak through instead of the kernel (a test's replay).
   */
  constructor(
    bus: number,
    readonly what: string,
    opts: { groups?: number; timeoutMs?: number; releaseInWorker?: boolean; transport?: NetlinkTransport } = {},
  ) {
    this.sock = opts.transport ?? openTransport(bus, what, opts);
    this.releaseInWorker = opts.releaseInWorker === true;
    if (this.releaseInWorker) openUntilExit(this);
    // Extended ack: the kernel's error text; capped ack: do not echo the whole request back.
    this.sock.setOption(NETLINK_EXT_ACK, 1);
    this.sock.setOption(NETLINK_CAP_ACK, 1);
    this.seq = (Date.now() & 0x7fffffff) >>> 0;
  }

  get fd(): number {
    return this.sock.fd;
  }

  /** Lets the kernel drop, before they are queued, the messages a classic BPF program rejects (src/netlink/bpf.ts). */
  attachFilter(program: Uint8Array): void {
    attachSocketFilter(this.fd, program, this.what);
  }

  /** The port id the kernel gave this socket; notifications caused by its requests carry it. */
  get portid(): number {
    return this.sock.portid;
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  /**
   * Sends everything in w and waits for the ack of each pending message (each must carry
   * NLM_F_ACK). Throws the first error, naming its operation and object.
   */
  transact(w: NetlinkWriter, pending: Pending[]): void {
    this.sock.send(w.buf, w.len);
    const waiting = new Map(pending.map((p) => [p.seq, p]));
    let left = pending.filter((p) => !p.errorOnly).length;
    while (left > 0) {
      for (const m of this.read()) {
        const p = waiting.get(m.seq);
        if (!p) continue;
        if (m.type !== NLMSG_ERROR) {
          p.onReply?.(m);
          continue;
        }
        waiting.delete(m.seq);
        const err = -m.view.getInt32(NLMSG_HDRLEN, true);
        if (err !== 0) throw this.ackError(m, err, p, w);
        if (!p.errorOnly) left--;
      }
    }
  }

  /** One request, one ack; inside batch(), queued instead (sent by batch). */
  request(w: NetlinkWriter, p: Pending): void {
    if (this.queued) this.queued.push(p);
    else this.transact(w, [p]);
  }

  private queued: Pending[] | undefined;

  /** The writer for a new request: cleared, unless batch() is collecting requests in it. */
  startRequest(): NetlinkWriter {
    return this.queued ? this.writer : this.writer.reset();
  }

  /**
   * The requests fn makes (through startRequest/request) go to the kernel together, in one
   * write, and their acks are awaited together: one round trip instead of one per request. The
   * kernel handles them in order; the first failure is thrown, naming its request.
   */
  batch(fn: () => void): void {
    if (this.queued) throw new Error("netlink batches do not nest");
    this.writer.reset();
    this.queued = [];
    let pending: Pending[];
    try {
      fn();
    } finally {
      pending = this.queued;
      this.queued = undefined;
    }
    if (pending.length) this.transact(this.writer, pending);
  }

  /** Sends a dump request and collects every reply until NLMSG_DONE. */
  dump(w: NetlinkWriter, p: Pending, onMessage: (m: NetlinkMessage) => void): void {
    this.sock.send(w.buf, w.len);
    for (;;) {
      for (const m of this.read()) {
        if (m.seq !== p.seq) continue;
        if (m.type === NLMSG_DONE) return;
        if (m.type === NLMSG_ERROR) {
          const err = -m.view.getInt32(NLMSG_HDRLEN, true);
          if (err !== 0) throw this.ackError(m, err, p, w);
          return;
        }
        onMessage(m);
      }
    }
  }

  /**
   * Several GET requests sent in one write, their answers read as they come: each query's one
   * message (or its error), each dump's messages until NLMSG_DONE. At most one dump, last: the
   * kernel runs one dump at a time on a socket and refuses a second in the same write (EBUSY).
   * An error ack goes to the request's onError (which returns to tolerate it), else is thrown.
   */
  exchange(w: NetlinkWriter, requests: readonly Exchange[]): void {
    this.sock.send(w.buf, w.len);
    const open = new Map(requests.map((r) => [r.p.seq, r]));
    while (open.size) {
      for (const m of this.read()) {
        const r = open.get(m.seq);
        if (!r) continue;
        if (m.type === NLMSG_DONE) {
          open.delete(m.seq);
        } else if (m.type === NLMSG_ERROR) {
          open.delete(m.seq);
          const err = -m.view.getInt32(NLMSG_HDRLEN, true);
          if (err === 0 && r.dump) continue;
          const e = this.ackError(m, err === 0 ? 71 : err, r.p, w);
          if (!r.onError) throw e;
          r.onError(e);
        } else {
          r.onMessage(m);
          if (!r.dump) open.delete(m.seq);
        }
      }
    }
  }

  /** A request answered by one message (a GET without NLM_F_DUMP); throws on an error ack. */
  query(w: NetlinkWriter, p: Pending): NetlinkMessage {
    this.sock.send(w.buf, w.len);
    for (;;) {
      for (const m of this.read()) {
        if (m.seq !== p.seq) continue;
        if (m.type === NLMSG_ERROR) {
          const err = -m.view.getInt32(NLMSG_HDRLEN, true);
          throw this.ackError(m, err === 0 ? 71 : err, p, w);
        }
        return m;
      }
    }
  }

  /**
   * Reads multicast notifications until match() returns true. Returns false when the kernel
   * stays silent for the socket's receive timeout.
   */
  waitFor(match: (m: NetlinkMessage) => boolean, deadline = Infinity): boolean {
    while (Date.now() < deadline) {
      let n: number;
      try {
        n = this.sock.receive(this.rbuf);
      } catch (e) {
        if (e instanceof KernelError && e.errno === 11) return false;
        throw e;
      }
      if (splitMessages(this.rbuf, n).some(match)) return true;
    }
    return false;
  }

  close(): void {
    this.sock.close(this.releaseInWorker);
    if (this.releaseInWorker) stillOpen.delete(this);
  }

  private read(): NetlinkMessage[] {
    let n: number;
    try {
      n = this.sock.receive(this.rbuf);
    } catch (e) {
      if (e instanceof KernelError && e.errno === 11) {
        throw new KernelError("netlink", `${this.what}: no answer from the kernel`, 110);
      }
      throw e;
    }
    return splitMessages(this.rbuf, n);
  }

  // NLMSG_ERROR payload: | error i32 | original nlmsghdr (16, capped) | ext-ack TLVs if ACK_TLVS |
  private ackError(m: NetlinkMessage, err: number, p: Pending, w: NetlinkWriter): KernelError {
    let text: string | undefined;
    if (m.flags & NLM_F_ACK_TLVS) {
      const tlv = new Attrs(m.view, NLMSG_HDRLEN + 4 + NLMSG_HDRLEN);
      text = tlv.str(NLMSGERR_ATTR_MSG);
      const offs = tlv.u32(NLMSGERR_ATTR_OFFS);
      if (offs !== undefined && !text) {
        const at = p.at + offs;
        const type = at + 4 <= w.len ? new DataView(w.buf.buffer).getUint16(at + 2, true) & 0x3fff : -1;
        const name = type >= 0 && p.attrName ? p.attrName(type, offs) : `attribute type ${type}`;
        text = `kernel rejected ${name} (byte ${offs} of the message)`;
      }
    }
    return new KernelError(p.op, p.object, err, strerror(err), text);
  }
}

// Sockets whose release blocks, closed through a kernel worker when the process exits without
// having closed them (the process's own exit would otherwise pay the wait: its fds are released
// before its parent learns it has ended).
const stillOpen = new Set<NetlinkSocket>();
function openUntilExit(s: NetlinkSocket): void {
  if (!stillOpen.size) process.once("exit", () => { for (const o of [...stillOpen]) o.close(); });
  stillOpen.add(s);
}
