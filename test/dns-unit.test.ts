// The DNS wire format the resolver reads and writes (src/dns/message.ts), without a kernel.
import { describe, expect, test } from "bun:test";
import { RCODE_FORMERR, TYPE_A, buildReply, encodeName, fitForUdp, parseQuestion, screenQuery, udpAnswerLimit } from "../src/dns/message.ts";

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
