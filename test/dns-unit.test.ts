// The DNS wire format the resolver reads and writes (src/dns/message.ts), without a kernel.
import { describe, expect, test } from "bun:test";
import {
  RCODE_FORMERR, RCODE_NOERROR, RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA, answersQuestion, buildHeaderError, buildReply, encodeName, fitForUdp, messageId,
  parseQuestion, reverseV4, reverseV6, screenQuery, udpAnswerLimit, withId,
} from "../src/dns/message.ts";

/** A standard query for name/type, with an EDNS OPT record advertising `edns` bytes if given. */
function query(name: string, type = TYPE_A, edns?: number): Uint8Array {
  const qname = encodeName(name);
  const opt = edns === undefined ? [] : [0, 0, 41, edns >> 8, edns & 255, 0, 0, 0, 0, 0, 0];
  const out = new Uint8Array(12 + qname.length + 4 + opt.length);
  out.set([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, opt.length ? 1 : 0]);
  out.set(qname, 12);
  out.set([0, type, 0, 1], 12 + qname.length);
  out.set(opt, 12 + qname.length + 4);
  return out;
}

describe("names", () => {
  test("a name of 255 octets on the wire is read; one longer is FORMERR, not forwarded", () => {
    const label = "a".repeat(63);
    const longest = [label, label, label, "a".repeat(61)].join("."); // 64*3 + 62 + 1 = 255 octets
    expect(encodeName(longest).length).toBe(255);
    expect(parseQuestion(query(longest))?.name).toBe(longest);
    const over = `${longest}a`;
    expect(parseQuestion(query(over))).toBeUndefined();
    const screened = screenQuery(query(over));
    expect(screened && "error" in screened && screened.error[3]! & 0x0f).toBe(RCODE_FORMERR);
  });
});

describe("answers over UDP", () => {
  // 60 A records: 12 + 17 (question) + 60 * 16 = 989 bytes.
  const many = Array.from({ length: 60 }, (_, i) => ({ type: TYPE_A, ttl: 60, data: new Uint8Array([10, 0, 0, i]) }));

  test("without EDNS the client takes 512 bytes; with it, what its OPT says", () => {
    const plain = query("web.test");
    expect(udpAnswerLimit(plain, parseQuestion(plain)!)).toBe(512);
    const edns = query("web.test", TYPE_A, 1232);
    expect(udpAnswerLimit(edns, parseQuestion(edns)!)).toBe(1232);
    const small = query("web.test", TYPE_A, 100);
    expect(udpAnswerLimit(small, parseQuestion(small)!)).toBe(512);
  });

  test("an answer past the limit goes back as its header with TC and the question alone", () => {
    const q = query("web.test");
    const pq = parseQuestion(q)!;
    const big = buildReply(q, pq, 0, many);
    expect(big.length).toBeGreaterThan(512);
    const fit = fitForUdp(big, q, pq);
    expect(fit.length).toBe(pq.end);
    expect(fit[2]! & 0x02).toBe(0x02); // TC
    expect(fit[2]! & 0x80).toBe(0x80); // still an answer
    expect([...fit.subarray(0, 2)]).toEqual([0x12, 0x34]);
    expect([fit[4], fit[5], fit[6], fit[7], fit[10], fit[11]]).toEqual([0, 1, 0, 0, 0, 0]);
    expect(parseQuestion(new Uint8Array([...q.subarray(0, 12), ...fit.subarray(12)]))?.name).toBe("web.test");
    // With EDNS 4096 the same answer fits and goes as it is.
    const e = query("web.test", TYPE_A, 4096);
    const pe = parseQuestion(e)!;
    const whole = buildReply(e, pe, 0, many);
    expect(fitForUdp(whole, e, pe)).toBe(whole);
  });
});

const hexOf = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("hex") : "none");
const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, "hex"));

