// The scenarios of test/replay/scenarios.ts played against their recorded kernel answers: the
// rtnetlink and nf_tables encoders must send what they sent to the kernel, and the decoders must
// make the same of its answers. No root, no namespaces.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { NetlinkSocket } from "../src/netlink/socket.ts";
import { ReplayTransport, type Exchange } from "../src/netlink/replay.ts";
import { closeNatSocket } from "../src/nat/portmap.ts";
import { useTransport } from "../src/netlink/transport.ts";
import { scenarios, shared } from "./replay/scenarios.ts";

describe("replayed kernel conversations", () => {
  for (const s of scenarios) {
    test(s.name, () => {
      const rec = JSON.parse(readFileSync(new URL(`./replay/captures/${s.name}.json`, import.meta.url), "utf8")) as { result: unknown; exchanges: Exchange[] };
      const t = new ReplayTransport(rec.exchanges, s.name);
      let result: unknown;
      if (s.opensOwn) {
        const restore = useTransport(() => shared(t));
        try {
          result = JSON.parse(JSON.stringify(s.run()));
        } finally {
          closeNatSocket();
          restore();
        }
      } else {
        result = JSON.parse(JSON.stringify(s.run(new NetlinkSocket(s.bus, s.name, { transport: t }))));
      }
      expect(result).toEqual(rec.result);
      expect(t.finished).toBe(true);
    });
  }
});
