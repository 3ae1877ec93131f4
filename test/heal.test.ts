// Self-healing rules: a firewall reload (`nft flush ruleset`) or a deleted element while
// containers run, foreground and detached, on the default bridge and on a user network.
// Witnesses: curl on the published ports, `nft -j list table`, `nft monitor`, /proc/sys, and a
// UDP listener bound to the host's 127.0.0.1 that no container may ever reach.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { TSNET, assertThrowawayHost, managerPid, nginxSite, records, sh, startContainer, tsnet, waitFor, tsnetOk as ok } from "./helpers.ts";

const NET = "healnet";
const NET_GW = "10.93.0.1";
// Host port -> container name.
const PORTS: Record<number, string> = { 18080: "hfg", 18081: "hbg", 18082: "hbg2", 18083: "hfg2" };
const sites: { dir: string; command: string[] }[] = [];
const site = () => {
  const s = nginxSite("healed\n");
  sites.push(s);
  return s.command;
};
let fg: Awaited<ReturnType<typeof startContainer>>;
let fg2: Awaited<ReturnType<typeof startContainer>>;
let netBridge = "";

/** HTTP status of a published port on the host's 127.0.0.1 ("000": no answer). */
function status(port: number): string {
  return sh(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "0.5", `http://127.0.0.1:${port}/`]).stdout;
}

/** Polls until every published port answers; fails past `ms` after `since`. */
async function allAnswerBy(since: number, ms = 1000): Promise<void> {
  for (const port of Object.keys(PORTS).map(Number)) {
    for (;;) {
      if (status(port) === "200") break;
      if (Date.now() - since > ms) throw new Error(`port ${port} (${PORTS[port]}) did not answer again within ${ms} ms`);
      await Bun.sleep(10);
    }
  }
}

/** tsnet's table as nft reads it, without what changes by itself (handles, counters, order of elements). */
function table(): string | undefined {
  const r = sh(["nft", "-j", "list", "table", "inet", "tsnet"]);
  if (r.code !== 0) return undefined;
  const items = (JSON.parse(r.stdout).nftables as any[]).filter((o) => !o.metainfo).map((o) => {
    const [kind, v] = Object.entries(o)[0] as [string, any];
    const { handle: _h, ...rest } = v;
    if (kind === "rule") rest.expr = rest.expr.map((e: any) => ("counter" in e ? { counter: {} } : e));
    if (rest.elem) rest.elem = rest.elem.map((e: unknown) => JSON.stringify(e)).sort();
    return JSON.stringify({ [kind]: rest });
  });
  return items.sort().join("\n");
}

function chainRules(snapshot: string, chain: string): string[] {
  return snapshot.split("\n").filter((l) => l.startsWith(`{"rule":`) && JSON.parse(l).rule.chain === chain);
}

const localnet = (bridge: string) => readFileSync(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, "utf8").trim();

/** The supervisor managing the detached containers. */
const supervisorPid = () => managerPid("hbg");

/** ps --format json rows by name. */
function psPorts(): Record<string, string> {
  const rows = ok(["ps", "--format", "json"]).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return Object.fromEntries(rows.map((r) => [r.Names, r.Ports]));
}

function inspectPorts(name: string): unknown {
  return JSON.parse(ok(["inspect", name]))[0].NetworkSettings.Ports;
}

/** What `nft monitor` prints over `ms`: any change to the ruleset at all. */
async function monitor(ms: number): Promise<string> {
  const p = Bun.spawn(["nft", "monitor"], { stdout: "pipe", stderr: "pipe" });
  await Bun.sleep(ms);
  p.kill();
  await p.exited;
  return await new Response(p.stdout).text();
}