describe("what reaches 127.0.0.11 that is not a plain query (the packets test/resolver.test.ts sends)", () => {
  const header = (flags: string, qd: string) => `abcd${flags}${qd}000000000000`;
  const question = "0378797a0000010001"; // "xyz" A IN

  test("no question, or one cut short: FORMERR, the header alone with the id, RD kept", () => {
    for (const pkt of [header("0100", "0000"), header("0100", "0001") + "3f", header("0100", "0002") + question + question]) {
      const s = screenQuery(bytes(pkt));
      expect(s && "error" in s && hexOf(s.error)).toBe("abcd8181000000000000000" + "0");
    }
  });

  test("another opcode (STATUS): NOTIMP, the opcode echoed", () => {
    const s = screenQuery(bytes(header("1100", "0001") + question));
    expect(s && "error" in s && hexOf(s.error)).toBe("abcd9184000000000000000" + "0");
  });

  test("a response, or less than a header: no answer at all", () => {
    expect(screenQuery(bytes(header("8180", "0001") + question))).toBeUndefined();
    expect(screenQuery(bytes("abcd01"))).toBeUndefined();
    expect(buildHeaderError(bytes("abcd01"), RCODE_FORMERR)).toBeUndefined();
  });

  test("a question using a compression pointer is not read (FORMERR)", () => {
    expect(parseQuestion(bytes(header("0100", "0001") + "c00c00010001"))).toBeUndefined();
  });
});

describe("answers", () => {
  test("an A answer, byte for byte: the question repeated, a pointer to its name, TTL and address", () => {
    const q = query("Web.Test");
    const pq = parseQuestion(q)!;
    expect(pq).toEqual({ id: 0x1234, flags: 0x0100, name: "web.test", type: TYPE_A, qclass: 1, end: 12 + 10 + 4 });
    const r = buildReply(q, pq, RCODE_NOERROR, [{ type: TYPE_A, ttl: 600, data: Uint8Array.of(10, 77, 0, 2) }]);
    expect(hexOf(r)).toBe(
      "1234" + "8580" + "0001" + "0001" + "0000" + "0000" + "03576562045465737400" + "0001" + "0001" +
      "c00c" + "0001" + "0001" + "00000258" + "0004" + "0a4d0002",
    );
    expect(answersQuestion(q, pq, r)).toBe(true);
    const nx = buildReply(q, pq, RCODE_NXDOMAIN);
    expect([nx[3]! & 0x0f, nx[7]]).toEqual([RCODE_NXDOMAIN, 0]);
  });

  test("an answer to another question, a query, or a short one is not taken for the answer", () => {
    const q = query("web.test");
    const pq = parseQuestion(q)!;
    const other = query("web.tesu");
    expect(answersQuestion(q, pq, buildReply(other, parseQuestion(other)!, 0))).toBe(false);
    expect(answersQuestion(q, pq, q)).toBe(false);
    expect(answersQuestion(q, pq, buildReply(q, pq, 0).subarray(0, 20))).toBe(false);
    expect(answersQuestion(q, pq, buildReply(query("web.test", TYPE_AAAA), parseQuestion(query("web.test", TYPE_AAAA))!, 0))).toBe(false);
  });

  test("ids are read and replaced without touching the rest", () => {
    const q = query("web.test");
    expect(messageId(q)).toBe(0x1234);
    const w = withId(q, 0xbeef);
    expect(messageId(w)).toBe(0xbeef);
    expect(hexOf(w.subarray(2))).toBe(hexOf(q.subarray(2)));
    expect(messageId(q)).toBe(0x1234);
  });
});

describe("reverse names", () => {
  test("in-addr.arpa: four octets, last first; anything else is not one", () => {
    expect([...reverseV4("2.0.77.10.in-addr.arpa")!]).toEqual([10, 77, 0, 2]);
    for (const n of ["256.0.77.10.in-addr.arpa", "0.77.10.in-addr.arpa", "2.0.77.10.in-addr.arpa.x", "a.0.77.10.in-addr.arpa"]) expect(reverseV4(n)).toBeUndefined();
  });

  test("ip6.arpa: 32 nibbles, last first", () => {
    const name = `${"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.4.0.0.0.0.d.f"}.ip6.arpa`;
    expect(Buffer.from(reverseV6(name)!).toString("hex")).toBe("fd00004d000000000000000000000002");
    expect(reverseV6(name.slice(2))).toBeUndefined();
    expect(reverseV6(name.replace("d.f.ip6", "D.F.ip6"))).toBeUndefined();
    expect(hexOf(encodeName("2.0.77.10.in-addr.arpa."))).toBe("0132013002373702313007696e2d61646472046172706100");
  });
});
