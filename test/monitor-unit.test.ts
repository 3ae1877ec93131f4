// nf_tables' announcements without a kernel: the datagrams a real kernel multicast on
// NFNLGRP_NFTABLES while `nft` ran the commands of test/replay/announcements.ts, as a socket
// without a filter read them, and as one with the nat watch's classic BPF filter attached read
// them (test/replay/captures/nftables-announcements.json, `npm run capture`). The decoder must
// read each as what the command did; the filter program, run here by an interpreter with the
// kernel's semantics for socket filters, must pass exactly what the kernel's run of it passed;
// and natTableTouched must tell which of them may have taken something of tsnet's.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseIp } from "../src/ip/addr.ts";
import {
  BPF_ADD, BPF_ALU, BPF_AND, BPF_IMM, BPF_JA, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_OR, BPF_RET, BPF_ST,
  BPF_X,
} from "../src/netlink/bpf.ts";
import { splitMessages } from "../src/netlink/reader.ts";
import { fromHex } from "../src/netlink/replay.ts";
import { NAT_WATCH_FILTER, natTableTouched, type OwnedPorts } from "../src/nat/restore.ts";
import {
  NFPROTO_INET, NFPROTO_IPV4, NFT_MSG_DELCHAIN, NFT_MSG_DELRULE, NFT_MSG_DELSET, NFT_MSG_DELSETELEM, NFT_MSG_DELTABLE, NFT_MSG_NEWCHAIN, NFT_MSG_NEWGEN,
  NFT_MSG_NEWRULE, NFT_MSG_NEWSET, NFT_MSG_NEWSETELEM, NFT_MSG_NEWTABLE,
} from "../src/nftables/constants.ts";
import { nftEvent, nftFilterProgram, type NftEvent, type NftWatchFilter } from "../src/nftables/index.ts";
import { ANNOUNCEMENT_COMMANDS } from "./replay/announcements.ts";

interface Step {
  cmd: string;
  all: string[];
  passed: string[];
}
const capture = JSON.parse(readFileSync(new URL("./replay/captures/nftables-announcements.json", import.meta.url), "utf8")) as { filter: NftWatchFilter; steps: Step[] };

function events(hex: string): NftEvent[] {
  const b = fromHex(hex);
  return splitMessages(b, b.byteLength).map((m) => {
    const ev = nftEvent(m.view, m.type, m.portid);
    if (!ev) throw new Error(`not an nf_tables announcement: type ${m.type}`);
    return ev;
  });
}

const INET = NFPROTO_INET;
const IP = NFPROTO_IPV4;
// What each command announces besides the generation that ends its transaction: [msg, family, table, set?, element keys?].
type Want = [number, number, string, string?, string[]?];
const announced: Record<string, Want[]> = {
  "add table inet other": [[NFT_MSG_NEWTABLE, INET, "other"]],
  "add set inet other s { type inet_service; }": [[NFT_MSG_NEWSET, INET, "other"]],
  "add element inet other s { 1 }": [[NFT_MSG_NEWSETELEM, INET, "other", "s", ["0001"]]],
  "delete element inet other s { 1 }": [[NFT_MSG_DELSETELEM, INET, "other", "s", ["0001"]]],
  "add table inet tsnet": [[NFT_MSG_NEWTABLE, INET, "tsnet"]],
  "add chain inet tsnet c": [[NFT_MSG_NEWCHAIN, INET, "tsnet"]],
  "add rule inet tsnet c accept": [[NFT_MSG_NEWRULE, INET, "tsnet"]],
  "add map inet tsnet ports { type inet_proto . inet_service : ipv4_addr . inet_service; }": [[NFT_MSG_NEWSET, INET, "tsnet"]],
  // Keys as concatenations pad each field to 4 bytes: tcp (6) . 8080 (1f90, network order).
  "add element inet tsnet ports { tcp . 8080 : 10.77.0.2 . 80 }": [[NFT_MSG_NEWSETELEM, INET, "tsnet", "ports", ["060000001f900000"]]],
  "add element inet tsnet ports { udp . 53 : 10.77.0.3 . 53 }": [[NFT_MSG_NEWSETELEM, INET, "tsnet", "ports", ["1100000000350000"]]],
  "add table ip tsnet": [[NFT_MSG_NEWTABLE, IP, "tsnet"]],
  "delete table ip tsnet": [[NFT_MSG_DELTABLE, IP, "tsnet"]],
  "add table inet tsnetx": [[NFT_MSG_NEWTABLE, INET, "tsnetx"]],
  "delete table inet tsnetx": [[NFT_MSG_DELTABLE, INET, "tsnetx"]],
  "delete element inet tsnet ports { tcp . 8080 }": [[NFT_MSG_DELSETELEM, INET, "tsnet", "ports", ["060000001f900000"]]],
  "flush chain inet tsnet c": [[NFT_MSG_DELRULE, INET, "tsnet"]],
  // The kernel names each element a flush removes.
  "flush map inet tsnet ports": [[NFT_MSG_DELSETELEM, INET, "tsnet", "ports", ["1100000000350000"]]],
  // A flush deletes every table, each after its sets and chains, in one transaction.
  "flush ruleset": [[NFT_MSG_DELSET, INET, "other"], [NFT_MSG_DELTABLE, INET, "other"], [NFT_MSG_DELSET, INET, "tsnet"], [NFT_MSG_DELCHAIN, INET, "tsnet"], [NFT_MSG_DELTABLE, INET, "tsnet"]],
};

