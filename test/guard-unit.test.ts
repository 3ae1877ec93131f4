// The loopback guard without a kernel: the tc messages byte for byte against what iproute2's tc
// sent for the same request (strace -xx of `tc qdisc add dev br0 clsact` and `tc filter add dev br0
// ingress prio 1 handle 0x74736e74 protocol all bpf da bytecode '...'`, iproute2 6.1), the
// program against the text `tc -d filter show` printed after the kernel accepted it, and the
// program run on crafted frames by a small classic BPF interpreter (the kernel's semantics for
// the instructions it uses).
import { describe, expect, test } from "bun:test";
import { KernelError } from "../src/errors/errors.ts";
import { ENOENT, EOPNOTSUPP, EPERM } from "../src/errors/errno.ts";
import { BPF_ABS, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_LDX, BPF_RET, BPF_W, SKF_AD_OFF, SKF_AD_PROTOCOL } from "../src/netlink/bpf.ts";
import { NetlinkWriter } from "../src/netlink/writer.ts";
import { isLoopbackGuard, loopbackGuardFilter, loopbackGuardProgram, missingFeature } from "../src/network/guard.ts";
import { ETH_P_8021AD, ETH_P_8021Q, ETH_P_ALL, ETH_P_IP, ETH_P_IPV6, TC_ACT_OK, TC_ACT_SHOT, TC_ACT_UNSPEC, TCA_BPF_FLAG_ACT_DIRECT } from "../src/rtnetlink/constants.ts";
import {
  CLSACT_INGRESS, OP_ADD_BPF_FILTER, OP_ADD_CLSACT, encodeBpfFilterAdd, encodeClsactAdd, encodeFilterList, filterInfo, parseFilter,
} from "../src/rtnetlink/tc.ts";

const hex = (w: NetlinkWriter) => Buffer.from(w.buf.subarray(0, w.len)).toString("hex");
const le32 = (n: number) => Buffer.from(new Uint32Array([n >>> 0]).buffer).toString("hex");
const SEQ = 0x6b13c1ff;
const IFINDEX = 2;

/** Parses tc's `bytecode` text (count, then "code jt jf k" per instruction) into struct sock_filter bytes. */
function fromTcText(text: string): Uint8Array {
  const [count, ...insns] = text.split(",");
  expect(insns.length).toBe(Number(count));
  const out = new Uint8Array(insns.length * 8);
  const v = new DataView(out.buffer);
  insns.forEach((s, i) => {
    const [code, jt, jf, k] = s.trim().split(/\s+/).map(Number);
    v.setUint16(i * 8, code!, true);
    v.setUint8(i * 8 + 2, jt!);
    v.setUint8(i * 8 + 3, jf!);
    v.setUint32(i * 8 + 4, k! >>> 0, true);
  });
  return out;
}

