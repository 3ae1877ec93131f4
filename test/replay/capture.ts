// Records test/replay/scenarios.ts against this kernel, in the throwaway host only (each scenario
// makes links and tables): `npm run capture`. Writes test/replay/captures/NAME.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { MnlSocket } from "../../ffi/libmnl.ts";
import { NetlinkSocket } from "../../src/netlink/socket.ts";
import { RecordingTransport } from "../../src/netlink/replay.ts";
import { closeNatSocket } from "../../src/nat/portmap.ts";
import { useTransport } from "../../src/netlink/transport.ts";
import { attachSocketFilter } from "../../ffi/libc.ts";
import { KernelError } from "../../src/errors/errors.ts";
import { NETLINK_NETFILTER } from "../../src/netlink/constants.ts";
import { toHex } from "../../src/netlink/replay.ts";
import { NAT_WATCH_FILTER } from "../../src/nat/restore.ts";
import { NFNLGRP_NFTABLES } from "../../src/nftables/constants.ts";
import { nftFilterProgram } from "../../src/nftables/index.ts";
import { ANNOUNCEMENT_COMMANDS } from "./announcements.ts";
import { scenarios, shared } from "./scenarios.ts";

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
    const restore = useTransport(() => shared(rec));
    try {
      result = s.run();
    } finally {
      closeNatSocket();
      restore();
      rec.close();
    }
  } else {
    const nl = new NetlinkSocket(s.bus, s.name, { transport: rec });
    result = s.run(nl);
    nl.close();
  }
  writeFileSync(`${dir}${s.name}.json`, `${JSON.stringify({ scenario: s.name, kernel: require("node:os").release(), result, exchanges: rec.exchanges }, null, 1)}\n`);
  console.error(`${s.name}: ${rec.exchanges.length} exchanges`);
}

// nf_tables' announcements: what `nft` commands make the kernel multicast on NFNLGRP_NFTABLES, as
// datagrams read by a socket without a filter and by one with the nat watch's filter attached
// (the kernel runs the classic BPF program): test/monitor-unit.test.ts decodes the first and
// runs the program on them, which must pass exactly what the kernel passed.
if (!only.length || only.includes("nftables-announcements")) {
  const run = (cmd: string) => {
    const p = Bun.spawnSync(["nft", ...cmd.split(" ")]);
    if (p.exitCode !== 0) throw new Error(`nft ${cmd}: ${p.stderr.toString()}`);
  };
  run("flush ruleset");
  const open = () => new MnlSocket(NETLINK_NETFILTER, "announcements", 200, 1 << (NFNLGRP_NFTABLES - 1));
  const all = open();
  const filtered = open();
  attachSocketFilter(filtered.fd, nftFilterProgram(NAT_WATCH_FILTER), "announcements");
  const drain = (s: MnlSocket) => {
    const buf = new Uint8Array(65536);
    const out: string[] = [];
    for (;;) {
      try {
        out.push(toHex(buf.subarray(0, s.receive(buf))));
      } catch (e) {
        if (e instanceof KernelError && e.errno === 11) return out;
        throw e;
      }
    }
  };
  const steps = ANNOUNCEMENT_COMMANDS.map((cmd) => {
    run(cmd);
    return { cmd, all: drain(all), passed: drain(filtered) };
  });
  all.close();
  filtered.close();
  writeFileSync(`${dir}nftables-announcements.json`, `${JSON.stringify({ scenario: "nftables-announcements", kernel: require("node:os").release(), filter: NAT_WATCH_FILTER, steps }, null, 1)}\n`);
  console.error(`nftables-announcements: ${steps.reduce((n, s) => n + s.all.length, 0)} datagrams`);
}
