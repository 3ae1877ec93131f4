// Self-healing rules: how long after a firewall reload (`nft flush ruleset`) tsnet's table and
// every container's published ports are back, and what watching for it costs a manager when
// nothing happens. Run inside a throwaway host: npm run bench:heal.
//
// Latency: a foreground run and a detached one on the default bridge, a detached one on a user
// network, each publishing a port. The flush is committed by this script through netlink (what
// `nft flush ruleset` sends: NFT_MSG_DELTABLE with no name); the clock starts at its ack and
// stops when this script's own subscription has seen the table (with its guard) and all three
// elements announced again.
//
// Idle cost: CPU time (utime + stime from /proc/PID/stat) and context switches of the managers
// over an idle period, with this build and, if TSNET_REF names one, a reference build without
// the watch, alternated. Then the same while another program commits to an unrelated table 100
// times a second (the watch's kernel filter should keep those from waking the managers).
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { NETLINK_NETFILTER } from "../src/netlink/constants.ts";
import { NetlinkSocket } from "../src/netlink/socket.ts";
import { Batch, addElements, deleteElements, openNftSocket, value } from "../src/nftables/index.ts";
import { NFNLGRP_NFTABLES, NFPROTO_INET, NFPROTO_UNSPEC, NFT_MSG_DELTABLE, NFT_MSG_NEWRULE, NFT_MSG_NEWSETELEM, NFT_MSG_NEWTABLE } from "../src/nftables/constants.ts";
import { nftEvent } from "../src/nftables/monitor.ts";
import { schema } from "../src/nftables/schema.ts";

const NEW = `${import.meta.dir}/../dist/tsnet`;
const REF = process.env.TSNET_REF;
const ROUNDS = Number(process.env.ROUNDS ?? 200);
const IDLE_S = Number(process.env.IDLE_S ?? 30);

