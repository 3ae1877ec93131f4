// Networks: records that survive a reboot, `tsnet network ...`, run on user networks, isolation
// in nf_tables, per-container /etc files and DNS that works even with a loopback host resolver.
// Seen from outside tsnet: ip, nft, ping, getent, curl and a fake resolver of the test's own.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { TSNET, curl, ipj, leases, useNeighbour, resolveIn, netnsNames, nginxSite, records, sh, tsnet, veths, waitFor, userNetworks, tsnetOk as ok, askedServer, withHostResolvConf } from "./helpers.ts";

const STATE = process.env.TSNET_STATE_DIR!;
const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
const site = nginxSite("hello from nginx\n");

useNeighbour();
beforeAll(() => {
  if (!STATE?.startsWith("/run/")) throw new Error("TSNET_STATE_DIR must point into the throwaway host's /run (test/sandbox.sh sets it)");
});
afterAll(() => {
  rmSync(site.dir, { recursive: true, force: true });
});

afterEach(() => {
  const ids = tsnet(["ps", "-aq"]).stdout.trim().split("\n").filter(Boolean);
  if (ids.length) tsnet(["rm", "-f", ...ids]);
  for (const n of userNetworks()) tsnet(["network", "rm", n]);
});

/** The veth ends set aside (gone-tsnetN) in a namespace. */
function goneIn(netns: string): any[] {
  return ipj<any[]>(["link", "show"], netns).filter((l) => /^gone-tsnet\d+$/.test(l.ifname));
}

function runD(args: string[]): string {
  return ok(["run", "-d", ...args]).trim();
}

/** The bridge of a network, from tsnet's own inspect, checked against the kernel by the caller. */
function bridgeOf(net: string): string {
  return JSON.parse(ok(["network", "inspect", net]))[0].Options["com.docker.network.bridge.name"];
}

/** A fake DNS server: answers A for the given names, NXDOMAIN for the rest, and logs what it was asked. */
async function fakeResolver(address: string, answers: Record<string, string>, delayMs = 0): Promise<{ stop(): Promise<void>; asked(): string[] }> {
  const dir = mkdtempSync("/tmp/tsnet-dns-");
  const log = `${dir}/asked`;
  writeFileSync(log, "");
  const py = `
import socket, struct, sys, time
answers = ${JSON.stringify(answers)}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((${JSON.stringify(address)}, 53))
print("ready", flush=True)
while True:
    q, a = s.recvfrom(512)
    i, n, labels = 12, 0, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    name = ".".join(labels).lower(); qtype = struct.unpack(">H", q[i+1:i+3])[0]; end = i + 5
    open(${JSON.stringify(log)}, "a").write(name + "\\n")
    ip = answers.get(name)
    flags = 0x8180 if ip else 0x8183
    an = 1 if ip and qtype == 1 else 0
    r = q[:2] + struct.pack(">HHHHH", flags, 1, an, 0, 0) + q[12:end]
    if an: r += b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
    time.sleep(${delayMs / 1000})
    s.sendto(r, a)
`;
  return askedServer(["python3", "-c", py], log, "the fake resolver", () => rmSync(dir, { recursive: true, force: true }));
}