describe("announcements recorded from the kernel", () => {
  test("the capture is of these commands and this filter", () => {
    expect(capture.steps.map((s) => s.cmd)).toEqual(ANNOUNCEMENT_COMMANDS);
    expect(capture.filter).toEqual(JSON.parse(JSON.stringify(NAT_WATCH_FILTER)));
  });

  for (const step of capture.steps) {
    test(`decoded: ${step.cmd}`, () => {
      const evs = step.all.flatMap(events);
      // The transaction ends with its generation: no table, nothing to decode but the kind.
      expect(evs.at(-1)).toMatchObject({ msg: NFT_MSG_NEWGEN, table: undefined, set: undefined, elements: undefined });
      const got = evs.filter((e) => e.msg !== NFT_MSG_NEWGEN).map((e): Want => {
        const w: Want = [e.msg, e.family, e.table!];
        if (e.set !== undefined) w.push(e.set, e.elements!.map((x) => Buffer.from(x.key).toString("hex")));
        return w;
      });
      expect(got).toEqual(announced[step.cmd]!);
      // Every announcement carries the port id of the nft process that caused it, not 0 (the kernel's own).
      expect(new Set(evs.map((e) => e.portid)).size).toBe(1);
      expect(evs[0]!.portid).not.toBe(0);
    });
  }
});

/**
 * Runs a classic BPF socket filter on a datagram as the kernel does (net/core/filter.c's
 * semantics): loads are big-endian, a load past the end ends the program with 0 (drop), BPF_LEN
 * is the datagram's length, M[] is the 16-word scratch memory. Returns the verdict: how many
 * bytes to keep, 0 to drop.
 */
function runFilter(prog: Uint8Array, pkt: Uint8Array): number {
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const p = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  const mem = new Uint32Array(16);
  let a = 0, x = 0, pc = 0;
  const n = prog.byteLength / 8;
  while (pc < n) {
    const code = v.getUint16(pc * 8, true), jt = v.getUint8(pc * 8 + 2), jf = v.getUint8(pc * 8 + 3), k = v.getUint32(pc * 8 + 4, true);
    pc++;
    const cls = code & 0x07;
    const src = code & BPF_X ? x : k;
    if (cls === BPF_LD || cls === BPF_LDX) {
      const mode = code & 0xe0;
      const size = [4, 2, 1][(code & 0x18) >> 3]!;
      let val: number;
      if (mode === BPF_IMM) val = k;
      else if (mode === BPF_MEM) val = mem[k]!;
      else if (mode === BPF_LEN) val = pkt.byteLength;
      else if (mode === BPF_IND && cls === BPF_LD) {
        const at = (x + k) >>> 0;
        if (at + size > pkt.byteLength) return 0;
        val = size === 4 ? p.getUint32(at) : size === 2 ? p.getUint16(at) : p.getUint8(at);
      } else throw new Error(`load mode ${mode.toString(16)} at ${pc - 1} is not interpreted here`);
      if (cls === BPF_LD) a = val >>> 0;
      else x = val >>> 0;
    } else if (cls === BPF_ST) mem[k] = a;
    else if (cls === BPF_ALU) {
      const op = code & 0xf0;
      if (op === BPF_ADD) a = (a + src) >>> 0;
      else if (op === BPF_AND) a = (a & src) >>> 0;
      else if (op === BPF_OR) a = (a | src) >>> 0;
      else if (op === BPF_LSH) a = (a << src) >>> 0;
      else throw new Error(`ALU op ${op.toString(16)} is not interpreted here`);
    } else if (cls === BPF_JMP) {
      const op = code & 0xf0;
      if (op === BPF_JA) {
        pc += k;
        continue;
      }
      const taken = op === BPF_JEQ ? a === src : op === BPF_JGT ? a > src : op === BPF_JGE ? a >= src : (() => { throw new Error(`jump ${op.toString(16)} is not interpreted here`); })();
      pc += taken ? jt : jf;
    } else if (cls === BPF_RET) return (code & 0x18) === BPF_K ? k >>> 0 : a;
    else throw new Error(`instruction ${code.toString(16)} at ${pc - 1} is not interpreted here`);
  }
  throw new Error("the program ran off its end");
}

