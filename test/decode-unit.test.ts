// The rtnetlink and nf_tables decoders fed malformed kernel replies by a scripted kernel
// (src/netlink/replay.ts): attributes cut short or running past their message, lengths too short
// for their type, attributes no decoder knows, error acks in place of a dump. What the kernel
// sends is trusted to be well-formed, but a decoder must never read past what it was given.
import { describe, expect, test } from "bun:test";
import { formatIp } from "../src/ip/addr.ts";
import { NETLINK_NETFILTER, NETLINK_ROUTE, NLM_F_MULTI, NLMSG_DONE } from "../src/netlink/constants.ts";
import { ReplayTransport, ackFor } from "../src/netlink/replay.ts";
import type { NetlinkMessage } from "../src/netlink/reader.ts";
import { NetlinkSocket } from "../src/netlink/socket.ts";
import { NetlinkWriter } from "../src/netlink/writer.ts";
import { listElements, listRules } from "../src/nftables/index.ts";
import { addrList } from "../src/rtnetlink/addr.ts";
import { AF_INET, IFLA_ADDRESS, IFLA_IFNAME, IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, RTM_NEWADDR, RTM_NEWLINK } from "../src/rtnetlink/constants.ts";
import { linkGet, linkList } from "../src/rtnetlink/link.ts";

/** A dump answered by `build(seq)`'s messages in one datagram, then NLMSG_DONE. */
function dumping(bus: number, build: (seq: number) => Uint8Array[]): NetlinkSocket {
  const t = new ReplayTransport((msgs: NetlinkMessage[]) => {
    const seq = msgs[0]!.seq;
    const done = new NetlinkWriter();
    done.end(done.begin(NLMSG_DONE, NLM_F_MULTI, seq));
    done.struct(4);
    return [Uint8Array.from(build(seq).flatMap((m) => [...m])), done.buf.slice(0, done.len)];
  });
  return new NetlinkSocket(bus, "scripted", { transport: t });
}

/** An RTM_NEWLINK: ifinfomsg (index, flags) then whatever attrs writes. */
function link(seq: number, index: number, attrs: (w: NetlinkWriter) => void): Uint8Array {
  const w = new NetlinkWriter();
  const at = w.begin(RTM_NEWLINK, NLM_F_MULTI, seq);
  const h = w.struct(16);
  w.view.setInt32(h + 4, index, true);
  w.view.setUint32(h + 8, 1, true);
  attrs(w);
  w.end(at);
  return w.buf.slice(0, w.len);
}

describe("rtnetlink links", () => {
  test("attributes no decoder knows are skipped; the known ones around them are read", () => {
    const nl = dumping(NETLINK_ROUTE, (seq) => [
      link(seq, 7, (w) => {
        w.attrU32(999, 1);
        w.attrStr(IFLA_IFNAME, "br0");
        w.nest(IFLA_LINKINFO, () => w.attrU32(77, 5).attrStr(IFLA_INFO_KIND, "bridge"));
        w.attrBytes(1000, [1, 2, 3]);
        w.attrU32(IFLA_MASTER, 3);
      }),
    ]);
    expect(linkList(nl)).toEqual([{ index: 7, flags: 1, name: "br0", operstate: 0, mac: undefined, master: 3, kind: "bridge" }]);
  });

  test("an attribute running past its message ends the attributes there; what came before is read", () => {
    const nl = dumping(NETLINK_ROUTE, (seq) => {
      const m = link(seq, 4, (w) => {
        w.attrStr(IFLA_IFNAME, "eth0");
        w.attrU32(IFLA_MTU, 1500);
        w.attrU32(IFLA_MASTER, 9);
      });
      // IFLA_MTU's nla_len says 200: past the message's end.
      new DataView(m.buffer).setUint16(16 + 16 + 12, 200, true);
      return [m];
    });
    expect(linkList(nl)).toEqual([{ index: 4, flags: 1, name: "eth0", operstate: 0, mac: undefined, master: undefined, kind: undefined }]);
  });

  test("an attribute whose nla_len is below its own header ends the attributes", () => {
    const nl = dumping(NETLINK_ROUTE, (seq) => {
      const m = link(seq, 5, (w) => {
        w.attrU32(IFLA_MASTER, 2);
        w.attrStr(IFLA_IFNAME, "eth1");
      });
      new DataView(m.buffer).setUint16(16 + 16 + 8, 2, true);
      return [m];
    });
    expect(linkList(nl)).toEqual([{ index: 5, flags: 1, name: "", operstate: 0, mac: undefined, master: 2, kind: undefined }]);
  });

  test("a value too short for its type reads as absent, not past its end", () => {
    const nl = dumping(NETLINK_ROUTE, (seq) => [
      link(seq, 6, (w) => {
        w.attrStr(IFLA_IFNAME, "eth2");
        w.attrBytes(IFLA_MASTER, [1, 0]);
        w.attrBytes(IFLA_ADDRESS, []);
      }),
    ]);
    expect(linkList(nl)).toEqual([{ index: 6, flags: 1, name: "eth2", operstate: 0, mac: new Uint8Array(0), master: undefined, kind: undefined }]);
  });

  test("a message cut short in the datagram ends the dump's reading of that datagram; NLMSG_DONE still ends the dump", () => {
    const nl = dumping(NETLINK_ROUTE, (seq) => {
      const whole = link(seq, 8, (w) => w.attrStr(IFLA_IFNAME, "ok"));
      const cut = link(seq, 9, (w) => w.attrStr(IFLA_IFNAME, "cut")).subarray(0, 20);
      return [whole, cut];
    });
    expect(linkList(nl).map((l) => l.name)).toEqual(["ok"]);
  });

  test("an error ack in place of the answer: a missing link is undefined, another errno is thrown by name", () => {
    const gone = new NetlinkSocket(NETLINK_ROUTE, "scripted", { transport: new ReplayTransport((msgs) => [ackFor(msgs[0]!, 19)]) });
    expect(linkGet(gone, "nope")).toBeUndefined();
    const denied = new NetlinkSocket(NETLINK_ROUTE, "scripted", { transport: new ReplayTransport((msgs) => [ackFor(msgs[0]!, 1)]) });
    expect(() => linkGet(denied, "eth0")).toThrow("get link eth0: EPERM");
  });
});

