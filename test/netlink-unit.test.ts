// The netlink socket's logic (acks, errors with the kernel's text, dumps, batches, silence and
// garbage) driven by a scripted kernel through the transport seam: no root, no namespaces.
import { describe, expect, test } from "bun:test";
import { KernelError } from "../src/errors/errors.ts";
import {
  NETLINK_ROUTE, NLM_F_ACK, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST, NLMSG_DONE, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
} from "../src/netlink/constants.ts";
import { type NetlinkMessage } from "../src/netlink/reader.ts";
import { RecordingTransport, ReplayTransport, ackFor, type Answer } from "../src/netlink/replay.ts";
import { NetlinkSocket } from "../src/netlink/socket.ts";
import { NetlinkWriter } from "../src/netlink/writer.ts";

const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;

function socket(answer: Answer): { nl: NetlinkSocket; t: ReplayTransport } {
  const t = new ReplayTransport(answer, "scripted rtnetlink");
  return { nl: new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (test)", { transport: t }), t };
}

/** A message as the kernel would send it, with one string attribute (type 3, IFLA_IFNAME). */
function reply(type: number, flags: number, seq: number, name: string): Uint8Array {
  const w = new NetlinkWriter();
  const at = w.begin(type, flags, seq);
  w.struct(16);
  w.attrStr(3, name);
  w.end(at);
  return w.buf.slice(0, w.len);
}

function extAck(attrs: [number, Uint8Array][]): Uint8Array {
  const w = new NetlinkWriter();
  for (const [type, v] of attrs) w.attrBytes(type, v);
  return w.buf.slice(0, w.len);
}

function request(nl: NetlinkSocket, type = RTM_NEWLINK): { w: NetlinkWriter; seq: number; at: number } {
  const w = nl.startRequest();
  const seq = nl.nextSeq();
  const at = w.begin(type, NLM_F_REQUEST | NLM_F_ACK, seq);
  w.struct(16);
  w.attrStr(3, "veth-test");
  w.end(at);
  return { w, seq, at };
}

describe("netlink socket over a scripted kernel", () => {
  test("a request is acked", () => {
    const { nl, t } = socket((msgs) => msgs.map((m) => ackFor(m)));
    const { w, seq, at } = request(nl);
    nl.request(w, { seq, at, op: "add link", object: "veth-test" });
    expect(t.sent.length).toBe(1);
  });

  test("an error ack becomes a KernelError naming the operation, the object, the errno and the kernel's text", () => {
    const text = new TextEncoder().encode("Permission denied by the test\0");
    const { nl } = socket((msgs) => [ackFor(msgs[0]!, 1, extAck([[NLMSGERR_ATTR_MSG, text]]))]);
    const { w, seq, at } = request(nl);
    let err: unknown;
    try {
      nl.request(w, { seq, at, op: "add link", object: "veth-test" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    const k = err as KernelError;
    expect([k.op, k.object, k.errnoName, k.extAck]).toEqual(["add link", "veth-test", "EPERM", "Permission denied by the test"]);
    expect(k.message).toBe("add link veth-test: EPERM (Operation not permitted): Permission denied by the test");
  });

  test("an error ack that points at an attribute names it", () => {
    // The offset counts from the start of the request: 16 header + 16 struct = the IFNAME attribute.
    const offs = new Uint8Array(4);
    new DataView(offs.buffer).setUint32(0, 32, true);
    const { nl } = socket((msgs) => [ackFor(msgs[0]!, 22, extAck([[NLMSGERR_ATTR_OFFS, offs]]))]);
    const { w, seq, at } = request(nl);
    expect(() => nl.request(w, { seq, at, op: "add link", object: "veth-test", attrName: (type) => (type === 3 ? "IFLA_IFNAME" : `type ${type}`) })).toThrow(
      "add link veth-test: EINVAL (Invalid argument): kernel rejected IFLA_IFNAME (byte 32 of the message)",
    );
  });

  test("a batch goes in one datagram and its acks are awaited together; the first failure is thrown", () => {
    const { nl, t } = socket((msgs) => msgs.map((m, i) => ackFor(m, i === 2 ? 17 : 0)));
    expect(() =>
      nl.batch(() => {
        for (const name of ["a", "b", "c", "d"]) {
          const { w, seq, at } = request(nl);
          nl.request(w, { seq, at, op: "add link", object: name });
        }
      }),
    ).toThrow("add link c: EEXIST");
    expect(t.sent.length).toBe(1);
  });

  test("exchange: a query and a dump in one write, answered in any order across datagrams; a tolerated error", () => {
    const name = (m: NetlinkMessage) => new TextDecoder().decode(new Uint8Array(m.view.buffer, m.view.byteOffset + 36, m.view.byteLength - 36)).replace(/\0.*$/s, "");
    for (const gone of [false, true]) {
      const { nl, t } = socket((msgs) => {
        const [q, d] = [msgs[0]!, msgs[1]!];
        const done = reply(NLMSG_DONE, NLM_F_MULTI, d.seq, "");
        // The dump's first part, then the query's answer, then the rest of the dump.
        return [reply(RTM_NEWLINK, NLM_F_MULTI, d.seq, "a1"), gone ? ackFor(q, 19) : reply(RTM_NEWLINK, 0, q.seq, "br0"), Uint8Array.from([...reply(RTM_NEWLINK, NLM_F_MULTI, d.seq, "a2"), ...done])];
      });
      const w = nl.writer.reset();
      const qseq = nl.nextSeq();
      const qat = w.begin(RTM_GETLINK, NLM_F_REQUEST, qseq);
      w.struct(16);
      w.attrStr(3, "br0");
      w.end(qat);
      const dseq = nl.nextSeq();
      const dat = w.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, dseq);
      w.struct(16);
      w.end(dat);
      const got: string[] = [];
      const errors: number[] = [];
      nl.exchange(w, [
        { p: { seq: qseq, at: qat, op: "get link", object: "br0" }, dump: false, onMessage: (m) => got.push(`q:${name(m)}`), onError: (e) => void errors.push(e.errno) },
        { p: { seq: dseq, at: dat, op: "list links", object: "" }, dump: true, onMessage: (m) => got.push(`d:${name(m)}`) },
      ]);
      expect(t.sent.length).toBe(1);
      expect(got).toEqual(gone ? ["d:a1", "d:a2"] : ["d:a1", "q:br0", "d:a2"]);
      expect(errors).toEqual(gone ? [19] : []);
    }
  });

  test("exchange: an error without onError is thrown, naming its request", () => {
    const { nl } = socket((msgs) => [ackFor(msgs[0]!, 1)]);
    const w = nl.writer.reset();
    const seq = nl.nextSeq();
    const at = w.begin(RTM_GETLINK, NLM_F_REQUEST, seq);
    w.struct(16);
    w.end(at);
    expect(() => nl.exchange(w, [{ p: { seq, at, op: "get link", object: "br0" }, dump: false, onMessage: () => {} }])).toThrow("get link br0: EPERM");
  });

  test("a dump collects every message until NLMSG_DONE, across datagrams", () => {
    const { nl } = socket((msgs) => {
      const seq = msgs[0]!.seq;
      const a = reply(RTM_NEWLINK, NLM_F_MULTI, seq, "lo");
      const b = reply(RTM_NEWLINK, NLM_F_MULTI, seq, "eth0");
      const done = reply(NLMSG_DONE, NLM_F_MULTI, seq, "");
      return [Uint8Array.from([...a, ...b]), done];
    });
    const w = nl.writer.reset();
    const seq = nl.nextSeq();
    const at = w.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
    w.struct(16);
    w.end(at);
    const names: string[] = [];
    nl.dump(w, { seq, at, op: "list links", object: "" }, (m: NetlinkMessage) => {
      names.push(new TextDecoder().decode(new Uint8Array(m.view.buffer, m.view.byteOffset + 36, m.view.byteLength - 36)).replace(/\0.*$/s, ""));
    });
    expect(names).toEqual(["lo", "eth0"]);
  });

  test("replies to an earlier sequence (a late ack) are skipped", () => {
    const { nl } = socket((msgs) => [ackFor({ ...msgs[0]!, seq: msgs[0]!.seq - 1 }, 1), ackFor(msgs[0]!)]);
    const { w, seq, at } = request(nl);
    nl.request(w, { seq, at, op: "add link", object: "veth-test" });
  });

  test("silence is one error naming the socket, not a hang", () => {
    const { nl } = socket(() => []);
    const { w, seq, at } = request(nl);
    expect(() => nl.request(w, { seq, at, op: "add link", object: "veth-test" })).toThrow("netlink rtnetlink (test): no answer from the kernel");
  });

  test("a truncated or garbage reply is not read past its end", () => {
    for (const garbage of [new Uint8Array([1, 2, 3]), Uint8Array.from([0xff, 0xff, 0, 0, 2, 0, 0, 0, ...new Array(12).fill(0)]), new Uint8Array(16)]) {
      const { nl } = socket(() => [garbage]);
      const { w, seq, at } = request(nl);
      expect(() => nl.request(w, { seq, at, op: "add link", object: "veth-test" })).toThrow(/no answer from the kernel/);
    }
  });

  test("a query answered by an ack (no message) is an error, not a crash", () => {
    const { nl } = socket((msgs) => [ackFor(msgs[0]!)]);
    const { w, seq, at } = request(nl, RTM_GETLINK);
    expect(() => nl.query(w, { seq, at, op: "get link", object: "x" })).toThrow("get link x: EPROTO");
  });
});

describe("replaying a record", () => {
  test("the same request gets the recorded replies with its own sequence number", () => {
    const rec = socket((msgs) => msgs.map((m) => ackFor(m)));
    const r = request(rec.nl);
    rec.nl.request(r.w, { seq: r.seq, at: r.at, op: "add link", object: "veth-test" });
    const sent = Buffer.from(rec.t.sent[0]!).toString("hex");
    const answer = Buffer.from(ackFor({ type: 0, flags: 0, seq: r.seq, portid: 1, view: new DataView(rec.t.sent[0]!.buffer) })).toString("hex");
    const replay = new ReplayTransport([{ sent, received: [answer] }]);
    const nl = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (replay)", { transport: replay });
    nl.nextSeq();
    nl.nextSeq();
    const again = request(nl);
    nl.request(again.w, { seq: again.seq, at: again.at, op: "add link", object: "veth-test" });
    expect(replay.finished).toBe(true);
  });

  test("a request that differs from the record says where", () => {
    const replay = new ReplayTransport([{ sent: "00", received: [] }]);
    const nl = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (replay)", { transport: replay });
    const { w, seq, at } = request(nl);
    expect(() => nl.request(w, { seq, at, op: "add link", object: "veth-test" })).toThrow(/request 1 differs from the record at byte 0/);
  });
});

describe("more of the socket", () => {
  test("a query's answer is the message with its sequence number; others before it are skipped", () => {
    const { nl } = socket((msgs) => [reply(RTM_NEWLINK, 0, msgs[0]!.seq - 1, "stale"), reply(RTM_NEWLINK, 0, msgs[0]!.seq, "eth0")]);
    const { w, seq, at } = request(nl, RTM_GETLINK);
    const m = nl.query(w, { seq, at, op: "get link", object: "eth0" });
    expect([m.type, m.seq]).toEqual([RTM_NEWLINK, seq]);
    expect(new TextDecoder().decode(new Uint8Array(m.view.buffer, m.view.byteOffset + 36, 4))).toBe("eth0");
  });

  test("a dump's error ack is thrown with its operation; a dump ended by a plain ack is empty", () => {
    const failing = socket((msgs) => [ackFor(msgs[0]!, 95)]);
    const r = request(failing.nl, RTM_GETLINK);
    expect(() => failing.nl.dump(r.w, { seq: r.seq, at: r.at, op: "list links", object: "" }, () => {})).toThrow("list links: EOPNOTSUPP (Operation not supported)");
    const acked = socket((msgs) => [ackFor(msgs[0]!)]);
    const a = request(acked.nl, RTM_GETLINK);
    const seen: number[] = [];
    acked.nl.dump(a.w, { seq: a.seq, at: a.at, op: "list links", object: "" }, (m) => seen.push(m.type));
    expect(seen).toEqual([]);
  });

  test("batches do not nest, and an empty batch sends nothing", () => {
    const { nl, t } = socket((msgs) => msgs.map((m) => ackFor(m)));
    nl.batch(() => {});
    expect(t.sent.length).toBe(0);
    expect(() => nl.batch(() => nl.batch(() => {}))).toThrow("netlink batches do not nest");
    // The failed batch left nothing queued: the next request goes alone.
    const { w, seq, at } = request(nl);
    nl.request(w, { seq, at, op: "add link", object: "veth-test" });
    expect(t.sent.length).toBe(1);
  });

  test("waitFor reads notifications until one matches; silence is false, not an error", () => {
    const notes = [reply(RTM_NEWLINK, 0, 0, "a"), reply(RTM_NEWLINK, 0, 0, "b")];
    const t = new ReplayTransport(() => []);
    const nl = new NetlinkSocket(NETLINK_ROUTE, "notifications (test)", { transport: t });
    // The transport's queue is filled by a send; a notification socket never sends, so fill it directly.
    (t as unknown as { pending: Uint8Array[] }).pending = [...notes];
    const names: string[] = [];
    const name = (m: NetlinkMessage) => new TextDecoder().decode(new Uint8Array(m.view.buffer, m.view.byteOffset + 36, 1));
    expect(nl.waitFor((m) => (names.push(name(m)), name(m) === "b"))).toBe(true);
    expect(names).toEqual(["a", "b"]);
    expect(nl.waitFor(() => true)).toBe(false);
    expect(nl.waitFor(() => true, Date.now() - 1)).toBe(false);
  });

  test("the transport's port id and descriptor are the socket's; a closed replay refuses to send", () => {
    const { nl, t } = socket((msgs) => msgs.map((m) => ackFor(m)));
    expect([nl.portid, nl.fd]).toEqual([t.portid, -1]);
    nl.close();
    const { w, seq, at } = request(nl);
    expect(() => nl.request(w, { seq, at, op: "add link", object: "veth-test" })).toThrow("sendto scripted rtnetlink (closed socket): EBADF");
  });
});

describe("recording", () => {
  test("every datagram sent and received is kept, in order, as hex; replaying the record gives the same answers", () => {
    const inner = new ReplayTransport((msgs) => [reply(RTM_NEWLINK, NLM_F_MULTI, msgs[0]!.seq, "lo"), reply(NLMSG_DONE, NLM_F_MULTI, msgs[0]!.seq, "")]);
    const rec = new RecordingTransport(inner);
    const nl = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (recorded)", { transport: rec });
    expect([rec.fd, rec.portid]).toEqual([-1, inner.portid]);
    const dump = () => {
      const w = nl.writer.reset();
      const seq = nl.nextSeq();
      const at = w.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
      w.struct(16);
      w.end(at);
      let n = 0;
      nl.dump(w, { seq, at, op: "list links", object: "" }, () => n++);
      return { n, seq };
    };
    const first = dump();
    expect(first.n).toBe(1);
    expect(rec.exchanges.length).toBe(1);
    expect(rec.exchanges[0]!.sent).toBe(Buffer.from(inner.sent[0]!).toString("hex"));
    expect(rec.exchanges[0]!.received.length).toBe(2);
    nl.close();
    // The record replayed: same request (another seq), same answers, under the new seq.
    const replay = new ReplayTransport(rec.exchanges, "replayed");
    const again = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (replayed)", { transport: replay });
    const w = again.writer.reset();
    const seq = again.nextSeq() + 1000;
    const at = w.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
    w.struct(16);
    w.end(at);
    let n = 0;
    again.dump(w, { seq, at, op: "list links", object: "" }, (m) => {
      expect(m.seq).toBe(seq);
      n++;
    });
    expect(n).toBe(1);
    expect(replay.finished).toBe(true);
    // One request more than the record holds.
    expect(() => again.dump(w, { seq, at, op: "list links", object: "" }, () => {})).toThrow(/request 2 is beyond the record's 1/);
  });
});