describe("the watch's kernel filter", () => {
  const prog = nftFilterProgram(NAT_WATCH_FILTER);

  test("is built once per filter and fits the kernel's limit", () => {
    expect(nftFilterProgram({ ...NAT_WATCH_FILTER })).toBe(prog);
    expect(prog.byteLength / 8).toBeLessThanOrEqual(4096);
    expect(() => nftFilterProgram({ ...NAT_WATCH_FILTER, table: "t".repeat(252) })).toThrow("is too long to filter on");
  });

  test("passes exactly the datagrams the kernel's run of it passed, whole", () => {
    let passed = 0;
    for (const step of capture.steps) {
      for (const d of step.all) {
        const verdict = runFilter(prog, fromHex(d));
        expect({ cmd: step.cmd, pass: verdict !== 0 }).toEqual({ cmd: step.cmd, pass: step.passed.includes(d) });
        if (verdict) expect(verdict).toBe(0xffffffff);
      }
      passed += step.passed.length;
    }
    // Deletions in inet tsnet (an element, the rules, a flushed map) and the flush's one datagram.
    expect(passed).toBe(4);
  });

  test("what it cannot read whole passes, for the reader to sort out", () => {
    const flush = capture.steps.find((s) => s.cmd === "flush ruleset")!.all[0]!;
    const other = capture.steps.find((s) => s.cmd === "delete table inet tsnetx")!.all[0]!;
    // Cut inside its first message's table name: cannot be looked at, so it passes.
    expect(runFilter(prog, fromHex(other).subarray(0, 24))).toBe(0xffffffff);
    // A message whose nlmsg_len is below a header's, after one that does not match.
    const bytes = fromHex(other);
    const first = new DataView(bytes.buffer).getUint32(0, true);
    const broken = new Uint8Array(first + 20);
    broken.set(bytes.subarray(0, first));
    new DataView(broken.buffer).setUint32(first, 8, true);
    expect(runFilter(prog, broken)).toBe(0xffffffff);
    // Nine messages, none matching: more than the program looks at, so it passes.
    const msg = bytes.subarray(0, first);
    const nine = new Uint8Array(msg.byteLength * 9);
    for (let i = 0; i < 9; i++) nine.set(msg, i * msg.byteLength);
    expect(runFilter(prog, nine)).toBe(0xffffffff);
    expect(runFilter(prog, nine.subarray(0, msg.byteLength * 7))).toBe(0);
    expect(runFilter(prog, fromHex(flush))).toBe(0xffffffff);
  });
});

describe("natTableTouched on the recorded announcements", () => {
  const owned: OwnedPorts[] = [
    { owner: { tag: "c0ffee", name: "web" }, ports: [{ proto: "tcp", hostIp: parseIp("0.0.0.0")!, hostPort: 8080, containerIp: parseIp("10.77.0.2")!, containerPort: 80 }] },
  ];
  const touched = (cmd: string, ours = false) => {
    const evs = capture.steps.find((s) => s.cmd === cmd)!.all.flatMap(events);
    return natTableTouched(evs, owned, new Set(ours ? evs.map((e) => e.portid) : []));
  };

  test("a deletion in inet tsnet by someone else counts; additions and other tables do not", () => {
    expect(touched("delete element inet tsnet ports { tcp . 8080 }")).toBe(true);
    expect(touched("flush chain inet tsnet c")).toBe(true);
    expect(touched("flush ruleset")).toBe(true);
    for (const cmd of ["add element inet tsnet ports { tcp . 8080 : 10.77.0.2 . 80 }", "delete element inet other s { 1 }", "delete table ip tsnet", "delete table inet tsnetx", "add table inet tsnet"]) {
      expect({ cmd, touched: touched(cmd) }).toEqual({ cmd, touched: false });
    }
  });

  test("a port element no owner of ours holds (another container ending) does not count", () => {
    expect(touched("flush map inet tsnet ports")).toBe(false);
  });

  test("our own socket's deletions do not count", () => {
    expect(touched("delete element inet tsnet ports { tcp . 8080 }", true)).toBe(false);
    expect(touched("flush ruleset", true)).toBe(false);
  });
});
