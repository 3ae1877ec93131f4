// The nf_tables layer against the real kernel, in a throwaway host (test/sandbox.sh). `nft` is
// the independent oracle: everything written through netlink is read back by nft.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { KernelError } from "../src/errors/errors.ts";
import { parseCidr } from "../src/ip/ipv4.ts";
import { parseIp } from "../src/ip/addr.ts";
import { ANY_V4 } from "../src/ip/port.ts";
import type { NetlinkSocket } from "../src/netlink/socket.ts";
import {
  addChain,
  addRule,
  addTable,
  Batch,
  deleteTable,
  deleteRule,
  deleteTaggedElements,
  ensureTable,
  expr,
  getGeneration,
  listElements,
  openNftSocket,
  tableExists,
  transaction,
} from "../src/nftables/index.ts";
import { natTable, portElements } from "../src/nat/ruleset.ts";
import { assertThrowawayHost, sh, waitFor } from "./helpers.ts";

const ip = (s: string) => parseIp(s)!;
const SUBNET = parseCidr("10.88.0.0/24")!;

function nft(...args: string[]): string {
  const r = sh(["nft", ...args]);
  if (r.code !== 0) throw new Error(`nft ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

function ruleset(): any[] {
  return JSON.parse(nft("-j", "list", "ruleset")).nftables;
}

function objects(kind: string): any[] {
  return ruleset()
    .filter((o) => kind in o)
    .map((o) => o[kind]);
}

/** Elements of a map as nft reads them: [key text, data text, comment]. */
function mapElements(name: string): { key: unknown; data: unknown; comment?: string }[] {
  const m = objects("map").find((x) => x.table === "tsnet" && x.name === name);
  if (!m) throw new Error(`map ${name} not found by nft`);
  return (m.elem ?? []).map(([k, d]: [any, any]) => ({ key: k.elem.val, data: d, comment: k.elem.comment }));
}

function ruleHandles(chain: string): number[] {
  return objects("rule")
    .filter((r) => r.table === "tsnet" && r.chain === chain)
    .map((r) => r.handle);
}

/** The rule lines of a chain as `nft list chain` prints them, comments stripped. */
function chainLines(chain: string): string[] {
  return nft("list", "chain", "inet", "tsnet", chain)
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("table") && !l.startsWith("chain") && !l.startsWith("type") && l !== "}")
    .map((l) => l.replace(/ comment ".*"$/, ""));
}

let nl: NetlinkSocket;
const oneNetwork = (bridge: string) => natTable({ networks: [{ name: "bridge", bridge, subnets: [SUBNET], internal: false }] });
const spec = () => oneNetwork("tsnet0");

function resetTable(): void {
  if (!tableExists(nl, "inet", "tsnet")) return;
  const b = new Batch();
  deleteTable(b, "inet", "tsnet");
  b.commit(nl);
}

beforeAll(() => {
  assertThrowawayHost();
  nl = openNftSocket();
});

// The throwaway host is shared with the other test files: leave no table of this file's shape
// behind (tsnet makes its own when it next needs one).
afterAll(() => {
  resetTable();
  nl?.close();
});

describe("nf_tables over netlink, read back by nft", () => {
  test("the port publishing ruleset is built in one batch and nft prints it as nft syntax", () => {
    resetTable();
    ensureTable(nl, spec(), {
      add: portElements("c0ffee01", "web", [{ proto: "tcp", hostIp: ANY_V4, hostPort: 18080, containerIp: ip("10.88.0.2"), containerPort: 80 }]),
    });

    const table = objects("table").find((t) => t.name === "tsnet");
    expect(table?.family).toBe("inet");

    const chains = Object.fromEntries(objects("chain").filter((c) => c.table === "tsnet").map((c) => [c.name, c]));
    expect(chains.guard).toMatchObject({ type: "filter", hook: "prerouting", prio: -300, policy: "accept" });
    expect(chains.prerouting).toMatchObject({ type: "nat", hook: "prerouting", prio: -100, policy: "accept" });
    expect(chains.output).toMatchObject({ type: "nat", hook: "output", prio: -100, policy: "accept" });
    expect(chains.postrouting).toMatchObject({ type: "nat", hook: "postrouting", prio: 100, policy: "accept" });

    const maps = Object.fromEntries(objects("map").filter((m) => m.table === "tsnet").map((m) => [m.name, m]));
    expect(maps.ports).toMatchObject({ type: ["inet_proto", "inet_service"], map: "ipv4_addr . inet_service" });
    expect(maps.hostip_ports).toMatchObject({ type: ["ipv4_addr", "inet_proto", "inet_service"], map: "ipv4_addr . inet_service" });
    expect(maps.ports6).toMatchObject({ type: ["inet_proto", "inet_service"], map: "ipv6_addr . inet_service" });
    expect(maps.hostip_ports6).toMatchObject({ type: ["ipv6_addr", "inet_proto", "inet_service"], map: "ipv6_addr . inet_service" });

    expect(chainLines("guard")).toEqual([
      `iifname != "lo" ip daddr 127.0.0.0/8 counter packets 0 bytes 0 drop`,
      `iifname != "lo" ip6 daddr ::1 counter packets 0 bytes 0 drop`,
    ]);
    // After conntrack: answers to what the containers opened pass, new connections do not.
    expect(chains.direct).toMatchObject({ type: "filter", hook: "prerouting", prio: -150, policy: "accept" });
    expect(chainLines("direct")).toEqual([
      `ip daddr 10.88.0.0/24 iifname != @bridges fib daddr type != local ct state ! established,related counter packets 0 bytes 0 drop`,
    ]);
    expect(chains.forward).toMatchObject({ type: "filter", hook: "forward", prio: 0, policy: "accept" });
    expect(chainLines("forward")).toEqual([
      "iifname @internal iifname . oifname != @same_bridge counter packets 0 bytes 0 drop",
      "oifname @internal iifname . oifname != @same_bridge counter packets 0 bytes 0 drop",
      "ct status dnat accept",
      "iifname @bridges oifname @bridges iifname . oifname != @same_bridge counter packets 0 bytes 0 drop",
    ]);
    const sets = Object.fromEntries(objects("set").filter((m) => m.table === "tsnet").map((m) => [m.name, m]));
    expect(sets.bridges).toMatchObject({ type: "ifname", elem: ["tsnet0"] });
    expect(sets.internal).toMatchObject({ type: "ifname" });
    expect(sets.internal.elem).toBeUndefined();
    expect(sets.same_bridge).toMatchObject({ type: ["ifname", "ifname"], elem: [{ concat: ["tsnet0", "tsnet0"] }] });
    const dnat = [
      "dnat ip to ip daddr . meta l4proto . th dport map @hostip_ports",
      "fib daddr type local dnat ip to meta l4proto . th dport map @ports",
      // IPv6 beside them; ::1 is relayed by the port's holder (no route_localnet in IPv6).
      "dnat ip6 to ip6 daddr . meta l4proto . th dport map @hostip_ports6",
      "ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6",
    ];
    expect(chainLines("prerouting")).toEqual(dnat);
    expect(chainLines("output")).toEqual(dnat);
    expect(chainLines("postrouting")).toEqual([
      `ip saddr 10.88.0.0/24 oifname != "tsnet0" masquerade`,
      `ct status dnat ip saddr 10.88.0.0/24 oifname "tsnet0" masquerade`,
      `ip saddr 127.0.0.0/8 oifname @bridges masquerade`,
    ]);
    // Rule comments come through the userdata TLV.
    const pre = objects("rule").filter((r) => r.table === "tsnet" && r.chain === "prerouting");
    expect(pre.map((r) => r.comment)).toEqual([
      "tsnet: ports published on one host address",
      "tsnet: ports published on every host address",
      "tsnet: ports published on one host IPv6 address",
      "tsnet: ports published on every host IPv6 address (::1 is relayed)",
    ]);

    expect(mapElements("ports")).toEqual([
      { key: { concat: ["tcp", 18080] }, data: { concat: ["10.88.0.2", 80] }, comment: "c0ffee01 web tcp 18080 -> 10.88.0.2:80" },
    ]);
  });

  test("ensuring the same table again changes nothing; a changed rule set is replaced in the same batch", () => {
    const before = { pre: ruleHandles("prerouting"), post: ruleHandles("postrouting"), guard: ruleHandles("guard") };
    const again = ensureTable(nl, spec());
    expect(again.rewrittenChains).toEqual([]);
    expect(ruleHandles("prerouting")).toEqual(before.pre);
    expect(ruleHandles("postrouting")).toEqual(before.post);

    const moved = ensureTable(nl, oneNetwork("tsnet1"));
    expect(moved.rewrittenChains).toEqual(["postrouting"]);
    expect(ruleHandles("prerouting")).toEqual(before.pre);
    expect(objects("set").find((x) => x.table === "tsnet" && x.name === "bridges").elem).toEqual(["tsnet1"]);
    const post = ruleHandles("postrouting");
    expect(post.length).toBe(3);
    for (const h of post) expect(before.post).not.toContain(h);
    expect(chainLines("postrouting")[0]).toBe(`ip saddr 10.88.0.0/24 oifname != "tsnet1" masquerade`);
    // Elements survive a rule rewrite.
    expect(mapElements("ports").length).toBe(1);

    ensureTable(nl, spec());
    expect(chainLines("postrouting")[0]).toBe(`ip saddr 10.88.0.0/24 oifname != "tsnet0" masquerade`);
  });

  test("elements carry their container's comment and deleting one container's elements leaves the others", () => {
    resetTable();
    ensureTable(nl, spec(), {
      add: [
        ...portElements("aaaa1111", "web", [
          { proto: "tcp", hostIp: ANY_V4, hostPort: 8080, containerIp: ip("10.88.0.2"), containerPort: 80 },
          { proto: "udp", hostPort: 5353, hostIp: ip("127.0.0.1"), containerIp: ip("10.88.0.2"), containerPort: 53 },
        ]),
        ...portElements("bbbb2222", "db", [{ proto: "tcp", hostIp: ANY_V4, hostPort: 5432, containerIp: ip("10.88.0.3"), containerPort: 5432 }]),
      ],
    });
    expect(mapElements("ports").map((e) => e.comment).sort()).toEqual([
      "aaaa1111 web tcp 8080 -> 10.88.0.2:80",
      "bbbb2222 db tcp 5432 -> 10.88.0.3:5432",
    ]);
    expect(mapElements("hostip_ports")).toEqual([
      {
        key: { concat: ["127.0.0.1", "udp", 5353] },
        data: { concat: ["10.88.0.2", 53] },
        comment: "aaaa1111 web udp 127.0.0.1:5353 -> 10.88.0.2:53",
      },
    ]);
    expect(nft("list", "map", "inet", "tsnet", "ports")).toContain(`tcp . 8080 comment "aaaa1111 web tcp 8080 -> 10.88.0.2:80" : 10.88.0.2 . 80`);

    const deleted = deleteTaggedElements(nl, "inet", "tsnet", ["ports", "hostip_ports"], "aaaa1111");
    expect(Object.fromEntries(Object.entries(deleted).map(([k, v]) => [k, v.length]))).toEqual({ ports: 1, hostip_ports: 1 });
    expect(mapElements("ports")).toEqual([
      { key: { concat: ["tcp", 5432] }, data: { concat: ["10.88.0.3", 5432] }, comment: "bbbb2222 db tcp 5432 -> 10.88.0.3:5432" },
    ]);
    expect(mapElements("hostip_ports")).toEqual([]);
    // Nothing left to delete is not an error.
    expect(deleteTaggedElements(nl, "inet", "tsnet", ["ports", "hostip_ports"], "aaaa1111")).toEqual({});
    // Our own dump agrees with nft.
    expect(listElements(nl, "inet", "tsnet", "ports").map((e) => e.comment)).toEqual(["bbbb2222 db tcp 5432 -> 10.88.0.3:5432"]);
  });

  test("replacing a container's ports is one transaction: delete tagged and add in the same batch", () => {
    const r = ensureTable(nl, spec(), {
      deleteTagged: "bbbb2222",
      add: portElements("bbbb2222", "db", [{ proto: "tcp", hostIp: ANY_V4, hostPort: 5433, containerIp: ip("10.88.0.4"), containerPort: 5432 }]),
    });
    expect(r.deleted.ports?.length).toBe(1);
    expect(mapElements("ports")).toEqual([
      { key: { concat: ["tcp", 5433] }, data: { concat: ["10.88.0.4", 5432] }, comment: "bbbb2222 db tcp 5433 -> 10.88.0.4:5432" },
    ]);
  });

  test("a port already taken is EEXIST naming the element, and the batch changes nothing", () => {
    let err: unknown;
    try {
      ensureTable(nl, spec(), {
        add: portElements("cccc3333", "other", [
          { proto: "tcp", hostIp: ANY_V4, hostPort: 9000, containerIp: ip("10.88.0.5"), containerPort: 80 },
          { proto: "tcp", hostIp: ANY_V4, hostPort: 5433, containerIp: ip("10.88.0.5"), containerPort: 80 },
        ]),
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    const k = err as KernelError;
    expect(k.op).toBe("add element");
    expect(k.object).toBe("tsnet/ports");
    expect(k.errnoName).toBe("EEXIST");
    expect(k.extAck).toContain(`NFTA_SET_ELEM_LIST_ELEMENTS > NFTA_LIST_ELEM #2 (comment "cccc3333 other tcp 5433 -> 10.88.0.5:80")`);
    // Atomic: the first element of the failed batch was not added either.
    expect(mapElements("ports").map((e) => e.comment)).toEqual(["bbbb2222 db tcp 5433 -> 10.88.0.4:5432"]);
  });

  test("a bad rule yields a KernelError naming the message and the attribute, and nothing of the batch applies", () => {
    const b = new Batch();
    addChain(b, "inet", "tsnet", { name: "extra" });
    addRule(b, "inet", "tsnet", "prerouting", {
      exprs: [...expr.concat([expr.fields.l4proto, expr.fields.thDport]).exprs, expr.lookup({ set: "no_such_map", sreg: expr.reg32(0), dreg: expr.reg32(0) })],
      comment: "broken",
    });
    let err: unknown;
    try {
      b.commit(nl);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    const k = err as KernelError;
    expect(k.op).toBe("add rule");
    expect(k.object).toBe(`tsnet/prerouting "broken"`);
    expect(k.errnoName).toBe("ENOENT");
    expect(k.extAck).toContain("NFTA_RULE_EXPRESSIONS > NFTA_LIST_ELEM #3 (lookup)");
    expect(k.message).toStartWith(`add rule tsnet/prerouting "broken": ENOENT`);
    expect(objects("chain").map((c) => c.name)).not.toContain("extra");

    // Reading a register nothing wrote: ENODATA at the cmp.
    const b2 = new Batch();
    addRule(b2, "inet", "tsnet", "postrouting", { exprs: [expr.cmp(0, expr.reg32(5), [1, 2, 3, 4])] });
    expect(() => b2.commit(nl)).toThrow(/add rule tsnet\/postrouting: ENODATA .*NFTA_LIST_ELEM #1 \(cmp\)/);

    // A top-level attribute: an unknown chain type.
    const b3 = new Batch();
    addChain(b3, "inet", "tsnet", { name: "weird", base: { type: "bogus" as "nat", hook: "prerouting", priority: 0 } });
    expect(() => b3.commit(nl)).toThrow(/add chain tsnet\/weird: ENOENT .*kernel rejected NFTA_CHAIN_TYPE/);
  });

  test("a stale generation is ERESTART; transaction() rebuilds from fresh state and retries once", () => {
    const stale = getGeneration(nl) - 1;
    const b = new Batch();
    addTable(b, "ip", "tsnet_ip");
    expect(() => b.commit(nl, stale)).toThrow(/commit nf_tables transaction \(add table ip tsnet_ip\): ERESTART/);
    expect(objects("table").some((t) => t.name === "tsnet_ip")).toBe(false);

    // Someone else changes the ruleset between our read and our commit.
    const other = openNftSocket();
    let builds = 0;
    try {
      transaction(nl, (batch) => {
        builds++;
        if (builds === 1) {
          const o = new Batch();
          addTable(o, "ip", "someone_else");
          o.commit(other);
        }
        addTable(batch, "ip", "tsnet_ip");
      });
    } finally {
      other.close();
    }
    expect(builds).toBe(2);
    const tables = objects("table").map((t) => `${t.family} ${t.name}`);
    expect(tables).toContain("ip tsnet_ip");
    expect(tables).toContain("ip someone_else");

    const d = new Batch();
    deleteTable(d, "ip", "tsnet_ip");
    deleteTable(d, "ip", "someone_else");
    d.commit(nl);
    expect(objects("table").map((t) => t.name)).toEqual(["tsnet"]);
  });
});

