// Dual-stack networks (issue 20, the ipv6 slice): `network create --ipv6`, IPv6 addresses and
// routes, NAT66, the guards, isolation and --internal for IPv6, self-healing, inspect, CNI ranges,
// IPv6 off on IPv4-only interfaces, and a LAN host reaching a published port at a gateway
// address. The topology is this file's own, inside the throwaway host: a LAN neighbour (dslan)
// that routes everything, container prefixes included, to the host, and a far "world" host
// (dsworld) with no route back to any container, so only NAT answers reach it. Everything is
// observed from outside tsnet: ip, nft, /proc, and what the other end of a connection sees.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { TSNET, assertThrowawayHost, ipj, sh, tsnet, waitFor, userNetworks, tsnetOk as ok } from "./helpers.ts";

const LAN_HOST6 = "2001:db8:1::1", LAN6 = "2001:db8:1::2";
const LAN_HOST4 = "198.51.100.1", LAN4 = "198.51.100.2";
const WORLD_HOST6 = "2001:db8:2::1", WORLD6 = "2001:db8:2::2";
const WHO_PORT = 7000;
let www = "";
let who: Bun.Subprocess | undefined;
let lanWho: Bun.Subprocess | undefined;

function must(cmd: string): void {
  const r = sh(cmd.split(" "));
  if (r.code !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

/** A host joined to the throwaway host by a veth: host end `dev`, the other end eth0 in `ns`. */
function peerHost(ns: string, dev: string, host: string[], peer: string[], routeBack: boolean): void {
  must(`ip netns add ${ns}`);
  must(`ip link add ${dev} type veth peer name eth0 netns ${ns}`);
  // nodad: usable at once, as tsnet's own IPv6 addresses are.
  for (const a of host) must(`ip addr add ${a} dev ${dev}${a.includes(":") ? " nodad" : ""}`);
  must(`ip link set ${dev} up`);
  must(`ip -n ${ns} link set lo up`);
  for (const a of peer) must(`ip -n ${ns} addr add ${a} dev eth0${a.includes(":") ? " nodad" : ""}`);
  must(`ip -n ${ns} link set eth0 up`);
  if (routeBack) {
    must(`ip -n ${ns} route add default via ${host.find((a) => !a.includes(":"))!.split("/")[0]}`);
    must(`ip -n ${ns} -6 route add default via ${host.find((a) => a.includes(":"))!.split("/")[0]}`);
  }
}

beforeAll(async () => {
  assertThrowawayHost();
  peerHost("dslan", "dsl0", [`${LAN_HOST6}/64`, `${LAN_HOST4}/24`], [`${LAN6}/64`, `${LAN4}/24`], true);
  // The world knows only its own link: an answer reaches a container only through NAT.
  peerHost("dsworld", "dsw0", [`${WORLD_HOST6}/64`], [`${WORLD6}/64`], false);
  // It answers every connection with the address it sees the connection come from.
  const py = `import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", ${WHO_PORT})); s.listen(64)
while True:
    c, a = s.accept(); c.sendall((a[0] + "\\n").encode()); c.close()`;
  who = Bun.spawn(["ip", "netns", "exec", "dsworld", "python3", "-c", py], { stdio: ["ignore", "ignore", "inherit"] });
  await waitFor("the world's server", () => askPeer(WORLD6) === WORLD_HOST6);
  // The same on the LAN, which routes the containers' prefixes back through the host.
  lanWho = Bun.spawn(["ip", "netns", "exec", "dslan", "python3", "-c", py], { stdio: ["ignore", "ignore", "inherit"] });
  await waitFor("the LAN's server", () => askPeer(LAN6) === LAN_HOST6);
  www = mkdtempSync("/tmp/tsnet-ds-");
  chmodSync(www, 0o755);
  writeFileSync(`${www}/index.html`, "hello over both families\n");
});

afterAll(() => {
  who?.kill("SIGKILL");
  lanWho?.kill("SIGKILL");
  for (const [ns, dev] of [["dslan", "dsl0"], ["dsworld", "dsw0"]]) {
    sh(["ip", "link", "del", dev!]);
    sh(["ip", "netns", "del", ns!]);
  }
  if (www) rmSync(www, { recursive: true, force: true });
});

afterEach(() => {
  const ids = tsnet(["ps", "-aq"]).stdout.trim().split("\n").filter(Boolean);
  if (ids.length) tsnet(["rm", "-f", ...ids]);
  for (const n of userNetworks()) tsnet(["network", "rm", n]);
});

/** What the world's server says the connection came from, asked from `netns` (or the host): "" if it never got there. */
function askPeer(address: string, netns?: string, container?: string): string {
  const py = `import socket
s = socket.create_connection((${JSON.stringify(address)}, ${WHO_PORT}), timeout=2)
print(s.recv(100).decode().strip())`;
  const cmd = ["python3", "-c", py];
  if (container) return tsnet(["run", "--rm", "--network", container, "--", ...cmd]).stdout.trim();
  return sh(netns ? ["ip", "netns", "exec", netns, ...cmd] : cmd).stdout.trim();
}

/** A detached container serving www on port 80, both families. */
function server(name: string, args: string[]): string {
  const id = ok(["run", "-d", "--name", name, ...args, "--", "python3", "-m", "http.server", "--bind", "::", "--directory", www, "80"]).trim();
  return id;
}

function curl(url: string, netns?: string): { code: number; out: string } {
  const cmd = ["curl", "-sS", "-g", "--max-time", "2", url];
  const r = sh(netns ? ["ip", "netns", "exec", netns, ...cmd] : cmd);
  return { code: r.code, out: r.stdout };
}

async function serving(url: string, netns?: string): Promise<void> {
  await waitFor(`${url} to answer`, () => curl(url, netns).out === "hello over both families\n");
}

/** eth0's global IPv6 addresses in a container namespace, read by ip. */
function v6Addresses(netns: string, dev = "eth0"): string[] {
  return ipj<any[]>(["-6", "addr", "show", "dev", dev], netns).flatMap((l) => l.addr_info).filter((a: any) => a.scope === "global").map((a: any) => `${a.local}/${a.prefixlen}`);
}

const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;

/** tsnet as a CNI plugin, called as a runtime calls it (only these CNI_ variables). */
function cni(cmd: string, netns: string, conf: object, prevResult?: unknown) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
  return Bun.spawnSync([TSNET], {
    stdin: Buffer.from(JSON.stringify({ ...conf, ...(prevResult !== undefined && { prevResult }) })),
    env: { ...env, CNI_COMMAND: cmd, CNI_CONTAINERID: `ds-${netns}`, CNI_NETNS: `/run/netns/${netns}`, CNI_IFNAME: "eth0", CNI_PATH: "/nonexistent" },
  });
}

describe("dual-stack networks", () => {
  test("containers get an IPv6 address and default route and talk over IPv6; the bridge holds the gateway", async () => {
    ok(["network", "create", "--ipv6", "--subnet", "10.91.0.0/24", "--subnet", "fd00:91::/64", "d91"]);
    server("s91", ["--network", "d91", "--ip6", "fd00:91::10"]);
    expect(v6Addresses("tsnet-s91")).toEqual(["fd00:91::10/64"]);
    const routes = ipj<any[]>(["-6", "route", "show", "default"], "tsnet-s91");
    expect(routes.map((r) => r.gateway)).toEqual(["fd00:91::1"]);
    const bridge = JSON.parse(ok(["network", "inspect", "d91"]))[0].Options["com.docker.network.bridge.name"];
    expect(ipj<any[]>(["-6", "addr", "show", "dev", bridge]).flatMap((l) => l.addr_info).some((a: any) => a.local === "fd00:91::1" && a.prefixlen === 64)).toBe(true);
    expect(sh(["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]).stdout.trim()).toBe("1");
    // Container to container by address, over IPv6 only.
    await serving("http://[fd00:91::10]:80/");
    const r = tsnet(["run", "--rm", "--network", "d91", "--", "curl", "-sS", "-g", "--max-time", "3", "http://[fd00:91::10]:80/"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello over both families\n");
    // IPv4 still works beside it.
    const v4 = ipj<any[]>(["-4", "addr", "show", "dev", "eth0"], "tsnet-s91")[0].addr_info[0].local;
    expect(tsnet(["run", "--rm", "--network", "d91", "--", "curl", "-sS", "--max-time", "3", `http://${v4}:80/`]).stdout).toBe("hello over both families\n");
  });

  test("--ipv6 without an IPv6 subnet takes the first free /64 of fd00:7473::/48", () => {
    ok(["network", "create", "--ipv6", "a6"]);
    ok(["network", "create", "--ipv6", "b6"]);
    const cfg = (n: string) => JSON.parse(ok(["network", "inspect", n]))[0].IPAM.Config.map((c: any) => c.Subnet);
    expect(cfg("a6")[1]).toBe("fd00:7473::/64");
    expect(cfg("b6")[1]).toBe("fd00:7473:0:1::/64");
    expect(cfg("a6")[0]).toMatch(/^10\.7[89]\.\d+\.0\/24$/);
    ok(["network", "create", "v4"]);
    expect(ok(["network", "ls", "--format", "{{.Name}} {{.IPv6}}"]).split("\n").filter((l) => /^(a6|b6|v4|bridge) /.test(l)).sort()).toEqual(["a6 true", "b6 true", "bridge false", "v4 false"]);
  });

  test("outbound IPv6 leaves masqueraded as the host (NAT66)", () => {
    ok(["network", "create", "--ipv6", "--subnet", "fd00:92::/64", "d92"]);
    // The world has no route to fd00:92::/64: without NAT66 no answer could come back.
    expect(askPeer(WORLD6, undefined, "d92")).toBe(WORLD_HOST6);
    expect(ruleset()).toContain(`ip6 saddr fd00:92::/64 oifname != "`);
  });

  test("two IPv6 networks are isolated from each other", async () => {
    ok(["network", "create", "--ipv6", "--subnet", "fd00:93::/64", "d93"]);
    ok(["network", "create", "--ipv6", "--subnet", "fd00:94::/64", "d94"]);
    server("s93", ["--network", "d93", "--ip6", "fd00:93::10"]);
    await serving("http://[fd00:93::10]:80/");
    // From the other network: routed through the host, and dropped there.
    const r = tsnet(["run", "--rm", "--network", "d94", "--", "curl", "-sS", "-g", "--max-time", "2", "http://[fd00:93::10]:80/"]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe("");
    // The same container reaches the world, so it is the isolation that stopped it.
    expect(askPeer(WORLD6, undefined, "d94")).toBe(WORLD_HOST6);
  });

  test("an internal IPv6 network has no way out, even with a default route added by hand", () => {
    ok(["network", "create", "--internal", "--ipv6", "--subnet", "fd00:95::/64", "i95"]);
    const py = `import socket
try:
    s = socket.create_connection(("${WORLD6}", ${WHO_PORT}), timeout=2); print("reached", s.recv(100).decode().strip())
except Exception as e: print("blocked", type(e).__name__)`;
    const r = tsnet(["run", "--rm", "--network", "i95", "--", "sh", "-c", `ip -6 route show default; ip -6 route add default via fd00:95::1 && python3 -c '${py}'`]);
    // No IPv6 default route of its own: the first line would name one.
    expect(r.stdout.split("\n")[0]).toMatch(/^blocked /);
    expect(ruleset()).not.toContain("fd00:95::/64 oifname !=");
  });

  test("a LAN neighbour that routes the container prefix to the host cannot reach an unpublished port", async () => {
    ok(["network", "create", "--ipv6", "--subnet", "fd00:96::/64", "d96"]);
    server("s96", ["--network", "d96", "--ip6", "fd00:96::10"]);
    // The host reaches it (so it is up)...
    await serving("http://[fd00:96::10]:80/");
    // ...the neighbour, whose default route is the host, does not.
    const r = curl("http://[fd00:96::10]:80/", "dslan");
    expect(r.code).not.toBe(0);
    expect(r.out).toBe("");
    const counter = /ip6 daddr fd00:96::\/64 .*counter packets (\d+)/.exec(ruleset());
    expect(Number(counter?.[1])).toBeGreaterThan(0);
  });

  test("a LAN host reaches a published port at a bridge's gateway address, as at any host address", async () => {
    ok(["network", "create", "--subnet", "10.97.0.0/24", "p97"]);
    server("s97", ["--network", "p97", "-p", "8097:80"]);
    await serving(`http://${LAN_HOST4}:8097/`, "dslan");
    // The gateway is the host's own address: the direct-access guard must not take it for a container's.
    expect(curl("http://10.97.0.1:8097/", "dslan").out).toBe("hello over both families\n");
    // A container's own address is still out of reach from the LAN.
    const ip = ipj<any[]>(["-4", "addr", "show", "dev", "eth0"], "tsnet-s97")[0].addr_info[0].local;
    expect(curl(`http://${ip}:80/`, "dslan").code).not.toBe(0);
  });

  test("nft flush ruleset: a running container's manager puts the IPv6 rules back", async () => {
    ok(["network", "create", "--ipv6", "--subnet", "fd00:98::/64", "d98"]);
    server("s98", ["--network", "d98"]);
    const v6rules = ["ip6 daddr ::1 counter", "ip6 daddr fd00:98::/64 iifname != @bridges", "ip6 saddr fd00:98::/64 oifname != "];
    for (const r of v6rules) expect(ruleset()).toContain(r);
    must("nft flush ruleset");
    await waitFor("the IPv6 rules to come back", () => v6rules.every((r) => ruleset().includes(r)));
    expect(askPeer(WORLD6, undefined, "d98")).toBe(WORLD_HOST6);
  });

  test("eth0 on an IPv4-only network has IPv6 turned off: no address at all, not even link-local", () => {
    ok(["network", "create", "--subnet", "10.99.0.0/24", "v4only"]);
    const look = "ip -6 -o addr show dev eth0; echo disable_ipv6=$(cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6)";
    for (const net of ["bridge", "v4only"]) {
      const r = tsnet(["run", "--rm", "--network", net, "--", "sh", "-c", look]);
      expect(r.stdout).toBe("disable_ipv6=1\n");
    }
    ok(["network", "create", "--ipv6", "--subnet", "fd00:99::/64", "d99"]);
    const r = tsnet(["run", "--rm", "--network", "d99", "--", "sh", "-c", look]);
    expect(r.stdout).toContain("inet6 fd00:99::");
    expect(r.stdout).toContain("disable_ipv6=0\n");
    // lo keeps ::1, as in Docker.
    expect(tsnet(["run", "--rm", "--", "ip", "-6", "-o", "addr", "show", "dev", "lo"]).stdout).toContain("::1/128");
  });

  test("network connect --ip6: an IPv4-only container gets eth1 with an IPv6 address and an IPv6 default route; eth0 stays without IPv6", async () => {
    ok(["network", "create", "--ipv6", "--subnet", "fd00:104::/64", "d104"]);
    ok(["run", "-d", "--name", "c104", "--", "sleep", "60"]);
    ok(["network", "connect", "--ip6", "fd00:104::44", "d104", "c104"]);
    expect(v6Addresses("tsnet-c104", "eth1")).toEqual(["fd00:104::44/64"]);
    expect(ipj<any[]>(["-6", "route", "show", "default"], "tsnet-c104").map((r) => [r.gateway, r.dev])).toEqual([["fd00:104::1", "eth1"]]);
    expect(sh(["ip", "-n", "tsnet-c104", "-6", "-o", "addr", "show", "dev", "eth0"]).stdout).toBe("");
    expect(askPeer(WORLD6, "tsnet-c104")).toBe(WORLD_HOST6);
    const bad = tsnet(["network", "connect", "--ip6", "fd00:104::44", "d104", "c104"]);
    expect(bad.code).not.toBe(0);
  });

  test("inspect shows the IPv6 address, prefix and gateway; network inspect EnableIPv6 and both subnets", () => {
    ok(["network", "create", "--ipv6", "--subnet", "10.100.0.0/24", "--subnet", "fd00:100::/64", "--gateway", "fd00:100::fe", "d100"]);
    server("s100", ["--network", "d100", "--ip6", "fd00:100::20"]);
    const c = JSON.parse(ok(["inspect", "s100"]))[0].NetworkSettings;
    expect([c.GlobalIPv6Address, c.GlobalIPv6PrefixLen, c.IPv6Gateway]).toEqual(["fd00:100::20", 64, "fd00:100::fe"]);
    expect(c.Networks.d100).toMatchObject({ GlobalIPv6Address: "fd00:100::20", GlobalIPv6PrefixLen: 64, IPv6Gateway: "fd00:100::fe", Gateway: "10.100.0.1" });
    const n = JSON.parse(ok(["network", "inspect", "d100"]))[0];
    expect(n.EnableIPv6).toBe(true);
    expect(n.IPAM.Config).toEqual([{ Subnet: "10.100.0.0/24", Gateway: "10.100.0.1" }, { Subnet: "fd00:100::/64", Gateway: "fd00:100::fe" }]);
    expect(JSON.parse(ok(["network", "inspect", "bridge"]))[0].EnableIPv6).toBe(false);
    expect(JSON.parse(ok(["network", "inspect", "bridge"]))[0].IPAM.Config).toHaveLength(1);
    server("s100b", []);
    const b = JSON.parse(ok(["inspect", "s100b"]))[0].NetworkSettings;
    expect([b.GlobalIPv6Address, b.GlobalIPv6PrefixLen, b.IPv6Gateway]).toEqual(["", 0, ""]);
  });

  test("bad input gets one clear line and leaves nothing made", () => {
    ok(["network", "create", "--ipv6", "--subnet", "fd00:101::/64", "d101"]);
    const before = ipj<any[]>(["link", "show", "type", "bridge"]).length;
    const cases: [string[], RegExp][] = [
      [["network", "create", "--ipv6", "--subnet", "fd00:102::/127", "x1"], /--subnet fd00:102::\/127: an IPv6 subnet needs a prefix length from 16 to 124/],
      [["network", "create", "--ipv6", "--subnet", "fd00:102::1/128", "x2"], /--subnet fd00:102::1\/128: an IPv6 subnet needs a prefix length/],
      [["network", "create", "--ipv6", "--subnet", "fd00:101:0:0:8000::/65", "x3"], /subnet fd00:101:0:0:8000::\/65 overlaps network d101 \(fd00:101::\/64\)/],
      [["network", "create", "--subnet", "fd00:103::/64", "x4"], /--subnet fd00:103::\/64 is an IPv6 subnet, which needs --ipv6/],
      [["network", "create", "--ipv6", "--subnet", "fd00:103::/64", "--subnet", "fd00:104::/64", "x5"], /at most one IPv4 and one IPv6 --subnet/],
      [["network", "create", "--ipv6", "--gateway", "fd00:105::1", "x6"], /--gateway fd00:105::1 needs an IPv6 --subnet/],
      [["network", "create", "--ipv6", "--subnet", "fd00:106::/64", "--gateway", "fd00:107::1", "x7"], /--gateway fd00:107::1 is not a usable address of fd00:106::\/64/],
      [["network", "create", "--ipv6", "--subnet", "fe80::/64", "x8"], /overlaps fe80::\/10, the link-local range/],
      // The kernel turns IPv6 off on a link below 1280; the gateway's address was refused as EINVAL.
      [["network", "create", "--ipv6", "-o", "com.docker.network.driver.mtu=1200", "x9"], /invalid -o com\.docker\.network\.driver\.mtu="1200": a network with IPv6 needs an MTU of at least 1280/],
      [["run", "--rm", "--network", "d101", "--ip6", "10.1.0.5", "--", "true"], /invalid --ip6 "10\.1\.0\.5": give an IPv6 address/],
      [["run", "--rm", "--network", "d101", "--ip", "fd00:101::5", "--", "true"], /invalid --ip "fd00:101::5": give an IPv4 address/],
      [["run", "--rm", "--network", "d101", "--ip6", "fd00:999::5", "--", "true"], /--ip6 fd00:999::5 is outside network d101/],
      [["run", "--rm", "--network", "bridge", "--ip6", "fd00:101::5", "--", "true"], /--ip6 fd00:101::5: network bridge has no IPv6 subnet/],
    ];
    for (const [args, want] of cases) {
      const r = tsnet(args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(want);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(userNetworks()).toEqual(["d101"]);
    expect(ipj<any[]>(["link", "show", "type", "bridge"]).length).toBe(before);
    expect(sh(["ls", "/run/netns"]).stdout.split("\n").filter((n) => n.startsWith("tsnet-"))).toEqual([]);
  });

  test("CNI: ipam.ranges with an IPv4 and an IPv6 range set returns both addresses and routes", () => {
    must("ip netns add dscni");
    try {
      const conf = {
        cniVersion: "1.0.0", name: "cni6", type: "tsnet",
        ipam: { ranges: [[{ subnet: "10.102.0.0/24" }], [{ subnet: "fd00:102::/64", gateway: "fd00:102::1" }]], routes: [{ dst: "2001:db8:9::/48" }] },
      };
      const call = (cmd: string, prevResult?: unknown) => cni(cmd, "dscni", conf, prevResult);
      const add = call("ADD");
      expect(add.stderr.toString()).toBe("");
      const res = JSON.parse(add.stdout.toString());
      expect(res.ips.map((i: any) => [i.address, i.gateway])).toEqual([["10.102.0.2/24", "10.102.0.1"], ["fd00:102::2/64", "fd00:102::1"]]);
      expect(res.routes).toEqual([{ dst: "0.0.0.0/0", gw: "10.102.0.1" }, { dst: "::/0", gw: "fd00:102::1" }, { dst: "2001:db8:9::/48", gw: "fd00:102::1" }]);
      expect(v6Addresses("dscni")).toEqual(["fd00:102::2/64"]);
      expect(ipj<any[]>(["-6", "route", "show", "2001:db8:9::/48"], "dscni")[0].gateway).toBe("fd00:102::1");
      expect(JSON.parse(ok(["network", "inspect", "cni6"]))[0].EnableIPv6).toBe(true);
      const check = call("CHECK", res);
      expect(check.stderr.toString()).toBe("");
      expect(check.exitCode).toBe(0);
      expect(call("DEL", res).exitCode).toBe(0);
    } finally {
      sh(["ip", "netns", "del", "dscni"]);
    }
  });

  test("enable_ip_masquerade=false: containers reach a LAN host that routes their prefixes back, from their own addresses, both families", () => {
    ok(["network", "create", "--ipv6", "--subnet", "10.104.0.0/24", "--subnet", "fd00:104::/64", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "nomasq"]);
    ok(["run", "-d", "--name", "nm", "--network", "nomasq", "--ip", "10.104.0.9", "--ip6", "fd00:104::9", "--", "sleep", "60"]);
    // The answers come back to the container's own address: the direct-access guard lets them
    // through (they belong to a connection the container opened) and still drops new ones.
    expect(askPeer(LAN6, undefined, "nomasq")).toMatch(/^fd00:104::[0-9a-f]+$/);
    expect(askPeer(LAN4, undefined, "nomasq")).toMatch(/^::ffff:10\.104\.0\.\d+$/);
    const py = `import socket
try:
    socket.create_connection(("fd00:104::9", 22), timeout=2); print("connected")
except ConnectionRefusedError: print("refused")
except OSError: print("timeout")`;
    expect(sh(["ip", "netns", "exec", "dslan", "python3", "-c", py]).stdout.trim()).toBe("timeout");
    expect(ruleset()).toMatch(/ip6 daddr fd00:104::\/64 iifname != @bridges fib daddr type != local ct state ! established,related counter packets [1-9]/);
  });

  test("ipMasq false (a CNI network's) turns NAT66 off with IPv4 masquerade", () => {
    must("ip netns add dscni2");
    try {
      const conf = { cniVersion: "1.0.0", name: "cni7", type: "tsnet", ipMasq: false, ipam: { ranges: [[{ subnet: "10.103.0.0/24" }], [{ subnet: "fd00:103::/64" }]] } };
      const add = cni("ADD", "dscni2", conf);
      expect(add.stderr.toString()).toBe("");
      expect(ruleset()).not.toContain("fd00:103::/64 oifname !=");
      expect(ruleset()).toContain("ip6 daddr fd00:103::/64 iifname != @bridges");
      // Unmasqueraded, the world gets the container's own address and has no route back to it.
      expect(askPeer(WORLD6, undefined, "cni7")).toBe("");
      expect(cni("DEL", "dscni2", conf, JSON.parse(add.stdout.toString())).exitCode).toBe(0);
    } finally {
      sh(["ip", "netns", "del", "dscni2"]);
    }
  });
});