describe("tc messages", () => {
  test("RTM_NEWQDISC clsact is what tc qdisc add sends", () => {
    const w = new NetlinkWriter();
    encodeClsactAdd(w, SEQ, IFINDEX);
    // nlmsghdr: len 48, RTM_NEWQDISC (36), REQUEST|ACK|EXCL|CREATE; tcmsg: ifindex, handle ffff:0,
    // parent ffff:fff1, info 0; TCA_KIND "clsact\0" (nla_len 11, padded to 12).
    expect(hex(w)).toBe(
      `30000000` + `2400` + `0506` + le32(SEQ) + `00000000` +
      `00000000` + le32(IFINDEX) + `0000ffff` + `f1ffffff` + `00000000` +
      `0b000100` + Buffer.from("clsact\0").toString("hex") + `00`,
    );
  });

  test("RTM_NEWTFILTER bpf da is what tc filter add sends (but for NLA_F_NESTED on TCA_OPTIONS)", () => {
    // The program tc was given: 6,40 0 0 4294963200,21 0 3 2048,48 0 0 30,21 0 1 127,6 0 0 2,6 0 0 4294967295
    const ops = fromTcText("6,40 0 0 4294963200,21 0 3 2048,48 0 0 30,21 0 1 127,6 0 0 2,6 0 0 4294967295");
    const w = new NetlinkWriter();
    encodeBpfFilterAdd(w, SEQ, IFINDEX, { parent: CLSACT_INGRESS, prio: 1, protocol: ETH_P_ALL, handle: 0x74736e74, ops, flags: TCA_BPF_FLAG_ACT_DIRECT }, false);
    // strace's TCA_OPTIONS payload, as tc sent it:
    const tcOptions =
      "06000400060000003400050028000000" + "00f0ffff150000030008000030000000" + "1e000000150000017f00000006000000" +
      "0200000006000000ffffffff08000800" + "01000000";
    expect(hex(w)).toBe(
      `74000000` + `2c00` + `0506` + le32(SEQ) + `00000000` +
      `00000000` + le32(IFINDEX) + le32(1953721972) + le32(4294967282) + le32(66304) +
      `08000100` + Buffer.from("bpf\0").toString("hex") +
      // tc writes TCA_OPTIONS as type 2; tsnet flags every nest NLA_F_NESTED (0x8000), which
      // the kernel accepts (and strict parsing of a nest would require).
      `48000280` + tcOptions,
    );
  });

  test("NLM_F_REPLACE instead of NLM_F_EXCL swaps the program in place; RTM_GETTFILTER dumps one hook", () => {
    const w = new NetlinkWriter();
    encodeBpfFilterAdd(w, SEQ, IFINDEX, loopbackGuardFilter(), true);
    expect(w.view.getUint16(6, true)).toBe(0x1 | 0x4 | 0x100 | 0x400);
    const d = new NetlinkWriter();
    encodeFilterList(d, SEQ, IFINDEX, CLSACT_INGRESS);
    // As `tc filter show dev br0 ingress`: len 36, RTM_GETTFILTER (46), REQUEST|DUMP, parent ffff:fff2.
    expect(hex(d)).toBe(`24000000` + `2e00` + `0103` + le32(SEQ) + `00000000` + `00000000` + le32(IFINDEX) + `00000000` + le32(4294967282) + `00000000`);
  });

  test("tcm_info is the priority and the protocol in network order", () => {
    expect(filterInfo(1, ETH_P_ALL)).toBe(66304);
    expect(filterInfo(49152, ETH_P_IP)).toBe(0xc0000008);
  });

  test("a dumped filter reads back; the guard is recognised only whole", () => {
    const w = new NetlinkWriter();
    encodeBpfFilterAdd(w, SEQ, IFINDEX, loopbackGuardFilter(), false);
    const msg = new DataView(w.buf.buffer, 0, w.len);
    const f = parseFilter(msg);
    expect(f).toMatchObject({ parent: CLSACT_INGRESS, prio: 1, protocol: ETH_P_ALL, handle: 0x74736e74, kind: "bpf" });
    expect(f.bpf?.ops).toEqual(loopbackGuardProgram());
    expect(isLoopbackGuard(f)).toBe(true);
    expect(isLoopbackGuard({ ...f, bpf: { ops: fromTcText("1,6 0 0 4294967295"), flags: TCA_BPF_FLAG_ACT_DIRECT } })).toBe(false);
    expect(isLoopbackGuard({ ...f, bpf: { ...f.bpf!, flags: 0 } })).toBe(false);
    expect(isLoopbackGuard({ ...f, handle: 1 })).toBe(false);
    expect(isLoopbackGuard({ ...f, protocol: ETH_P_IP })).toBe(false);
  });

  test("the kernel lacking clsact or cls_bpf is told apart from other failures", () => {
    expect(missingFeature(new KernelError(OP_ADD_CLSACT, "veth1", ENOENT))).toBe("no clsact qdisc (CONFIG_NET_SCH_INGRESS)");
    expect(missingFeature(new KernelError(OP_ADD_BPF_FILTER, "veth1", EOPNOTSUPP))).toBe("no cls_bpf classifier (CONFIG_NET_CLS_BPF)");
    expect(missingFeature(new KernelError(OP_ADD_BPF_FILTER, "veth1", EPERM))).toBeUndefined();
    expect(missingFeature(new KernelError("list tc filters", "veth1", ENOENT))).toBeUndefined();
  });
});