beforeAll(async () => {
  assertThrowawayHost();
  ok(["network", "create", "--subnet", "10.93.0.0/24", NET]);
  netBridge = JSON.parse(ok(["network", "inspect", NET]))[0].Options["com.docker.network.bridge.name"];
  // Two foreground managers and the supervisor: three processes that all see each flush.
  fg = await startContainer("hfg", ["-p", "18080:80"], site());
  fg2 = await startContainer("hfg2", ["--network", NET, "-p", "18083:80"], site());
  ok(["run", "-d", "--name", "hbg", "--network", NET, "-p", "18081:80", "--", ...site()]);
  ok(["run", "-d", "--name", "hbg2", "-p", "127.0.0.1:18082:80", "--", ...site()]);
  // Probes for the loopback guard: containers that try to reach the host's 127.0.0.1.
  ok(["run", "-d", "--name", "hprobe", "--", "sleep", "600"]);
  ok(["run", "-d", "--name", "hprobe2", "--network", NET, "--", "sleep", "600"]);
  await allAnswerBy(Date.now(), 10_000);
});

afterAll(async () => {
  for (const pid of [fg?.proc.pid, fg2?.proc.pid]) if (pid) sh(["kill", "-CONT", String(pid)]);
  try {
    sh(["kill", "-CONT", String(supervisorPid())]);
  } catch {}
  tsnet(["rm", "-f", "hbg", "hbg2", "hprobe", "hprobe2"]);
  await fg?.stop();
  await fg2?.stop();
  tsnet(["network", "rm", NET]);
  for (const s of sites) rmSync(s.dir, { recursive: true, force: true });
});

