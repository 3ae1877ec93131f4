// Records test/replay/scenarios.ts against this kernel, in the throwaway host only (each scenario
// makes links and tables): `npm run capture`. Writes test/replay/captures/NAME.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { MnlSocket } from "../../ffi/libmnl.ts";
import { NetlinkSocket } from "../../src/netlink/socket.ts";
import { RecordingTransport } from "../../src/netlink/replay.ts";
import { closeNatSocket } from "../../src/nat/portmap.ts";
import { useTransport } from "../../src/netlink/transport.ts";
import { scenarios } from "./scenarios.ts";

if (process.env.TSNET_THROWAWAY_HOST !== "1") {
  console.error("capture.ts changes the network it runs in: run it through test/sandbox.sh (npm run capture)");
  process.exit(2);
}
const dir = new URL("./captures/", import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
const only = process.argv.slice(2);
for (const s of scenarios) {
  if (only.length && !only.includes(s.name)) continue;
  const rec = new RecordingTransport(new MnlSocket(s.bus, s.name));
  let result: unknown;
  if (s.opensOwn) {
    const restore = useTransport(() => rec);
    try {
      result = s.run();
    } finally {
      closeNatSocket();
      restore();
    }
  } else {
    const nl = new NetlinkSocket(s.bus, s.name, { transport: rec });
    result = s.run(nl);
    nl.close();
  }
  writeFileSync(`${dir}${s.name}.json`, `${JSON.stringify({ scenario: s.name, kernel: require("node:os").release(), result, exchanges: rec.exchanges }, null, 1)}\n`);
  console.error(`${s.name}: ${rec.exchanges.length} exchanges`);
}