/**
 * Runs a classic BPF program on a frame as cls_bpf does at tc ingress: offset 0 is the Ethernet
 * header, SKF_AD_PROTOCOL is skb->protocol, a load past the end ends the program with 0.
 * Only the instructions the guard uses; any other is an error here.
 */
function run(prog: Uint8Array, frame: Uint8Array, protocol: number): number {
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const f = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let a = 0, x = 0, pc = 0;
  const load = (at: number, size: number): number | undefined => {
    if (at < 0 || at + size > frame.length) return undefined;
    return size === 4 ? f.getUint32(at) : size === 2 ? f.getUint16(at) : f.getUint8(at);
  };
  for (let steps = 0; steps < 4096; steps++) {
    const code = v.getUint16(pc * 8, true), jt = v.getUint8(pc * 8 + 2), jf = v.getUint8(pc * 8 + 3), k = v.getUint32(pc * 8 + 4, true);
    pc++;
    const size = (code & 0x18) === BPF_B ? 1 : (code & 0x18) === BPF_H ? 2 : 4;
    if (code === (BPF_LD | BPF_W | BPF_ABS) && k === ((SKF_AD_OFF + SKF_AD_PROTOCOL) >>> 0)) a = protocol;
    else if ((code & 0xe7) === (BPF_LD | BPF_ABS) || (code & 0xe7) === (BPF_LD | BPF_IND)) {
      const at = (code & 0xe0) === BPF_IND ? x + k : k;
      const got = load(at, size);
      if (got === undefined) return 0;
      a = got;
    } else if (code === (BPF_LDX | BPF_W | BPF_IMM)) x = k;
    else if (code === (BPF_JMP | BPF_JEQ | BPF_K)) pc += a === k ? jt : jf;
    else if (code === (BPF_JMP | BPF_JA)) pc += k;
    else if (code === (BPF_RET | BPF_K)) return k | 0;
    else throw new Error(`instruction ${code.toString(16)} at ${pc - 1} is not interpreted here`);
  }
  throw new Error("the program did not end");
}

/** An untagged Ethernet frame (or one whose only tag is in the skb's metadata). */
function frame(ethertype: number, payload: number[]): Uint8Array {
  const b: number[] = [2, 0x74, 10, 78, 0, 1, 2, 0x74, 10, 78, 0, 2];
  b.push(ethertype >> 8, ethertype & 0xff, ...payload);
  return new Uint8Array(b);
}

/** An IPv6 header (40 bytes) from fd00::2 to `dst` (16 bytes), then a TCP SYN's first bytes. */
function ipv6(dst: number[]): number[] {
  return [0x60, 0, 0, 0, 0, 20, 6, 64, 0xfd, ...new Array(14).fill(0), 2, ...dst, 0x4e, 0x20, 0x45, 0x71];
}

/** An IPv4 header (20 bytes) from 10.78.0.2 to `dst`, then a TCP SYN's first bytes. */
function ipv4(dst: [number, number, number, number]): number[] {
  return [0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 78, 0, 2, ...dst, 0x4e, 0x20, 0x45, 0x71];
}