// End to end: a "container" namespace behind a veth, a server in it, and the map element that
// publishes it. The throwaway host connects to its own addresses and 127.0.0.1; the container
// reaches its own published port through the host (hairpin).
describe("packets follow the map", () => {
  const NS = "nfte2e";
  let server: ReturnType<typeof Bun.spawn> | undefined;

  function must(cmd: string[]): void {
    const r = sh(cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  }

  beforeAll(async () => {
    assertThrowawayHost();
    must(["ip", "netns", "add", NS]);
    must(["ip", "link", "add", "vh", "type", "veth", "peer", "name", "vc", "netns", NS]);
    must(["ip", "addr", "add", "10.88.0.1/24", "dev", "vh"]);
    must(["ip", "link", "set", "vh", "up"]);
    must(["ip", "-n", NS, "link", "set", "lo", "up"]);
    must(["ip", "-n", NS, "addr", "add", "10.88.0.2/24", "dev", "vc"]);
    must(["ip", "-n", NS, "link", "set", "vc", "up"]);
    must(["ip", "-n", NS, "route", "add", "default", "via", "10.88.0.1"]);
    // Only this throwaway namespace's sysctls: /proc/sys/net belongs to the reader's netns.
    writeFileSync("/proc/sys/net/ipv4/conf/vh/route_localnet", "1");
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const script = `Bun.serve({ hostname: "10.88.0.2", port: 80, fetch: () => new Response("hello from the container\\n") }); console.log("ready");`;
    server = Bun.spawn(["ip", "netns", "exec", NS, process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
    const reader = (server.stdout as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("ready");

    resetTable();
    ensureTable(nl, oneNetwork("vh"), {
      add: portElements("e2e00001", "web", [
        { proto: "tcp", hostIp: ANY_V4, hostPort: 18080, containerIp: ip("10.88.0.2"), containerPort: 80 },
        { proto: "tcp", hostPort: 18081, hostIp: ip("127.0.0.1"), containerIp: ip("10.88.0.2"), containerPort: 80 },
      ]),
    });
  }, 15000);

  afterAll(async () => {
    if (server) {
      server.kill();
      await server.exited;
    }
    sh(["ip", "netns", "del", NS]);
  }, 15000);

  const curl = (url: string, netns?: string, seconds = 5) =>
    sh([...(netns ? ["ip", "netns", "exec", netns] : []), "curl", "-sS", "--max-time", String(seconds), url]);

  test("the host reaches the published port on its own address (output chain, fib daddr type local)", () => {
    const r = curl("http://10.88.0.1:18080/");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello from the container\n");
  }, 15000);

  test("localhost reaches it too (route_localnet + masquerade of 127.0.0.0/8)", () => {
    const r = curl("http://127.0.0.1:18080/");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello from the container\n");
  }, 15000);

  test("a port published on 127.0.0.1 only answers there", () => {
    expect(curl("http://127.0.0.1:18081/").stdout).toBe("hello from the container\n");
    const other = curl("http://10.88.0.1:18081/");
    expect(other.code).not.toBe(0);
  }, 15000);

  test("the container reaches its own published port through the host (prerouting + hairpin masquerade)", () => {
    const r = curl("http://10.88.0.1:18080/", NS);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello from the container\n");
  }, 15000);

  test("a neighbour sending to 127.0.0.0/8 through the host is dropped by the guard, before any DNAT", () => {
    // Make the namespace a hostile neighbour: its 127/8 goes to the host instead of its lo.
    must(["ip", "-n", NS, "route", "del", "table", "local", "local", "127.0.0.0/8", "dev", "lo"]);
    must(["ip", "-n", NS, "route", "add", "127.0.0.0/8", "via", "10.88.0.1", "dev", "vc"]);
    // ... and accepts answers from 127.x on vc (in its own namespace, inside the throwaway host).
    must(["ip", "netns", "exec", NS, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/vc/route_localnet"]);
    const guardCount = () => objects("rule").find((r) => r.chain === "guard")!.expr.find((e: any) => e.counter).counter.packets as number;
    const before = guardCount();
    const blocked = curl("http://127.0.0.5:18080/", NS, 2);
    expect(blocked.code).not.toBe(0);
    expect(guardCount()).toBeGreaterThan(before);

    // Without the guard the same request reaches the container: the test can see a leak.
    const [handle] = ruleHandles("guard");
    const b = new Batch();
    deleteRule(b, "inet", "tsnet", "guard", BigInt(handle!));
    b.commit(nl);
    expect(curl("http://127.0.0.5:18080/", NS, 2).stdout).toBe("hello from the container\n");
    expect(ensureTable(nl, oneNetwork("vh")).rewrittenChains).toEqual(["guard"]);
    expect(curl("http://127.0.0.5:18080/", NS, 2).code).not.toBe(0);
  }, 15000);

  test("after deleting the container's elements the port is closed", async () => {
    deleteTaggedElements(nl, "inet", "tsnet", ["ports", "hostip_ports"], "e2e00001");
    await waitFor("the map to be empty", () => mapElements("ports").length === 0);
    const r = curl("http://10.88.0.1:18080/");
    expect(r.code).not.toBe(0);
  }, 15000);
});

describe("announcements (NFNLGRP_NFTABLES) and the watch's kernel filter", () => {
  test("the filter lets through deletions in inet tsnet only; a datagram of a whole flush passes", async () => {
    const { NetlinkSocket } = await import("../src/netlink/socket.ts");
    const { NETLINK_NETFILTER } = await import("../src/netlink/constants.ts");
    const { NFNLGRP_NFTABLES } = await import("../src/nftables/constants.ts");
    const { nftEvent, nftFilterProgram } = await import("../src/nftables/index.ts");
    const { NAT_WATCH_FILTER } = await import("../src/nat/restore.ts");
    const open = (filtered: boolean) => {
      const s = new NetlinkSocket(NETLINK_NETFILTER, "test announcements", { groups: 1 << (NFNLGRP_NFTABLES - 1), timeoutMs: 50 });
      if (filtered) s.attachFilter(nftFilterProgram(NAT_WATCH_FILTER));
      return s;
    };
    /** What arrived, as "msg family table" per message, gens left out; one line per datagram. */
    const drain = (s: NetlinkSocket) => {
      const got: string[] = [];
      s.waitFor((m) => {
        const ev = nftEvent(m.view, m.type, m.portid);
        if (ev && ev.msg !== 15) got.push(`${ev.msg} ${ev.family} ${ev.table}`);
        return false;
      }, Date.now() + 500);
      return got;
    };
    sh(["nft", "flush", "ruleset"]);
    const all = open(false);
    const only = open(true);
    try {
      for (const cmd of [
        "add table inet other", "add set inet other s { type inet_service; }", "add element inet other s { 1 }", "delete element inet other s { 1 }",
        "add table inet tsnet", "add chain inet tsnet c", "add rule inet tsnet c accept", "add map inet tsnet ports { type inet_service : inet_service; }",
        "add element inet tsnet ports { 1 : 2 }", "add table ip tsnet", "delete table ip tsnet", "add table inet tsnetx", "delete table inet tsnetx",
        "delete element inet tsnet ports { 1 }", "flush chain inet tsnet c",
      ]) expect({ cmd, code: sh(["nft", ...cmd.split(" ")]).code }).toEqual({ cmd, code: 0 });
      const everything = drain(all);
      expect(everything.length).toBeGreaterThan(12);
      // DELSETELEM (14) and DELRULE (8) of inet (1) tsnet, nothing else.
      expect(drain(only)).toEqual(["14 1 tsnet", "8 1 tsnet"]);
      expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
      // One datagram for the flush, other tables' deletions in it too: it passes whole.
      const flushed = drain(only);
      expect(flushed).toContain("2 1 tsnet");
      expect(flushed).toContain("2 1 other");
      expect(drain(all)).toEqual(flushed);
    } finally {
      all.close();
      only.close();
    }
  });
});
