// Pure functions: netlink encoding and decoding, IPv4 arithmetic. (Option scanning: cli-unit.test.ts.)
import { describe, expect, test } from "bun:test";
import { contains, formatIPv4, lastAddress, overlaps, parseCidr, parseIPv4 } from "../src/ip/ipv4.ts";
import { NLA_F_NESTED } from "../src/netlink/constants.ts";
import { Attrs, splitMessages } from "../src/netlink/reader.ts";
import { NetlinkWriter } from "../src/netlink/writer.ts";

const hex = (w: NetlinkWriter) => Buffer.from(w.buf.subarray(0, w.len)).toString("hex");

describe("NetlinkWriter", () => {
  test("header, family struct, padded string and nested attributes", () => {
    const w = new NetlinkWriter(16); // small on purpose: it must grow
    const at = w.begin(16, 0x0605, 0x11223344);
    const h = w.struct(16);
    w.view.setUint32(h + 8, 1, true);
    w.attrStr(3, "veth1"); // 5 chars + NUL = 6, padded to 8
    w.nest(18, () => w.attrStr(1, "veth"));
    w.end(at);
    expect(w.len % 4).toBe(0);
    expect(hex(w)).toBe(
      [
        "3c000000", "1000", "0506", "44332211", "00000000", // nlmsghdr, len 60
        "00000000", "00000000", "01000000", "00000000", // ifinfomsg with flags = 1
        "0a00", "0300", "7665746831000000", // IFLA_IFNAME "veth1\0" + 2 pad
        "1000", "1280", "0900", "0100", "7665746800000000", // nested, NLA_F_NESTED set
      ].join(""),
    );
  });

  test("writes that make the buffer grow land in the grown buffer", () => {
    const w = new NetlinkWriter(8);
    const big = new Uint8Array(100).fill(7);
    w.attrU32(1, 0xdeadbeef); // grows 8 -> 16
    w.attrBytes(2, big); // grows again while writing
    w.attrU8(3, 9);
    const a = new Attrs(new DataView(w.buf.buffer, 0, w.len), 0);
    expect(a.u32(1)).toBe(0xdeadbeef);
    expect(a.bytes(2)).toEqual(big);
    expect(a.u8(3)).toBe(9);
  });

  test("an attribute or nest past nla_len's 16 bits is refused, not truncated", () => {
    const w = new NetlinkWriter();
    expect(() => w.attrBytes(1, new Uint8Array(70000))).toThrow(RangeError);
    expect(() => w.nest(2, () => { for (let i = 0; i < 20; i++) w.attrBytes(1, new Uint8Array(4000)); })).toThrow(RangeError);
  });

  test("big-endian and host-order integers", () => {
    const w = new NetlinkWriter();
    w.attrBe32(1, 0xffffff9c); // -100 as nf_tables wants priorities
    w.attrU32(2, 0x01020304);
    w.attrBe16(3, 8080);
    expect(hex(w)).toBe("08000100ffffff9c" + "0800020004030201" + "060003001f900000");
  });
});

describe("reader", () => {
  test("round-trips messages and attributes written by the writer", () => {
    const w = new NetlinkWriter();
    for (const seq of [7, 8]) {
      const at = w.begin(20, 1, seq);
      w.struct(8);
      w.attrStr(3, `name${seq}`);
      w.nest(5, () => w.attrU32(1, seq * 100));
      w.end(at);
    }
    const msgs = splitMessages(w.buf, w.len);
    expect(msgs.map((m) => m.seq)).toEqual([7, 8]);
    const a = new Attrs(msgs[1]!.view, 16 + 8);
    expect(a.str(3)).toBe("name8");
    expect(a.nested(5)?.u32(1)).toBe(800);
    expect(a.has(5 | NLA_F_NESTED)).toBe(false); // flags are masked off the type
  });

  test("a truncated buffer yields only whole messages", () => {
    const w = new NetlinkWriter();
    const at = w.begin(1, 0, 1);
    w.attrU32(1, 1);
    w.end(at);
    expect(splitMessages(w.buf, w.len - 1)).toEqual([]);
  });
});

describe("IPv4", () => {
  test("parse and format", () => {
    expect(parseIPv4("10.77.0.1")).toBe(0x0a4d0001);
    expect(formatIPv4(0x0a4d0001)).toBe("10.77.0.1");
    for (const bad of ["10.77.0", "256.1.1.1", "1.2.3.4.5", "a.b.c.d", ""]) expect(parseIPv4(bad)).toBeUndefined();
  });
  test("subnets", () => {
    const s = parseCidr("10.77.3.4/16")!;
    expect(s).toEqual({ net: 0x0a4d0000, prefix: 16 });
    expect(formatIPv4(lastAddress(s))).toBe("10.77.255.255");
    expect(contains(s, parseIPv4("10.77.200.1")!)).toBe(true);
    expect(contains(s, parseIPv4("10.78.0.1")!)).toBe(false);
    expect(overlaps(s, parseCidr("10.77.5.0/24")!)).toBe(true);
    expect(overlaps(s, parseCidr("10.0.0.0/8")!)).toBe(true);
    expect(overlaps(s, parseCidr("172.17.0.0/16")!)).toBe(false);
    expect(parseCidr("10.0.0.0/33")).toBeUndefined();
    expect(parseCidr("10.0.0.0")).toBeUndefined();
  });
});

describe("children", () => {
  // Bun crashes (an uncaught ECHILD) when someone else reaps a child it spawned, and tsnet's
  // orphan reaper skips only the children spawnChild registered.
  test("every spawn in src/ goes through spawnChild", () => {
    const { readdirSync, readFileSync } = require("node:fs") as typeof import("node:fs");
    const root = `${import.meta.dir}/../src`;
    const offenders = (readdirSync(root, { recursive: true }) as string[])
      .filter((f) => f.endsWith(".ts") && f !== "process/children.ts")
      .filter((f) => /Bun\.spawn(Sync)?\(/.test(readFileSync(`${root}/${f}`, "utf8")));
    expect(offenders).toEqual([]);
  });
});

describe("errno names and hints", () => {
  const { errnoName, errnoHint } = require("../src/errors/errno.ts") as typeof import("../src/errors/errno.ts");
  const { KernelError } = require("../src/errors/errors.ts") as typeof import("../src/errors/errors.ts");
  const { constants } = require("node:os") as typeof import("node:os");

  // Aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK, ENOTSUP = EOPNOTSUPP) take the first name.
  test("every errno this system's libc knows has its name (node's table is the oracle)", () => {
    const known = Object.entries(constants.errno).filter(([name]) => !["EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"].includes(name));
    expect(known.length).toBeGreaterThan(70);
    for (const [name, n] of known) expect(`${n} ${errnoName(n)}`).toBe(`${n} ${name}`);
    expect(errnoName(54)).toBe("EXFULL");
    expect(errnoName(524)).toBe("ENOTSUPP");
  });

  test("a kernel error without ext-ack text carries the errno's hint; ext-ack text wins", () => {
    expect(new KernelError("sendto", "nf_tables", 90, "Message too long").message).toBe(
      `sendto nf_tables: EMSGSIZE (Message too long): ${errnoHint(90)}`,
    );
    expect(new KernelError("add link", "x", 95, "Operation not supported", "Unknown device type").message).toBe(
      "add link x: EOPNOTSUPP (Operation not supported): Unknown device type",
    );
    expect(new KernelError("open", "/run/x", 2, "no such namespace").message).toBe("open /run/x: ENOENT (no such namespace)");
  });
});