describe("rtnetlink addresses", () => {
  test("another family's entries and entries without an address are skipped", () => {
    const addr = (seq: number, family: number, attrs: (w: NetlinkWriter) => void) => {
      const w = new NetlinkWriter();
      const at = w.begin(RTM_NEWADDR, NLM_F_MULTI, seq);
      const h = w.struct(8);
      w.view.setUint8(h, family);
      w.view.setUint8(h + 1, 24);
      w.view.setUint32(h + 4, 3, true);
      attrs(w);
      w.end(at);
      return w.buf.slice(0, w.len);
    };
    const nl = dumping(NETLINK_ROUTE, (seq) => [
      addr(seq, 10, (w) => w.attrBytes(2, new Uint8Array(16))),
      addr(seq, AF_INET, (w) => w.attrU32(99, 1)),
      addr(seq, AF_INET, (w) => w.attrBytes(1, [10, 1, 2, 3])),
      addr(seq, AF_INET, (w) => w.attrBytes(2, [10, 9, 9, 9]).attrBytes(1, [10, 4, 5, 6])),
    ]);
    expect(addrList(nl, AF_INET).map((a) => `${formatIp(a.address)}/${a.prefix}@${a.index}`)).toEqual(["10.1.2.3/24@3", "10.9.9.9/24@3"]);
  });
});

describe("nf_tables dumps", () => {
  test("a rule without table, chain or handle is skipped; an expression without a name is left out", () => {
    const rule = (seq: number, attrs: (w: NetlinkWriter) => void) => {
      const w = new NetlinkWriter();
      const at = w.begin((10 << 8) | 6, NLM_F_MULTI, seq);
      w.struct(4);
      attrs(w);
      w.end(at);
      return w.buf.slice(0, w.len);
    };
    const nl = dumping(NETLINK_NETFILTER, (seq) => [
      rule(seq, (w) => w.attrStr(1, "t").attrStr(2, "c")), // no handle
      rule(seq, (w) => w.attrStr(1, "other").attrStr(2, "c").attrBe64(3, 1n)),
      rule(seq, (w) => {
        w.attrStr(1, "t").attrStr(2, "c").attrBe64(3, 42n);
        w.nest(4, () => {
          w.nest(1, () => w.attrStr(1, "counter"));
          w.nest(1, () => w.attrU32(2, 0)); // no name
          w.nest(1, () => w.attrStr(1, "immediate").nest(2, () => w.attrBe32(1, 0)));
        });
        w.attrU32(9, 1); // unknown
      }),
    ]);
    const rules = listRules(nl, "inet", "t");
    expect(rules.map((r) => ({ chain: r.chain, handle: r.handle, exprs: r.exprs.map((e) => `${e.name}/${e.data.byteLength}`) }))).toEqual([
      { chain: "c", handle: 42n, exprs: ["counter/0", "immediate/8"] },
    ]);
  });

  test("listing a set the kernel says is missing throws ENOENT naming it", () => {
    const nl = new NetlinkSocket(NETLINK_NETFILTER, "scripted", { transport: new ReplayTransport((msgs) => [ackFor(msgs[0]!, 2)]) });
    expect(() => listElements(nl, "inet", "tsnet", "ports")).toThrow(/ENOENT/);
  });
});