describe("after nft flush ruleset", () => {
  test("every published port answers again within a second, and the table is back as it was: guards, isolation sets, every container's elements", async () => {
    const before = table()!;
    expect(chainRules(before, "guard").length).toBe(2); // 127.0.0.0/8 and ::1
    expect(chainRules(before, "direct").length).toBeGreaterThanOrEqual(2); // two networks
    const flushed = Date.now();
    expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
    await allAnswerBy(flushed);
    // The last manager may still be adding its elements: the table settles at once after.
    for (const end = Date.now() + 1000; table() !== before && Date.now() < end; ) await Bun.sleep(20);
    expect(table()).toBe(before);
    const t = JSON.parse(sh(["nft", "-j", "list", "table", "inet", "tsnet"]).stdout).nftables as any[];
    const elems = (name: string) => t.find((o) => o.set?.name === name || o.map?.name === name);
    expect(elems("bridges").set.elem.sort()).toEqual(["tsnet0", netBridge].sort());
    expect(elems("same_bridge").set.elem.length).toBe(2);
    expect(elems("ports").map.elem.length).toBe(3);
    expect(elems("hostip_ports").map.elem.length).toBe(1);
    expect([localnet("tsnet0"), localnet(netBridge)]).toEqual(["1", "1"]);
    // Three managers repaired at once and agreed: nothing changes any more.
    await Bun.sleep(200);
    expect(await monitor(1000)).toBe("");
    expect(table()).toBe(before);
  });

  test("a host service bound to 127.0.0.1 is never reached from a container; route_localnet is off while the guard is missing", async () => {
    // A UDP listener on the host's loopback only, logging every datagram it gets.
    const listener = Bun.spawn(["python3", "-u", "-c", `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 19999))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(100); print(d.decode(), a[0], flush=True)`], { stdout: "pipe", stderr: "inherit" });
    const out = (listener.stdout as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await out.read()).value)).toContain("ready");
    let heard = "";
    void (async () => {
      for (;;) {
        const { value, done } = await out.read();
        if (done) return;
        heard += new TextDecoder().decode(value);
      }
    })();
    // Inside the probes (root in their own namespace, as a container's command is): send to
    // 127.0.0.1 out of eth0 via the gateway, as a container trying to reach the host's loopback.
    for (const [ns, gw] of [["tsnet-hprobe", "10.77.0.1"], ["tsnet-hprobe2", NET_GW]] as const) {
      for (const cmd of [
        "sysctl -qw net.ipv4.conf.eth0.route_localnet=1",
        "ip route del local 127.0.0.1 dev lo table local",
        "ip route del local 127.0.0.0/8 dev lo table local",
        `ip route add 127.0.0.1/32 via ${gw} dev eth0 onlink`,
      ]) expect(sh(["ip", "netns", "exec", ns, ...cmd.split(" ")])).toMatchObject({ code: 0 });
    }
    const send = (tag: string) => {
      for (const ns of ["tsnet-hprobe", "tsnet-hprobe2"]) {
        sh(["ip", "netns", "exec", ns, "python3", "-c", `import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"${tag} from ${ns}", ("127.0.0.1", 19999))`]);
      }
    };
    try {
      send("before");
      // Hold the lock under which tsnet changes its table: a manager that finds the table gone
      // turns route_localnet off first, then waits here; the window stays open to look at.
      const holder = Bun.spawn(["flock", "--close", "/run/tsnet/locks/networks.lock", "-c", "echo locked; exec sleep 30"], { stdout: "pipe" });
      const r = (holder.stdout as ReadableStream<Uint8Array>).getReader();
      expect(new TextDecoder().decode((await r.read()).value)).toContain("locked");
      try {
        expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
        await waitFor("route_localnet off on both bridges", () => localnet("tsnet0") === "0" && localnet(netBridge) === "0", 1000);
        expect(sh(["nft", "list", "table", "inet", "tsnet"]).code).not.toBe(0); // the guard is still missing
        send("while the table is missing");
      } finally {
        holder.kill();
        await holder.exited;
      }
      const released = Date.now();
      await allAnswerBy(released);
      await waitFor("route_localnet on again", () => localnet("tsnet0") === "1" && localnet(netBridge) === "1", 1000);
      send("after");
      await Bun.sleep(300);
      expect(heard.trim()).toBe("");
      // The probe itself works: with the managers stopped, no one turns route_localnet off or
      // puts the guard back after a flush, and with the probes' veths' own guard (a filter on
      // their ingress, which a flush leaves alone; test/loopback-guard.test.ts) removed too,
      // the same datagram gets through.
      const probeVeths = ["hprobe", "hprobe2"].map((n) => records().find((r) => r.name === n).endpoints[0].hostVeth as string);
      const guarded = (veth: string) => sh(["tc", "filter", "show", "dev", veth, "ingress"]).stdout.includes("handle 0x74736e74");
      expect(probeVeths.every(guarded)).toBe(true);
      const sup = supervisorPid();
      for (const pid of [fg.proc.pid, fg2.proc.pid, sup]) process.kill(pid, "SIGSTOP");
      try {
        sh(["nft", "flush", "ruleset"]);
        send("still guarded");
        for (const veth of probeVeths) expect(sh(["tc", "qdisc", "del", "dev", veth, "clsact"]).code).toBe(0);
        send("oracle");
        await waitFor("the oracle datagram", () => heard.includes("oracle"), 2000);
      } finally {
        for (const pid of [fg.proc.pid, fg2.proc.pid, sup]) process.kill(pid, "SIGCONT");
      }
      await allAnswerBy(Date.now());
      // The restore gave the veths their guard back before turning route_localnet on again.
      await waitFor("the veths' guard back", () => probeVeths.every(guarded), 1000);
    } finally {
      listener.kill();
      await listener.exited;
    }
    expect(heard.trim().split("\n").every((l) => l.startsWith("oracle"))).toBe(true);
  });

  test("deleting one element or a chain's rules is healed; ps and inspect show a port only while the kernel has it", async () => {
    const others = { ...psPorts() };
    expect(others.hfg).toBe("0.0.0.0:18080->80/tcp");
    // With hfg's manager stopped, nobody puts the element back: ps and inspect must not claim it.
    process.kill(fg.proc.pid, "SIGSTOP");
    try {
      expect(sh(["nft", "delete", "element", "inet", "tsnet", "ports", "{ tcp . 18080 }"]).code).toBe(0);
      expect(status(18080)).toBe("000");
      const ps = psPorts();
      expect(ps.hfg).toBe("");
      expect(ps.hbg).toBe(others.hbg);
      expect(ps.hbg2).toBe("127.0.0.1:18082->80/tcp");
      expect(inspectPorts("hfg")).toEqual({});
      expect(inspectPorts("hbg2")).toEqual({ "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "18082" }] });
    } finally {
      process.kill(fg.proc.pid, "SIGCONT");
    }
    // Running again, its manager reads the deletion it missed and restores the element.
    const resumed = Date.now();
    await allAnswerBy(resumed);
    expect(psPorts().hfg).toBe("0.0.0.0:18080->80/tcp");
    expect(inspectPorts("hfg")).toEqual({ "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "18080" }] });
    // A deletion seen live: the supervisor's container, healed while its manager runs.
    const deleted = Date.now();
    expect(sh(["nft", "delete", "element", "inet", "tsnet", "hostip_ports", "{ 127.0.0.1 . tcp . 18082 }"]).code).toBe(0);
    await allAnswerBy(deleted);
    // Rules too: the guard chain emptied by hand is filled again.
    const before = table();
    expect(sh(["nft", "flush", "chain", "inet", "tsnet", "guard"]).code).toBe(0);
    await waitFor("the guard's rules back", () => table() === before, 1000);
  });
});

describe("tsnet firewall-reload", () => {
  test("restores everything when no manager is listening", async () => {
    const before = table()!;
    const sup = supervisorPid();
    const managers = [fg.proc.pid, fg2.proc.pid, sup];
    for (const pid of managers) process.kill(pid, "SIGSTOP");
    try {
      expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
      await Bun.sleep(200);
      expect(table()).toBeUndefined(); // no one restored it
      expect(Object.values(psPorts()).filter(Boolean)).toEqual([]);
      expect(inspectPorts("hbg")).toEqual({});
      const r = tsnet(["firewall-reload"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe("tsnet: restored tsnet's nf_tables table (guards, isolation, port maps) and 4 published port(s)\n");
      await allAnswerBy(Date.now());
      expect(table()).toBe(before);
      expect([localnet("tsnet0"), localnet(netBridge)]).toEqual(["1", "1"]);
      expect(psPorts()).toMatchObject({ hfg: "0.0.0.0:18080->80/tcp", hbg: "0.0.0.0:18081->80/tcp", hbg2: "127.0.0.1:18082->80/tcp", hfg2: "0.0.0.0:18083->80/tcp" });
    } finally {
      for (const pid of managers) process.kill(pid, "SIGCONT");
    }
    // The managers wake up to a flush that has been mended: they find nothing to do.
    expect(await monitor(1000)).toBe("");
    expect(table()).toBe(before);
  });

  test("with nothing missing it changes nothing and says nothing", async () => {
    const before = table();
    const watching = monitor(800);
    await Bun.sleep(100);
    expect(tsnet(["firewall-reload"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await watching).toBe("");
    expect(table()).toBe(before);
  });
});


describe("a flush in a container's first moments", () => {
  test("is healed too: a manager's watch that starts after it looks once", async () => {
    // A new foreground manager: its subscription starts 50 ms after its container does, so a
    // flush as soon as the element appears most likely lands before it.
    const p = Bun.spawn([TSNET, "run", "--rm", "--name", "hnew", "-p", "18084:80", "--", ...site()], { stdio: ["ignore", "ignore", "pipe"] });
    try {
      await waitFor("the new element", () => sh(["nft", "list", "map", "inet", "tsnet", "ports"]).stdout.includes("18084"), 5000);
      const flushed = Date.now();
      expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
      for (;;) {
        if (status(18084) === "200" && Object.keys(PORTS).every((port) => status(Number(port)) === "200")) break;
        if (Date.now() - flushed > 1000) throw new Error("not every port answered again within a second");
        await Bun.sleep(10);
      }
    } finally {
      p.kill();
      await p.exited;
    }
  });
});