describe("network records and tsnet network", () => {
  test("ls shows bridge, host and none; -q and --format json", () => {
    const table = ok(["network", "ls"]).trim().split("\n");
    expect(table[0]).toMatch(/^NETWORK ID +NAME +DRIVER +SUBNET$/);
    const rows = table.slice(1).map((l) => l.split(/\s+/));
    expect(rows.map((r) => [r[1], r[2]])).toEqual([["bridge", "bridge"], ["host", "host"], ["none", "null"]]);
    expect(rows[0]![3]).toBe("10.77.0.0/16");
    const ids = ok(["network", "ls", "-q"]).trim().split("\n");
    expect(ids.length).toBe(3);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{12}$/);
    const json = ok(["network", "ls", "--format", "json"]).trim().split("\n").map((l) => JSON.parse(l));
    expect(json.map((n) => n.Name)).toEqual(["bridge", "host", "none"]);
    expect(json[0]).toMatchObject({ Driver: "bridge", Subnet: "10.77.0.0/16", Internal: false });
    // The records are files in the state directory.
    expect(readdirSync(`${STATE}/networks`).filter((f) => f.endsWith(".json")).length).toBe(3);
  });

  test("create gives a bridge of its own with a free /24, shown by ip and nft; rm removes both", () => {
    const id = ok(["network", "create", "backend"]).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const bridge = bridgeOf("backend");
    expect(bridge).toBe(`tsnet-${id.slice(0, 9)}`);
    const [link] = ipj<any[]>(["-4", "addr", "show", bridge]);
    expect(link.addr_info[0]).toMatchObject({ local: "10.78.0.1", prefixlen: 24 });
    const [detail] = ipj<any[]>(["-d", "link", "show", bridge]);
    expect(detail.linkinfo.info_kind).toBe("bridge");
    expect(ruleset()).toContain(`ip daddr 10.78.0.0/24 iifname != @bridges fib daddr type != local ct state ! established,related counter`);
    expect(ruleset()).toContain(`ip saddr 10.78.0.0/24 oifname != "${bridge}" masquerade`);
    // A second network gets the next free /24.
    ok(["network", "create", "frontend"]);
    expect(JSON.parse(ok(["network", "inspect", "frontend"]))[0].IPAM.Config).toEqual([{ Subnet: "10.78.1.0/24", Gateway: "10.78.1.1" }]);
    expect(ok(["network", "rm", "backend"])).toBe("backend\n");
    expect(sh(["ip", "link", "show", bridge]).code).not.toBe(0);
    expect(ruleset()).not.toContain(bridge);
    expect(ruleset()).toContain(bridgeOf("frontend"));
  });

  test("rm of a network that was used leaves none of its address state under /run/tsnet", () => {
    const id = ok(["network", "create", "used-once"]).trim();
    expect(sh([TSNET, "run", "--rm", "--network", "used-once", "--", "true"]).code).toBe(0);
    expect(existsSync(`/run/tsnet/networks/${id}/leases`)).toBe(true);
    expect(ok(["network", "rm", "used-once"])).toBe("used-once\n");
    expect(existsSync(`/run/tsnet/networks/${id}`)).toBe(false);
  });

  test("create with --subnet and --gateway, and inspect in Docker's shape with the containers on it", () => {
    ok(["network", "create", "--subnet", "10.90.5.0/24", "--gateway", "10.90.5.254", "lab"]);
    const c = runD(["--name", "labc", "--network", "lab", "--", "sleep", "30"]);
    const [n] = JSON.parse(ok(["network", "inspect", "lab"]));
    expect(n).toMatchObject({ Name: "lab", Driver: "bridge", Scope: "local", Internal: false, IPAM: { Config: [{ Subnet: "10.90.5.0/24", Gateway: "10.90.5.254" }] } });
    expect(n.Id).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(n.Containers)).toEqual([c]);
    expect(n.Containers[c].Name).toBe("labc");
    expect(n.Containers[c].IPv4Address).toMatch(/^10\.90\.5\.\d+\/24$/);
    const [addr] = ipj<any[]>(["-4", "addr", "show", "eth0"], "tsnet-labc");
    expect(`${addr.addr_info[0].local}/24`).toBe(n.Containers[c].IPv4Address);
    const routes = ipj<any[]>(["-4", "route"], "tsnet-labc");
    expect(routes.find((r) => r.dst === "default")).toMatchObject({ gateway: "10.90.5.254" });
  });

  test("rm is refused while a container uses the network, and for bridge, host and none", () => {
    ok(["network", "create", "busy"]);
    runD(["--name", "user1", "--network", "busy", "--", "sleep", "30"]);
    const r = tsnet(["network", "rm", "busy"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tsnet: network busy has active endpoints \(user1\)/);
    expect(r.stderr.trim().split("\n").length).toBe(1);
    expect(bridgeOf("busy")).toMatch(/^tsnet-/);
    for (const b of ["bridge", "host", "none"]) {
      const x = tsnet(["network", "rm", b]);
      expect(x.code).toBe(1);
      expect(x.stderr).toBe(`tsnet: ${b} is a pre-defined network and cannot be removed\n`);
    }
    const unknown = tsnet(["network", "rm", "nosuch"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("tsnet: no such network: nosuch (see tsnet network ls)\n");
  });

  test("prune removes the unused user networks only", () => {
    ok(["network", "create", "keep"]);
    ok(["network", "create", "gone1"]);
    ok(["network", "create", "gone2"]);
    runD(["--name", "keeper", "--network", "keep", "--", "sleep", "30"]);
    expect(ok(["network", "prune", "-f"]).trim().split("\n").sort()).toEqual(["gone1", "gone2"]);
    expect(userNetworks()).toEqual(["keep"]);
  });

  test("records survive a reboot: kernel objects and /run gone, the network comes back as it was", () => {
    ok(["network", "create", "--subnet", "10.91.0.0/24", "persist"]);
    const before = JSON.parse(ok(["network", "inspect", "persist"]))[0];
    // A "reboot": every kernel object and everything on /run/tsnet goes; /var/lib/tsnet stays.
    sh(["ip", "link", "del", before.Options["com.docker.network.bridge.name"]]);
    sh(["ip", "link", "del", "tsnet0"]);
    sh(["nft", "delete", "table", "inet", "tsnet"]);
    rmSync("/run/tsnet", { recursive: true, force: true });
    expect(ok(["network", "ls", "-q"]).trim().split("\n").length).toBe(4);
    const out = ok(["run", "--rm", "--network", "persist", "--", "ip", "-br", "-4", "addr", "show", "eth0"]);
    expect(out).toMatch(/10\.91\.0\.\d+\/24/);
    const after = JSON.parse(ok(["network", "inspect", "persist"]))[0];
    expect(after.Id).toBe(before.Id);
    expect(ipj<any[]>(["-4", "addr", "show", before.Options["com.docker.network.bridge.name"]])[0].addr_info[0].local).toBe("10.91.0.1");
    expect(ruleset()).toContain("ip daddr 10.91.0.0/24");
  });

  test("a bridge someone took down, or took a gateway address from, is mended by the next run on it (each family checked)", () => {
    ok(["network", "create", "--ipv6", "--subnet", "10.94.0.0/24", "--subnet", "fd00:94::/64", "m94"]);
    const br = bridgeOf("m94");
    const gateways = () => ipj<any[]>(["addr", "show", "dev", br])[0].addr_info.filter((a: any) => a.scope === "global").map((a: any) => `${a.local}/${a.prefixlen}`).sort();
    const up = () => ipj<any[]>(["link", "show", "dev", br])[0].flags.includes("UP");
    expect(gateways()).toEqual(["10.94.0.1/24", "fd00:94::1/64"]);
    for (const [what, breakIt] of [
      ["IPv4 gateway deleted", () => sh(["ip", "addr", "del", "10.94.0.1/24", "dev", br])],
      ["IPv6 gateway deleted", () => sh(["ip", "addr", "del", "fd00:94::1/64", "dev", br])],
      ["bridge down", () => sh(["ip", "link", "set", br, "down"])],
    ] as const) {
      expect(breakIt().code).toBe(0);
      // The run reaches its gateways over both families.
      ok(["run", "--rm", "--network", "m94", "--", "sh", "-c", "ping -c1 -W2 10.94.0.1 >/dev/null && ping -6 -c1 -W2 fd00:94::1 >/dev/null"]);
      expect(gateways(), what).toEqual(["10.94.0.1/24", "fd00:94::1/64"]);
      expect(up(), what).toBe(true);
    }
  });

  test("TSNET_BRIDGE_SUBNET only seeds the bridge network: later it is ignored, with a warning, and changes nothing", () => {
    ok(["run", "--rm", "--", "true"]);
    const rulesBefore = ruleset();
    const r = tsnet(["run", "--rm", "--", "ip", "-br", "-4", "addr", "show", "eth0"], { env: { TSNET_BRIDGE_SUBNET: "10.79.0.0/16" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/10\.77\.\d+\.\d+\/16/);
    expect(r.stderr).toMatch(/^tsnet: warning: TSNET_BRIDGE_SUBNET=10\.79\.0\.0\/16 is ignored: the bridge network already exists with subnet 10\.77\.0\.0\/16/);
    const [tsnet0] = ipj<any[]>(["-4", "addr", "show", "tsnet0"]);
    expect(tsnet0.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(["10.77.0.1/16"]);
    expect(ruleset()).toBe(rulesBefore);
  });
});

describe("run on a network", () => {
  test("--ip, --mac-address and a taken or outside --ip", () => {
    ok(["network", "create", "--subnet", "10.92.0.0/24", "static"]);
    const out = ok(["run", "--rm", "--network", "static", "--ip", "10.92.0.50", "--mac-address", "02:42:0a:5c:00:32", "--", "ip", "-j", "addr", "show", "eth0"]);
    const [eth0] = JSON.parse(out);
    expect(eth0.address).toBe("02:42:0a:5c:00:32");
    expect(eth0.addr_info.find((a: any) => a.family === "inet").local).toBe("10.92.0.50");
    runD(["--name", "holder", "--network", "static", "--ip", "10.92.0.60", "--", "sleep", "30"]);
    const taken = tsnet(["run", "--rm", "--network", "static", "--ip", "10.92.0.60", "--", "true"]);
    expect(taken.code).toBe(125);
    expect(taken.stderr).toBe("tsnet: --ip 10.92.0.60 is already in use on network static by container holder: give another address\n");
    const outside = tsnet(["run", "--rm", "--network", "static", "--ip", "10.93.0.5", "--", "true"]);
    expect(outside.code).toBe(125);
    expect(outside.stderr).toMatch(/^tsnet: --ip 10\.93\.0\.5 is outside network static \(10\.92\.0\.0\/24\)/);
    expect(netnsNames()).toEqual(["tsnet-holder"]);
  });

  test("-h/--hostname is what the command sees, in a UTS namespace of its own; the host's stays", () => {
    const hostBefore = sh(["hostname"]).stdout;
    const out = ok(["run", "--rm", "-h", "web01", "--", "sh", "-c", "hostname; cat /etc/hostname"]);
    expect(out).toBe("web01\nweb01\n");
    expect(sh(["hostname"]).stdout).toBe(hostBefore);
    // Without -h: the first 12 hex digits of the id, as in Docker.
    const id = runD(["--name", "hn", "--", "sleep", "30"]);
    expect(ok(["exec", "hn", "hostname"])).toBe(`${id.slice(0, 12)}\n`);
  });

  test("/etc/hosts, /etc/resolv.conf and /etc/hostname are the container's own; the host's files are untouched; exec sees the same", () => {
    const before = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"].map((f) => readFileSync(f, "utf8"));
    ok(["network", "create", "etcnet"]);
    ok(["run", "-d", "--name", "etc1", "--network", "etcnet", "-h", "box", "--add-host", "db.local:192.0.2.10", "--add-host", "gw:host-gateway",
      "--dns-search", "corp.example", "--", "sleep", "30"]);
    const hosts = ok(["exec", "etc1", "cat", "/etc/hosts"]);
    expect(hosts).toContain("127.0.0.1\tlocalhost\n");
    expect(hosts).toMatch(/\n10\.78\.0\.\d+\tbox etc1\n/);
    expect(hosts).toContain("192.0.2.10\tdb.local\n");
    expect(hosts).toContain("10.78.0.1\tgw\n");
    const resolv = ok(["exec", "etc1", "cat", "/etc/resolv.conf"]);
    expect(resolv).toContain("nameserver 127.0.0.11\n");
    expect(resolv).toContain("search corp.example\n");
    expect(ok(["exec", "etc1", "getent", "hosts", "db.local"])).toBe("192.0.2.10      db.local\n");
    expect(["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"].map((f) => readFileSync(f, "utf8"))).toEqual(before);
    // ip netns exec (the host's view of the namespace) does not see them: they are the container's.
    expect(sh(["ip", "netns", "exec", "tsnet-etc1", "cat", "/etc/hosts"]).stdout).toBe(before[0]!);
  });

  test("ps and inspect show every network a container is on; connect adds eth1, disconnect removes it", async () => {
    ok(["network", "create", "n1"]);
    ok(["network", "create", "n2"]);
    const id = runD(["--name", "multi", "--network", "n1", "--", "sleep", "30"]);
    expect(ok(["network", "connect", "--alias", "second", "n2", "multi"])).toBe("");
    const links = ipj<any[]>(["-4", "addr"], "tsnet-multi").map((l) => l.ifname).sort();
    expect(links).toEqual(["eth0", "eth1", "lo"]);
    const [eth1] = ipj<any[]>(["-4", "addr", "show", "eth1"], "tsnet-multi");
    expect(eth1.addr_info[0].local).toMatch(/^10\.78\.1\.\d+$/);
    const ps = JSON.parse(ok(["ps", "--format", "json"]).trim());
    expect(ps.Networks).toBe("n1,n2");
    const [c] = JSON.parse(ok(["inspect", "multi"]));
    expect(Object.keys(c.NetworkSettings.Networks)).toEqual(["n1", "n2"]);
    expect(c.NetworkSettings.Networks.n2).toMatchObject({ IPAddress: eth1.addr_info[0].local, Aliases: ["second"] });
    // Its names answer on n2 too, for a container there.
    const peer = ok(["run", "--rm", "--network", "n2", "--", "getent", "hosts", "second"]);
    expect(peer).toBe(`${eth1.addr_info[0].local}    second\n`.replace("    ", " ".repeat(16 - eth1.addr_info[0].local.length)));
    const hostEnd = records().find((r) => r.id === id).endpoints[1].hostVeth;
    const hostIndex = ipj<any[]>(["link", "show", hostEnd])[0].ifindex;
    expect(ok(["network", "disconnect", "n2", "multi"])).toBe("");
    // At once: eth1 gone from the container's namespace with its address and routes; its host end
    // gone from the bridge; the pair set aside (down, renamed) until the namespace goes.
    const inside = ipj<any[]>(["addr"], "tsnet-multi");
    expect(inside.map((l) => l.ifname).filter((n) => !/^gone-tsnet\d+$/.test(n)).sort()).toEqual(["eth0", "lo"]);
    expect(JSON.stringify(inside)).not.toContain(eth1.addr_info[0].local);
    expect(ipj<any[]>(["route", "show", "table", "all"], "tsnet-multi").filter((r) => r.dev !== "eth0" && r.dev !== "lo")).toEqual([]);
    expect(ipj<any[]>(["link", "show", "master", bridgeOf("n2")])).toEqual([]);
    expect(sh(["ip", "link", "show", hostEnd]).code).not.toBe(0);
    expect(veths().length).toBe(1);
    expect(JSON.parse(ok(["network", "inspect", "n2"]))[0].Containers).toEqual({});
    // Soon after: the container's manager has deleted the pair set aside, inside and on the host.
    await waitFor("the manager to delete the pair set aside", () => !goneIn("tsnet-multi").length && !ipj<any[]>(["link", "show"]).some((l) => l.ifindex === hostIndex), 2000);
    // Connected again: the same names are free.
    expect(ok(["network", "connect", "n2", "multi"])).toBe("");
    expect(ipj<any[]>(["-4", "addr", "show", "eth1"], "tsnet-multi")[0].addr_info[0].local).toMatch(/^10\.78\.1\.\d+$/);
    const again = ipj<any[]>(["link", "show", hostEnd])[0];
    expect(again.master).toBe(bridgeOf("n2"));
    expect(ok(["network", "disconnect", "n2", "multi"])).toBe("");
    ok(["rm", "-f", id]);
    expect(leases()).toEqual([]);
    const setAside = [hostIndex, again.ifindex];
    await waitFor("the pairs set aside to go with the namespace", () => !ipj<any[]>(["link", "show"]).some((l) => setAside.includes(l.ifindex)));
  });

  test("a manager under a flood of connect/disconnect cycles keeps answering DNS and ps, and leaves no pair set aside", async () => {
    ok(["network", "create", "n1"]);
    ok(["network", "create", "n2"]);
    const id = runD(["--name", "flood", "--network", "n1", "--", "sleep", "60"]);
    const eth0 = ipj<any[]>(["-4", "addr", "show", "eth0"], "tsnet-flood")[0].addr_info[0].local;
    let most = 0;
    for (let i = 0; i < 8; i++) {
      expect(ok(["network", "connect", "n2", "flood"])).toBe("");
      expect(ok(["network", "disconnect", "n2", "flood"])).toBe("");
      // Never more than the one just set aside (an older one is deleted by the manager, or by
      // the next disconnect at the latest).
      most = Math.max(most, goneIn("tsnet-flood").length);
      expect(resolveIn("tsnet-flood", "flood")).toBe(eth0);
      expect(ok(["ps", "-q"]).trim().split("\n")).toContain(id.slice(0, 12));
    }
    expect(most).toBeLessThanOrEqual(1);
    await waitFor("the manager to delete the pairs set aside", () => !goneIn("tsnet-flood").length, 2000);
    expect(resolveIn("tsnet-flood", "flood")).toBe(eth0);
    expect(records().find((r) => r.id === id).status).toBe("running");
  });

  test("disconnect from a dual-stack network takes eth1's IPv4 and IPv6 addresses and routes with it", () => {
    ok(["network", "create", "--ipv6", "--subnet", "10.93.0.0/24", "--subnet", "fd00:93::/64", "d93"]);
    runD(["--name", "ds", "--", "sleep", "30"]);
    expect(ok(["network", "connect", "d93", "ds"])).toBe("");
    const has = (text: string) => JSON.stringify([ipj(["addr"], "tsnet-ds"), ipj(["-6", "route", "show", "table", "all"], "tsnet-ds"), ipj(["route", "show", "table", "all"], "tsnet-ds")]).includes(text);
    expect(has("10.93.0.")).toBe(true);
    expect(has("fd00:93:")).toBe(true);
    expect(ok(["network", "disconnect", "d93", "ds"])).toBe("");
    expect(ipj<any[]>(["link"], "tsnet-ds").map((l) => l.ifname)).not.toContain("eth1");
    expect(has("10.93.0.")).toBe(false);
    expect(has("fd00:93:")).toBe(false);
    expect(ipj<any[]>(["-6", "route", "show", "table", "all"], "tsnet-ds").filter((r) => r.dev !== "lo" && r.dev !== "eth0")).toEqual([]);
  });

  test("an exited container keeps its network and port bindings in inspect and ps, as Docker's do", () => {
    ok(["network", "create", "n1"]);
    runD(["--name", "r", "--network", "n1", "-p", "8400:80", "--", "sleep", "60"]);
    const config = () => ok(["inspect", "-f", "{{.HostConfig.NetworkMode}} {{json .HostConfig.PortBindings}}", "r"]);
    expect(config()).toBe('n1 {"80/tcp":[{"HostIp":"","HostPort":"8400"}]}\n');
    ok(["stop", "-t", "0", "r"]);
    expect(config()).toBe('n1 {"80/tcp":[{"HostIp":"","HostPort":"8400"}]}\n');
    expect(ok(["ps", "-a", "--filter", "network=n1", "--format", "{{.Names}} {{.Networks}}"])).toBe("r n1\n");
  });

  test("a container that ends while another lives in its namespace (--network container:) takes its veth and address with it", () => {
    ok(["network", "create", "--subnet", "10.95.0.0/29", "small"]);
    const owner = runD(["--name", "s1", "--network", "small", "--", "sleep", "60"]);
    runD(["--name", "s4", "--network", "container:s1", "--", "sleep", "60"]);
    const hostVeth = records().find((r) => r.id === owner).endpoints[0].hostVeth;
    const address = records().find((r) => r.id === owner).endpoints[0].ips[0].address;
    expect(ok(["stop", "s1"])).toBe("s1\n");
    // The namespace lives on in s4, but s1's veth is gone from the host at once, and nothing
    // answers at its address any more...
    expect(ipj<any[]>(["link", "show", "type", "veth"]).map((l) => l.ifname)).not.toContain(hostVeth);
    expect(sh(["ping", "-c", "1", "-W", "1", address]).code).not.toBe(0);
    // ...so when the address is given out again (the /29 has 5), one interface alone holds it.
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push(ok(["run", "--rm", "--network", "small", "--", "sh", "-c", "ip -4 -o addr show eth0; ping -c 1 -w 3 10.95.0.1 >/dev/null && echo up"]));
    }
    expect(seen.some((out) => out.includes(` ${address}/29 `))).toBe(true);
    expect(seen.every((out) => out.endsWith("up\n"))).toBe(true);
    // s1 starts again with a veth of its own name.
    expect(ok(["restart", "s1"])).toBe("s1\n");
    ok(["rm", "-f", "s4", "s1"]);
    expect(existsSync("/run/tsnet/joins") ? readdirSync("/run/tsnet/joins") : []).toEqual([]);
    expect(leases()).toEqual([]);
  });
});

describe("isolation", () => {
  test("the same network reaches, another network does not (both ways), a published port does from anywhere", async () => {
    ok(["network", "create", "red"]);
    ok(["network", "create", "blue"]);
    runD(["--name", "r1", "--network", "red", "--", "sleep", "60"]);
    runD(["--name", "b1", "--network", "blue", "-p", "8181:80", "--", ...site.command]);
    const addr = (n: string) => ipj<any[]>(["-4", "addr", "show", "eth0"], `tsnet-${n}`)[0].addr_info[0].local as string;
    const r1 = addr("r1");
    const b1 = addr("b1");
    expect(tsnet(["run", "--rm", "--network", "red", "--", "ping", "-c1", "-W1", r1]).code).toBe(0);
    expect(tsnet(["run", "--rm", "--network", "red", "--", "ping", "-c1", "-W1", b1]).code).not.toBe(0);
    expect(tsnet(["run", "--rm", "--network", "blue", "--", "ping", "-c1", "-W1", r1]).code).not.toBe(0);
    expect(tsnet(["run", "--rm", "--", "ping", "-c1", "-W1", r1]).code).not.toBe(0);
    await waitFor("nginx", () => curl("http://127.0.0.1:8181/").code === 0);
    const fromRed = tsnet(["run", "--rm", "--network", "red", "--", "curl", "-sS", "--max-time", "2", "http://192.0.2.1:8181/"]);
    expect(fromRed.stdout).toBe("hello from nginx\n");
    expect(ruleset()).toMatch(/iifname @bridges oifname @bridges iifname \. oifname != @same_bridge counter packets [1-9]/);
  });

  test("an internal network has no way out, no way in, and refuses -p", () => {
    ok(["network", "create", "--internal", "vault"]);
    const routes = ok(["run", "--rm", "--network", "vault", "--", "ip", "-j", "-4", "route"]);
    expect(JSON.parse(routes).find((r: any) => r.dst === "default")).toBeUndefined();
    // Even with a route put back by hand, nothing is forwarded beyond its bridge.
    const out = tsnet(["run", "--rm", "--network", "vault", "--", "sh", "-c",
      "ip route add default via $(ip -4 route | awk '/kernel/ {print $1}' | sed 's|0/24|1|'); ping -c1 -W1 192.0.2.2"]);
    expect(out.code).not.toBe(0);
    expect(out.stdout).toContain("100% packet loss");
    expect(ruleset()).not.toMatch(/ip saddr 10\.78\.\d+\.0\/24 oifname != "tsnet-[0-9a-f]+" masquerade comment "tsnet: vault/);
    const p = tsnet(["run", "--rm", "--network", "vault", "-p", "8282:80", "--", "true"]);
    expect(p.code).toBe(125);
    expect(p.stderr).toBe("tsnet: -p cannot be used on internal network vault: it has no way in from outside\n");
  });

  test("a neighbour routing a container subnet through the host reaches no container port, published or not", async () => {
    runD(["--name", "direct", "-p", "8383:80", "--", ...site.command]);
    await waitFor("nginx", () => curl("http://127.0.0.1:8383/").code === 0);
    const ip = ipj<any[]>(["-4", "addr", "show", "eth0"], "tsnet-direct")[0].addr_info[0].local as string;
    sh(["ip", "-n", "nb", "route", "add", "10.77.0.0/16", "via", "192.0.2.1"]);
    try {
      expect(curl(`http://${ip}:81/`, "nb", 1).code).not.toBe(0); // never published
      expect(curl(`http://${ip}:80/`, "nb", 1).code).not.toBe(0); // published only as 8383
      expect(curl("http://192.0.2.1:8383/", "nb").stdout).toBe("hello from nginx\n"); // the published way works
      // The host itself still reaches the container directly, as with Docker.
      expect(curl(`http://${ip}:81/`).stdout).toBe("hello from nginx\n");
    } finally {
      sh(["ip", "-n", "nb", "route", "del", "10.77.0.0/16"]);
    }
  });
});

describe("DNS", () => {
  test("with the host resolver on loopback (127.0.0.53), a bridge container resolves what the host resolves", async () => {
    const fake = await fakeResolver("127.0.0.53", { "service.example.test": "192.0.2.77" });
    try {
      await withHostResolvConf("nameserver 127.0.0.53\nsearch example.test\n", async () => {
        expect(sh(["getent", "hosts", "service.example.test"]).stdout).toContain("192.0.2.77");
        const r = tsnet(["run", "--rm", "--", "getent", "hosts", "service.example.test"]);
        expect(r.stdout).toBe("192.0.2.77      service.example.test\n");
        expect(r.code).toBe(0);
        // The host's search domain is the container's too.
        expect(tsnet(["run", "--rm", "--", "getent", "hosts", "service"]).stdout).toContain("192.0.2.77");
        // And on a user network.
        ok(["network", "create", "dnsnet"]);
        expect(tsnet(["run", "--rm", "--network", "dnsnet", "--", "getent", "hosts", "service.example.test"]).stdout).toContain("192.0.2.77");
      });
      expect(fake.asked()).toContain("service.example.test");
    } finally {
      await fake.stop();
    }
  });

  test("--dns sends other names to the given server instead of the host's", async () => {
    const fake = await fakeResolver("127.0.0.54", { "only.on.custom": "192.0.2.88" });
    try {
      const r = tsnet(["run", "--rm", "--dns", "127.0.0.54", "--", "getent", "hosts", "only.on.custom"]);
      expect(r.stdout).toBe("192.0.2.88      only.on.custom\n");
    } finally {
      await fake.stop();
    }
  });

  test("containers on a user network find each other by name and alias, appearing and disappearing with them", async () => {
    const fake = await fakeResolver("127.0.0.53", {});
    try {
      await withHostResolvConf("nameserver 127.0.0.53\n", async () => {
        ok(["network", "create", "names"]);
        runD(["--name", "db", "--network", "names", "--network-alias", "database", "--", "sleep", "60"]);
        const dbIp = ipj<any[]>(["-4", "addr", "show", "eth0"], "tsnet-db")[0].addr_info[0].local as string;
        for (const name of ["db", "database", "db.names"]) {
          const r = tsnet(["run", "--rm", "--network", "names", "--", "getent", "hosts", name]);
          expect(r.stdout.split(/\s+/)[0]).toBe(dbIp);
        }
        expect(tsnet(["run", "--rm", "--network", "names", "--", "ping", "-c1", "-W1", "db"]).code).toBe(0);
        // Not from another network, and not on the default bridge (as in Docker).
        ok(["network", "create", "other"]);
        expect(tsnet(["run", "--rm", "--network", "other", "--", "getent", "hosts", "db"]).code).not.toBe(0);
        expect(tsnet(["run", "--rm", "--", "getent", "hosts", "db"]).code).not.toBe(0);
        // A name that appears later is found, and gone once its container ends.
        const web = runD(["--name", "web", "--network", "names", "--", "sleep", "60"]);
        expect(tsnet(["exec", "db", "getent", "hosts", "web"]).code).toBe(0);
        ok(["rm", "-f", web]);
        const gone = tsnet(["exec", "db", "getent", "hosts", "web"]);
        expect(gone.code).toBe(2);
        // Unknown names went upstream to the host's resolver.
        expect(fake.asked()).toContain("web");
      });
    } finally {
      await fake.stop();
    }
  });

  test("an internal network resolves its own names but forwards nothing", async () => {
    const fake = await fakeResolver("127.0.0.53", { "leak.example.test": "192.0.2.99" });
    try {
      await withHostResolvConf("nameserver 127.0.0.53\n", async () => {
        ok(["network", "create", "--internal", "sealed"]);
        runD(["--name", "inner", "--network", "sealed", "--", "sleep", "60"]);
        expect(tsnet(["run", "--rm", "--network", "sealed", "--", "getent", "hosts", "inner"]).code).toBe(0);
        expect(tsnet(["run", "--rm", "--network", "sealed", "--", "getent", "hosts", "leak.example.test"]).code).not.toBe(0);
        // Its resolv.conf says so, not that other names go to the host's resolvers.
        const conf = tsnet(["run", "--rm", "--network", "sealed", "--", "cat", "/etc/resolv.conf"]).stdout;
        expect(conf).toContain("# on the same user networks itself, and nothing else: its networks are internal, with no way out.\n");
        expect(conf).not.toContain("host's resolvers");
      });
      expect(fake.asked()).not.toContain("leak.example.test");
    } finally {
      await fake.stop();
    }
  });
});

describe("bad input: one line, exit 125 (1 for unknown objects), nothing made", () => {
  // veths() first: it waits out the veths of earlier tests' containers, which the kernel removes
  // with their namespaces a few milliseconds after they end.
  const before = () => (veths(), { nets: tsnet(["network", "ls", "-q"]).stdout, links: ipj<any[]>(["link"]).length, ns: netnsNames(), recs: records().length });
  const cases: [string, string[], RegExp][] = [
    ["an invalid CIDR", ["network", "create", "--subnet", "10.1.2/33", "x1"], /^tsnet: invalid --subnet "10\.1\.2\/33": give an address and prefix length/],
    ["host bits in the subnet", ["network", "create", "--subnet", "10.95.0.1/24", "x2"], /^tsnet: invalid --subnet "10\.95\.0\.1\/24": host bits are set; did you mean 10\.95\.0\.0\/24\?/],
    ["a gateway outside the subnet", ["network", "create", "--subnet", "10.95.0.0/24", "--gateway", "10.96.0.1", "x3"], /^tsnet: --gateway 10\.96\.0\.1 is not a usable address of 10\.95\.0\.0\/24/],
    ["an overlapping subnet", ["network", "create", "--subnet", "10.77.1.0/24", "x4"], /^tsnet: the x4 network's subnet 10\.77\.1\.0\/24 overlaps network bridge \(10\.77\.0\.0\/16\)/],
    ["a subnet overlapping a host route", ["network", "create", "--subnet", "192.0.2.0/25", "x5"], /^tsnet: the x5 network's subnet 192\.0\.2\.0\/25 overlaps the host route 192\.0\.2\.0\/24 dev nb0/],
    // Not in the main routing table, yet no bridge may hold them: 127.0.0.1/24 on a bridge takes
    // the host's own loopback services away from it.
    ["a loopback subnet", ["network", "create", "--subnet", "127.0.0.0/24", "x6"], /^tsnet: the x6 network's subnet 127\.0\.0\.0\/24 overlaps 127\.0\.0\.0\/8, the loopback range: choose another --subnet in a private range/],
    ["a multicast subnet", ["network", "create", "--subnet", "224.0.0.0/24", "x7"], /overlaps 224\.0\.0\.0\/4, the multicast range/],
    ["a link-local subnet", ["network", "create", "--subnet", "169.254.0.0/16", "x8"], /overlaps 169\.254\.0\.0\/16, the link-local range/],
    ["a reserved subnet", ["network", "create", "--subnet", "255.255.255.0/24", "x9"], /overlaps 240\.0\.0\.0\/4, the reserved range/],
    ["a reserved name", ["network", "create", "host"], /^tsnet: network name "host" is reserved/],
    ["--ip on the default bridge", ["run", "--rm", "--ip", "10.77.3.3", "--", "true"], /^tsnet: --ip is supported on user-defined networks only/],
    ["--ip with none", ["run", "--rm", "--network", "none", "--ip", "10.77.3.3", "--", "true"], /^tsnet: --ip cannot be used with --network none/],
    ["an alias that is not a DNS label", ["run", "--rm", "--network-alias", "bad_alias!", "--", "true"], /^tsnet: invalid --network-alias "bad_alias!": use DNS labels/],
    ["a hostname that is not a DNS label", ["run", "--rm", "-h", "-web", "--", "true"], /^tsnet: invalid --hostname "-web": use DNS labels/],
    ["an unknown network in run", ["run", "--rm", "--network", "nosuch", "--", "true"], /^tsnet: network nosuch not found: create it with tsnet network create nosuch/],
    ["a bad --add-host", ["run", "--rm", "--add-host", "nohost", "--", "true"], /^tsnet: invalid --add-host "nohost": use NAME:ADDRESS/],
    ["a bad --dns", ["run", "--rm", "--dns", "resolver.example", "--", "true"], /^tsnet: invalid --dns "resolver\.example"/],
    ["an all-zero --mac-address", ["run", "--rm", "--mac-address", "00:00:00:00:00:00", "--", "true"], /^tsnet: invalid --mac-address "00:00:00:00:00:00": give a unicast MAC/],
    ["a multicast --mac-address", ["run", "--rm", "--mac-address", "01:00:5e:00:00:01", "--", "true"], /^tsnet: invalid --mac-address "01:00:5e:00:00:01": give a unicast MAC/],
  ];
  for (const [what, args, message] of cases) {
    test(what, () => {
      const b = before();
      const r = tsnet(args);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(before()).toEqual(b);
    });
  }

  test("an existing name is refused", () => {
    ok(["network", "create", "twice"]);
    const r = tsnet(["network", "create", "twice"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe("tsnet: network with name twice already exists: choose another name or remove it (tsnet network rm twice)\n");
  });

  test("object commands exit 1 for an unknown network", () => {
    for (const args of [["network", "inspect", "nosuch"], ["network", "rm", "nosuch"], ["network", "connect", "nosuch", "x"]]) {
      const r = tsnet(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("no such network: nosuch");
    }
  });
});

afterAll(() => {
  expect(veths()).toEqual([]);
  expect(existsSync("/run/tsnet/containers") ? readdirSync("/run/tsnet/containers").filter((f) => f.endsWith(".json")) : []).toEqual([]);
  void TSNET;
});