describe("the guard's program", () => {
  const prog = loopbackGuardProgram();

  test("is the program the kernel accepted and tc -d printed", () => {
    expect(prog).toEqual(fromTcText(
      "30,32 0 0 4294963200,1 0 0 14,21 15 0 2048,21 16 0 34525,21 1 0 33024,21 0 23 34984,72 0 0 2,1 0 0 18,21 9 0 2048," +
      "21 10 0 34525,21 1 0 33024,21 0 17 34984,72 0 0 2,1 0 0 22,21 3 0 2048,21 4 0 34525,21 11 0 33024,21 10 11 34984," +
      "80 0 0 16,21 8 9 127,64 0 0 24,21 0 7 0,64 0 0 28,21 0 5 0,64 0 0 32,21 0 3 0,64 0 0 36,21 0 1 1,6 0 0 2,6 0 0 4294967295",
    ));
  });

  test("drops IPv4 for 127.0.0.0/8, gives no verdict on anything else", () => {
    expect(run(prog, frame(ETH_P_IP, ipv4([127, 0, 0, 1])), ETH_P_IP)).toBe(TC_ACT_SHOT);
    expect(run(prog, frame(ETH_P_IP, ipv4([127, 1, 2, 3])), ETH_P_IP)).toBe(TC_ACT_SHOT);
    expect(run(prog, frame(ETH_P_IP, ipv4([10, 78, 0, 1])), ETH_P_IP)).toBe(TC_ACT_UNSPEC);
    expect(run(prog, frame(ETH_P_IP, ipv4([128, 0, 0, 1])), ETH_P_IP)).toBe(TC_ACT_UNSPEC);
    expect(run(prog, frame(ETH_P_IP, ipv4([126, 255, 255, 255])), ETH_P_IP)).toBe(TC_ACT_UNSPEC);
    // ARP (whose target may be anything) passes.
    expect(run(prog, frame(0x0806, [0, 1, 8, 0, 6, 4, 0, 1, ...new Array(20).fill(127)]), 0x0806)).toBe(TC_ACT_UNSPEC);
  });

  test("drops IPv6 for ::1 only, tagged or not", () => {
    const one = [...new Array(15).fill(0), 1];
    expect(run(prog, frame(ETH_P_IPV6, ipv6(one)), ETH_P_IPV6)).toBe(TC_ACT_SHOT);
    expect(run(prog, taggedInData([], ipv6(one), ETH_P_IPV6), ETH_P_8021Q)).toBe(TC_ACT_SHOT);
    // ::, ::2, ::1:0:0:0:1, fd00::1 and 1:: pass: only ::1 is loopback.
    for (const dst of [new Array(16).fill(0), [...new Array(15).fill(0), 2], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], [0xfd, ...new Array(14).fill(0), 1], [0, 1, ...new Array(14).fill(0)]]) {
      expect(run(prog, frame(ETH_P_IPV6, ipv6(dst)), ETH_P_IPV6)).toBe(TC_ACT_UNSPEC);
    }
  });

  test("looks through VLAN tags still in the data, 802.1Q and 802.1ad, and drops deeper stacks", () => {
    // One more tag in the data: skb->protocol is 802.1Q, the tag at 14, its ethertype at 16.
    expect(run(prog, taggedInData([], ipv4([127, 0, 0, 1])), ETH_P_8021Q)).toBe(TC_ACT_SHOT);
    expect(run(prog, taggedInData([ETH_P_8021AD], ipv4([127, 0, 0, 1])), ETH_P_8021Q)).toBe(TC_ACT_SHOT);
    expect(run(prog, taggedInData([], ipv4([10, 78, 0, 1])), ETH_P_8021AD)).toBe(TC_ACT_UNSPEC);
    expect(run(prog, taggedInData([ETH_P_8021Q], ipv4([10, 78, 0, 1])), ETH_P_8021Q)).toBe(TC_ACT_UNSPEC);
    // Three tags in the data (four with the one in metadata): dropped whatever they carry.
    expect(run(prog, taggedInData([ETH_P_8021Q, ETH_P_8021Q], ipv4([10, 78, 0, 1])), ETH_P_8021Q)).toBe(TC_ACT_SHOT);
  });

  test("a frame too short for the address ends with 0 (TC_ACT_OK), which IP then drops as truncated", () => {
    expect(run(prog, frame(ETH_P_IP, [0x45, 0, 0, 20]), ETH_P_IP)).toBe(TC_ACT_OK);
  });
});

/**
 * A frame as the kernel leaves it when its outer tag is in the skb's metadata and the next one is
 * still in the data (skb->protocol is that tag's TPID): the MAC addresses moved up to the network
 * header, then that tag's TCI and the type of what follows at 14..17, `moreTpids` further tags,
 * then the payload.
 */
function taggedInData(moreTpids: number[], payload: number[], inner = ETH_P_IP): Uint8Array {
  const b: number[] = [2, 0x74, 10, 78, 0, 1, 2, 0x74, 10, 78, 0, 2, 0x81, 0x00];
  // The first in-data tag: TCI, then the type of what follows.
  for (const type of [...moreTpids, inner]) b.push(0, 0, type >> 8, type & 0xff);
  b.push(...payload);
  return new Uint8Array(b);
}