function sh(cmd: string[]): string {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${p.stderr}`);
  return p.stdout.toString();
}

/** Processes of this throwaway host (other hosts on the machine run supervisors of their own). */
function pidsOf(word: string): number[] {
  const ours = readlinkSync("/proc/self/ns/net");
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").includes(word) && readlinkSync(`/proc/${p}/ns/net`) === ours;
    } catch {
      return false;
    }
  });
}

/**
 * CPU time (ms: utime + stime of /proc/PID/stat, which counts every thread, exited ones too, in
 * 10 ms ticks) and the JS thread's context switches (its wake-ups); zeros once it is gone.
 */
function usage(pid: number): [number, number] {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    const status = readFileSync(`/proc/${pid}/task/${pid}/status`, "utf8");
    const switches = [...status.matchAll(/ctxt_switches:\s+(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    return [ms, switches];
  } catch {
    return [0, 0];
  }
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

interface Setup {
  fg: Bun.Subprocess;
  managers: () => number[];
  stop(): void;
}

function setUp(T: string): Setup {
  sh([T, "network", "create", "benchnet"]);
  sh([T, "run", "-d", "--name", "bg1", "-p", "18081:80", "--", "sleep", "3600"]);
  sh([T, "run", "-d", "--name", "bg2", "--network", "benchnet", "-p", "18082:80", "--", "sleep", "3600"]);
  const fg = Bun.spawn([T, "run", "--name", "fg", "-p", "18080:80", "--", "sleep", "3600"], { stdio: ["ignore", "ignore", "ignore"] });
  for (let i = 0; i < 200 && !sh(["nft", "list", "map", "inet", "tsnet", "ports"]).includes("18080"); i++) Bun.sleepSync(10);
  return {
    fg,
    managers: () => [fg.pid, ...pidsOf("_supervise")],
    stop() {
      sh([T, "rm", "-f", "fg", "bg1", "bg2"]);
      sh([T, "network", "rm", "benchnet"]);
      // The next setup may be another build's: its `run -d` must not reach this supervisor.
      for (let i = 0; i < 500 && pidsOf("_supervise").length; i++) Bun.sleepSync(10);
    },
  };
}

const flushSchema = schema({});
function flushRuleset(nl: NetlinkSocket): void {
  // `nft flush ruleset`: NFT_MSG_DELTABLE, family unspec, no name: every table goes.
  new Batch().add({ msg: NFT_MSG_DELTABLE, family: NFPROTO_UNSPEC, flags: 0, op: "flush", object: "ruleset", schema: flushSchema, encode: () => {} }).commitUnconditional(nl);
}

async function latency(): Promise<void> {
  const s = setUp(NEW);
  const nl = openNftSocket();
  // A short receive timeout: waitFor gives up after that much silence, and is called again.
  const events = new NetlinkSocket(NETLINK_NETFILTER, "bench events", { groups: 1 << (NFNLGRP_NFTABLES - 1), timeoutMs: 20 });
  const wanted = [18080, 18081, 18082];
  const table: number[] = [];
  const all: number[] = [];
  let lost = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Drain what is pending (until 20 ms of silence), then flush.
      events.waitFor(() => false, Date.now() + 200);
      flushRuleset(nl);
      const t0 = performance.now();
      let tTable = 0;
      let guard = false;
      const seen = new Set<number>();
      const match = (m: Parameters<Parameters<NetlinkSocket["waitFor"]>[0]>[0]) => {
        const ev = nftEvent(m.view, m.type, m.portid);
        if (!ev || ev.family !== NFPROTO_INET || ev.table !== "tsnet") return false;
        if (ev.msg === NFT_MSG_NEWTABLE && !tTable) tTable = performance.now() - t0;
        if (ev.msg === NFT_MSG_NEWRULE) guard = true;
        if (ev.msg === NFT_MSG_NEWSETELEM && ev.set === "ports") {
          for (const e of ev.elements ?? []) seen.add(new DataView(e.key.buffer, e.key.byteOffset).getUint16(4, false));
        }
        return guard && wanted.every((p) => seen.has(p));
      };
      const end = Date.now() + 2000;
      let done = false;
      while (!done && Date.now() < end) done = events.waitFor(match, end);
      if (!done) {
        lost++;
        continue;
      }
      table.push(tTable);
      all.push(performance.now() - t0);
      // Not faster than 5 a second: past that, a manager takes it for a fight and slows down.
      await Bun.sleep(200 + Math.random() * 100);
    }
  } finally {
    events.close();
    s.stop();
  }
  const fmt = (xs: number[]) => `median ${quantile(xs, 0.5).toFixed(2)} ms, p90 ${quantile(xs, 0.9).toFixed(2)}, p99 ${quantile(xs, 0.99).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}`;
  console.log(`restore after nft flush ruleset (${all.length} rounds, ${lost} not restored within 2 s):`);
  console.log(`  table back:                ${fmt(table)}`);
  console.log(`  table + all 3 ports back:  ${fmt(all)}`);
}

let commits = 0;

/** CPU ms and context switches of every manager over `seconds`. */
async function idle(T: string, seconds: number, churn: boolean): Promise<[number, number]> {
  const s = setUp(T);
  await Bun.sleep(1000); // setup settles
  const pids = s.managers();
  const before = pids.map(usage);
  let churner: Timer | undefined;
  if (churn) {
    // Another program (this script) committing to a table of its own, 100 times a second: an
    // element added, then deleted, each one transaction.
    sh(["nft", "add", "table", "inet", "other"]);
    sh(["nft", "add", "set", "inet", "other", "s", "{ type inet_service; }"]);
    const nl = openNftSocket();
    const el = [{ key: value.port(1) }];
    let add = true;
    churner = setInterval(() => {
      const b = new Batch();
      if (add) addElements(b, "inet", "other", "s", el);
      else deleteElements(b, "inet", "other", "s", el);
      b.commitUnconditional(nl);
      add = !add;
      commits++;
    }, 10);
  }
  await Bun.sleep(seconds * 1000);
  clearInterval(churner);
  const after = pids.map(usage);
  s.stop();
  if (churn) sh(["nft", "delete", "table", "inet", "other"]);
  return [after.reduce((n, a, i) => n + a[0] - before[i]![0], 0), after.reduce((n, a, i) => n + a[1] - before[i]![1], 0)];
}

sh([NEW, "run", "--rm", "--", "true"]);
if (process.env.SKIP_LATENCY !== "1") await latency();
for (const churn of [false, true]) {
  commits = 0;
  const builds: [string, string][] = [["this build", NEW], ...(REF ? [["reference (no watch)", REF] as [string, string]] : [])];
  const results = new Map<string, [number, number][]>();
  // Alternated, twice each, so drift in the machine's load falls on both.
  for (let rep = 0; rep < 2; rep++) {
    for (const [name, T] of builds) {
      const r = await idle(T, IDLE_S, churn);
      results.set(name, [...(results.get(name) ?? []), r]);
    }
  }
  console.log(`\nmanagers (1 foreground run + the supervisor of 2), ${IDLE_S} s ${churn ? `while another program commits to its own table (${Math.round(commits / (IDLE_S * results.size * 2))} commits a second)` : "idle"}:`);
  for (const [name, rs] of results) {
    console.log(`  ${name.padEnd(22)} CPU ${rs.map((r) => `${r[0].toFixed(0)} ms`).join(", ")}; JS-thread context switches ${rs.map((r) => r[1]).join(", ")}`);
  }
}
