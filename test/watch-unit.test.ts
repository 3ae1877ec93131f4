// Notifications read from the event loop (src/netlink/watch.ts) without a kernel socket: the
// watch only needs a readable descriptor, so a FIFO stands in for the multicast socket and the
// test writes netlink datagrams into it. What a FIFO cannot do (ENOBUFS) stays with the kernel
// tests (test/heal.test.ts).
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetlinkWriter } from "../src/netlink/writer.ts";
import { watchSocket, type WatchHandlers } from "../src/netlink/watch.ts";

const dir = mkdtempSync(join(tmpdir(), "tsnet-watch-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fifos = 0;

/** A FIFO's two ends: the watch reads r (non-blocking, as a socket's dup is), the test writes w. */
function fifo(): { r: number; w: number } {
  const path = join(dir, `f${fifos++}`);
  const made = Bun.spawnSync(["mkfifo", path]);
  if (made.exitCode !== 0) throw new Error(`mkfifo ${path}: ${made.stderr.toString()}`);
  const r = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return { r, w: openSync(path, constants.O_WRONLY) };
}

/** A notification: header (type, seq, pid) and one u32 attribute of type 1. */
function message(type: number, seq: number, value: number): Uint8Array {
  const w = new NetlinkWriter();
  const at = w.begin(type, 0, seq);
  w.view.setUint32(at + 12, 0x1234, true);
  w.struct(4);
  w.attrU32(1, value);
  w.end(at);
  return w.buf.slice(0, w.len);
}

type Seen = { ms: [type: number, seq: number, pid: number, bytes: number][]; overrun: boolean } | { failed: string };

/** Watches r and collects what it delivers; `until` resolves once `n` deliveries (or a failure) came. */
function collect(r: number, onMessages?: WatchHandlers["messages"]) {
  const seen: Seen[] = [];
  let wake: (() => void) | undefined;
  const watch = watchSocket(r, {
    messages(ms, overrun) {
      seen.push({ ms: ms.map((m) => [m.type, m.seq, m.portid, m.view.byteLength]), overrun });
      onMessages?.(ms, overrun);
      wake?.();
    },
    failed(e) {
      seen.push({ failed: e.message });
      wake?.();
    },
  });
  const until = async (n: number) => {
    const deadline = Date.now() + 5000;
    while (seen.length < n && Date.now() < deadline) await new Promise<void>((res) => ((wake = res), setTimeout(res, 100)));
    return seen;
  };
  return { watch, seen, until };
}

describe("watchSocket", () => {
  test("datagrams are split into messages as they arrive; one cut short is an overrun", async () => {
    const { r, w } = fifo();
    const c = collect(r);
    const a = message(16, 7, 1);
    const b = message(17, 8, 2);
    writeSync(w, Uint8Array.from([...a, ...b]));
    expect(await c.until(1)).toEqual([{ ms: [[16, 7, 0x1234, 28], [17, 8, 0x1234, 28]], overrun: false }]);
    // Two whole messages and one whose nlmsg_len runs past the end: the whole ones are
    // delivered, and the cut one makes the chunk count as an overrun (assume anything changed).
    writeSync(w, Uint8Array.from([...a, ...b.subarray(0, 20)]));
    expect((await c.until(2))[1]).toEqual({ ms: [[16, 7, 0x1234, 28]], overrun: true });
    // Bytes that are not a message at all (shorter than a header).
    writeSync(w, new Uint8Array([1, 2, 3, 4]));
    expect((await c.until(3))[2]).toEqual({ ms: [], overrun: true });
    c.watch.stop();
    closeSync(w);
    closeSync(r);
  });

  test("the other end going away ends the watch with one failure", async () => {
    const { r, w } = fifo();
    const c = collect(r);
    writeSync(w, message(16, 1, 1));
    await c.until(1);
    closeSync(w);
    expect((await c.until(2)).slice(1)).toEqual([{ failed: "the kernel closed the notification socket" }]);
    closeSync(r);
  });

  test("a handler that throws stops the watch and is reported as its failure, not an unhandled rejection", async () => {
    const { r, w } = fifo();
    const c = collect(r, () => {
      throw new Error("handler broke");
    });
    writeSync(w, message(16, 1, 1));
    expect(await c.until(2)).toEqual([{ ms: [[16, 1, 0x1234, 28]], overrun: false }, { failed: "handler broke" }]);
    // Stopped: what comes later is not delivered.
    writeSync(w, message(16, 2, 2));
    await Bun.sleep(100);
    expect(c.seen.length).toBe(2);
    closeSync(w);
    closeSync(r);
  });

  test("after stop() nothing more is delivered and no failure is reported", async () => {
    const { r, w } = fifo();
    const c = collect(r);
    writeSync(w, message(16, 1, 1));
    await c.until(1);
    c.watch.stop();
    c.watch.stop(); // twice is harmless
    writeSync(w, message(16, 2, 2));
    closeSync(w);
    await Bun.sleep(150);
    expect(c.seen).toEqual([{ ms: [[16, 1, 0x1234, 28]], overrun: false }]);
    closeSync(r);
  });
});
