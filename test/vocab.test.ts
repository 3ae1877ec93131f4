// Docker's network vocabulary against the kernel: `network create -o` (bridge name, MTU, icc,
// masquerade, host binding, unknown keys), `--ip-range`, `network ls --filter`, and the resolver's
// AAAA answers (NODATA on an IPv4-only network) and IPv6 upstream servers. Seen from outside
// tsnet: ip -j, nft, ping, curl, a DNS client of the test's own inside the container, and a fake
// upstream server in a namespace reached over IPv6 that logs who asked it what.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { curl, ipj, useNeighbour, nginxSite, removeAllContainers, runDetached, sh, tsnet, waitFor, userNetworks, tsnetOk as ok, askedServer, withHostResolvConf } from "./helpers.ts";

const PY = "/usr/bin/python3";
const dir = mkdtempSync("/tmp/tsnet-vocab-");
chmodSync(dir, 0o755);
const site = nginxSite("served\n");

/**
 * A fake DNS server on ADDRESS (IPv4 or IPv6, "%IFNAME" for a link-local one), UDP and TCP:
 * A 192.0.2.66 and AAAA 2001:db8::66 for every name; logs "PROTO PEER NAME QTYPE" per question.
 */
writeFileSync(`${dir}/upstream.py`, `
import socket, struct, sys, threading
addr, log = sys.argv[1], sys.argv[2]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
def answer(q, peer, proto):
    i, labels = 12, []
    while q[i]:
        labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
    qtype = struct.unpack(">H", q[i+1:i+3])[0]; end = i + 5
    with open(log, "a") as f: f.write("%s %s %s %d\\n" % (proto, peer, ".".join(labels).lower(), qtype))
    rr = b""
    if qtype == 1: rr = b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_pton(socket.AF_INET, "192.0.2.66")
    if qtype == 28: rr = b"\\xc0\\x0c" + struct.pack(">HHIH", 28, 1, 60, 16) + socket.inet_pton(socket.AF_INET6, "2001:db8::66")
    return q[:2] + struct.pack(">HHHHH", 0x8180, 1, 1 if rr else 0, 0, 0) + q[12:end] + rr
sa = socket.getaddrinfo(addr, 53, fam, socket.SOCK_DGRAM)[0][4]
u = socket.socket(fam, socket.SOCK_DGRAM); u.bind(sa)
t = socket.socket(fam, socket.SOCK_STREAM); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(sa); t.listen(16)
def serve_tcp():
    while True:
        c, a = t.accept()
        try:
            n = struct.unpack(">H", c.recv(2))[0]; q = b""
            while len(q) < n: q += c.recv(n - len(q))
            r = answer(q, a[0], "tcp"); c.sendall(struct.pack(">H", len(r)) + r)
        except Exception: pass
        c.close()
threading.Thread(target=serve_tcp, daemon=True).start()
print("ready", flush=True)
while True:
    q, a = u.recvfrom(4096)
    try: u.sendto(answer(q, a[0], "udp"), a)
    except Exception: pass
`);

/** A DNS client: asks SERVER for NAME of QTYPE over udp or tcp; prints "RCODE ANCOUNT ADDRESS...". */
writeFileSync(`${dir}/ask.py`, `
import random, socket, struct, sys
server, name, qtype, proto = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
i = random.randrange(65536)
q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\\0" + struct.pack(">HH", qtype, 1)
if proto == "tcp":
    s = socket.create_connection((server, 53), timeout=5); s.sendall(struct.pack(">H", len(q)) + q)
    n = struct.unpack(">H", s.recv(2))[0]; r = b""
    while len(r) < n: r += s.recv(n - len(r))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); s.sendto(q, (server, 53)); r = s.recv(4096)
an = struct.unpack(">H", r[6:8])[0]
at, out = len(q), []
for _ in range(an):
    t, _c, _ttl, ln = struct.unpack(">HHIH", r[at+2:at+12]); d = r[at+12:at+12+ln]; at += 12 + ln
    out.append(socket.inet_ntop(socket.AF_INET if t == 1 else socket.AF_INET6, d) if t in (1, 28) else d.hex())
print(" ".join([str(r[3] & 15), str(an)] + out))
`);

useNeighbour();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(site.dir, { recursive: true, force: true });
});
afterEach(() => {
  removeAllContainers();
  for (const n of userNetworks()) tsnet(["network", "rm", n]);
});

const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
const link = (name: string, netns?: string) => ipj<any[]>(["-d", "link", "show", "dev", name], netns)[0];
const v4 = (netns: string) => ipj<any[]>(["-4", "addr", "show", "eth0"], netns)[0].addr_info[0].local as string;
const inspect = (net: string) => JSON.parse(ok(["network", "inspect", net]))[0];
const linkExists = (name: string) => sh(["ip", "link", "show", "dev", name]).code === 0;

/** ask.py inside a container's namespace, at its resolver 127.0.0.11: "RCODE ANCOUNT ADDRESS...". */
function ask(container: string, name: string, qtype: 1 | 28, proto: "udp" | "tcp" = "udp"): string {
  const r = sh(["ip", "netns", "exec", `tsnet-${container}`, PY, `${dir}/ask.py`, "127.0.0.11", name, String(qtype), proto]);
  if (r.code !== 0) throw new Error(`ask.py in ${container} failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe("network create -o", () => {
  test("bridge.name, driver.mtu (bridge and both veth ends), unknown keys kept: seen by ip and in inspect's Options", () => {
    ok(["network", "create", "--label", "team=web",
      "-o", "com.docker.network.bridge.name=br-web", "-o", "com.docker.network.driver.mtu=1400",
      "--opt", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "-o", "vendor.unknown=kept", "web"]);
    const br = link("br-web");
    expect(br.linkinfo.info_kind).toBe("bridge");
    expect(br.mtu).toBe(1400);
    expect(ipj<any[]>(["-4", "addr", "show", "dev", "br-web"])[0].addr_info[0].local).toMatch(/^10\.78\.\d+\.1$/);
    runDetached(["--name", "small", "--network", "web", "--", "sleep", "60"]);
    expect(link("eth0", "tsnet-small").mtu).toBe(1400);
    const hostEnd = ipj<any[]>(["link", "show", "master", "br-web"]);
    expect(hostEnd.map((l) => l.mtu)).toEqual([1400]);
    expect(link("br-web").mtu).toBe(1400);
    expect(inspect("web").Options).toEqual({
      "com.docker.network.bridge.name": "br-web",
      "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
      "com.docker.network.driver.mtu": "1400",
      "vendor.unknown": "kept",
    });
    tsnet(["rm", "-f", "small"]);
    ok(["network", "rm", "web"]);
    // tsnet made it, so it goes with the network.
    expect(linkExists("br-web")).toBe(false);
  });

  test("a bridge the host already has is used and left when the network goes: only its gateway address is taken back", () => {
    sh(["ip", "link", "add", "br-host", "type", "bridge"]);
    sh(["ip", "link", "set", "br-host", "up"]);
    try {
      ok(["network", "create", "--subnet", "10.94.0.0/24", "-o", "com.docker.network.bridge.name=br-host", "hostbr"]);
      expect(ipj<any[]>(["-4", "addr", "show", "dev", "br-host"])[0].addr_info.map((a: any) => a.local)).toEqual(["10.94.0.1"]);
      expect(tsnet(["run", "--rm", "--network", "hostbr", "--", "ping", "-c3", "-i0.2", "-W2", "10.94.0.1"]).code).toBe(0);
      ok(["network", "rm", "hostbr"]);
      expect(linkExists("br-host")).toBe(true);
      expect(ipj<any[]>(["-4", "addr", "show", "dev", "br-host"])[0]?.addr_info ?? []).toEqual([]);
      expect(readFileSync("/proc/sys/net/ipv4/conf/br-host/route_localnet", "utf8").trim()).toBe("0");
    } finally {
      sh(["ip", "link", "del", "br-host"]);
    }
  });

  test("enable_icc=false: containers of the network cannot reach each other, but reach the gateway and a published port", async () => {
    ok(["network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "closed"]);
    ok(["network", "create", "open"]);
    runDetached(["--name", "c1", "--network", "closed", "-p", "8484:80", "--", ...site.command]);
    const c1 = v4("tsnet-c1");
    const bridge = inspect("closed").Options["com.docker.network.bridge.name"];
    const gw = inspect("closed").IPAM.Config[0].Gateway;
    // br_netfilter hands bridged traffic to the forward chain, as Docker has it for icc=false.
    expect(readFileSync("/proc/sys/net/bridge/bridge-nf-call-iptables", "utf8").trim()).toBe("1");
    const dropped = () => {
      const m = new RegExp(`iifname "${bridge}" oifname "${bridge}" counter packets (\\d+) bytes \\d+ drop comment "tsnet: closed: containers cannot reach each other \\(enable_icc=false\\)"`).exec(ruleset());
      if (!m) throw new Error("no enable_icc=false rule for the bridge in tsnet's table");
      return Number(m[1]);
    };
    const before = dropped();
    await waitFor("nginx", () => curl("http://127.0.0.1:8484/").code === 0);
    const fromNeighbour = tsnet(["run", "--rm", "--network", "closed", "--", "sh", "-c",
      `ping -c1 -W1 ${c1} >/dev/null && echo direct-ping; curl -s --max-time 2 http://${c1}/ && echo direct-http; ping -c1 -W1 ${gw} >/dev/null && echo gateway; curl -s --max-time 2 http://192.0.2.1:8484/`]);
    expect(fromNeighbour.stdout).toBe("gateway\nserved\n");
    expect(dropped()).toBeGreaterThan(before);
    // The drop is part of tsnet's table: a flushed ruleset comes back with it (the supervisor's watch).
    sh(["nft", "flush", "ruleset"]);
    await waitFor("the enable_icc=false drop restored", () => ruleset().includes("tsnet: closed: containers cannot reach each other"));
    expect(tsnet(["run", "--rm", "--network", "closed", "--", "ping", "-c1", "-W1", c1]).code).not.toBe(0);
    // On a network with icc (the default) the same reaches.
    runDetached(["--name", "o2", "--network", "open", "--", "sleep", "60"]);
    expect(tsnet(["run", "--rm", "--network", "open", "--", "ping", "-c1", "-W1", v4("tsnet-o2")]).code).toBe(0);
    expect(ruleset()).not.toContain("tsnet: open: containers cannot reach");
  });

  test("enable_ip_masquerade=false: no masquerade for the network, which other networks keep", () => {
    ok(["network", "create", "--subnet", "10.95.0.0/24", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "nomasq"]);
    ok(["network", "create", "--subnet", "10.96.0.0/24", "masq"]);
    const rules = ruleset();
    expect(rules).not.toMatch(/ip saddr 10\.95\.0\.0\/24 oifname != "[^"]+" masquerade/);
    expect(rules).toMatch(/ip saddr 10\.96\.0\.0\/24 oifname != "[^"]+" masquerade/);
    expect(inspect("nomasq").Options["com.docker.network.bridge.enable_ip_masquerade"]).toBe("false");
  });
});

describe("network create --ip-range", () => {
  test("containers lease only inside the range; --ip outside it but inside the subnet is taken, as Docker takes it", () => {
    ok(["network", "create", "--subnet", "10.93.0.0/24", "--ip-range", "10.93.0.64/30", "ranged"]);
    expect(inspect("ranged").IPAM.Config).toEqual([{ Subnet: "10.93.0.0/24", IPRange: "10.93.0.64/30", Gateway: "10.93.0.1" }]);
    const got: string[] = [];
    for (const n of ["r1", "r2", "r3", "r4"]) {
      runDetached(["--name", n, "--network", "ranged", "--", "sleep", "60"]);
      got.push(v4(`tsnet-${n}`));
    }
    expect(got.sort()).toEqual(["10.93.0.64", "10.93.0.65", "10.93.0.66", "10.93.0.67"]);
    // The range is full, though the subnet is not.
    const full = tsnet(["run", "--rm", "--network", "ranged", "--", "true"]);
    expect(full.code).not.toBe(0);
    expect(full.stderr).toContain("network ranged has no free address left");
    runDetached(["--name", "fixed", "--network", "ranged", "--ip", "10.93.0.5", "--", "sleep", "60"]);
    expect(v4("tsnet-fixed")).toBe("10.93.0.5");
  });
});

describe("bad input: one line, exit 125, nothing made", () => {
  const cases: [string[], string][] = [
    [["--ip-range", "10.97.0.0/25"], "tsnet: --ip-range 10.97.0.0/25 needs --subnet: give the subnet the range lies in\n"],
    [["--subnet", "10.97.0.0/24", "--ip-range", "10.98.0.0/25"], "tsnet: --ip-range 10.98.0.0/25 is not inside 10.97.0.0/24: give a range inside the subnet\n"],
    [["--subnet", "10.97.0.0/24", "--ip-range", "10.97.0.0/32"], "tsnet: --ip-range 10.97.0.0/32 leaves no address for containers in 10.97.0.0/24: give a larger range\n"],
    [["-o", "com.docker.network.driver.mtu=abc"], 'tsnet: invalid -o com.docker.network.driver.mtu="abc": give an MTU from 68 to 65535\n'],
    [["-o", "com.docker.network.bridge.enable_icc=no"], 'tsnet: invalid -o com.docker.network.bridge.enable_icc="no": give true or false\n'],
    [["-o", "com.docker.network.bridge.host_binding_ipv4=fd00::1"], 'tsnet: invalid -o com.docker.network.bridge.host_binding_ipv4="fd00::1": give an IPv4 address of the host, e.g. 127.0.0.1\n'],
    [["-o", "com.docker.network.bridge.name=tsnet0"], "tsnet: bridge tsnet0 belongs to network bridge: give network bad another bridge name\n"],
  ];
  for (const [args, message] of cases) {
    test(args.join(" "), () => {
      const before = ipj<any[]>(["link", "show"]).map((l) => l.ifname).sort();
      const r = tsnet(["network", "create", ...args, "bad"]);
      expect(r.stderr).toBe(message);
      expect(r.code).toBe(125);
      expect(userNetworks()).toEqual([]);
      expect(ipj<any[]>(["link", "show"]).map((l) => l.ifname).sort()).toEqual(before);
    });
  }

  test("a bridge name held by a link that is not a bridge: refused, and the record undone", () => {
    sh(["ip", "link", "add", "notabridge", "type", "veth", "peer", "name", "notabridge1"]);
    try {
      const r = tsnet(["network", "create", "-o", "com.docker.network.bridge.name=notabridge", "bad"]);
      expect(r.stderr).toBe("tsnet: cannot use notabridge as a bridge: a link of that name exists and is a veth; give the network another bridge name\n");
      expect(r.code).not.toBe(0);
      expect(userNetworks()).toEqual([]);
      expect(link("notabridge").linkinfo.info_kind).toBe("veth");
    } finally {
      sh(["ip", "link", "del", "notabridge"]);
    }
  });
});

describe("network ls --filter", () => {
  test("dangling, type, label, name and driver, with Docker's rules across keys", () => {
    ok(["network", "create", "--label", "team=web", "used"]);
    ok(["network", "create", "--label", "team=web", "--label", "tier=db", "idle"]);
    ok(["network", "create", "spare"]);
    runDetached(["--name", "holder", "--network", "used", "--", "sleep", "60"]);
    const names = (...f: string[]) => ok(["network", "ls", "--format", "{{.Name}}", ...f.flatMap((x) => ["--filter", x])]).trim().split("\n").filter(Boolean).sort();
    expect(names("dangling=true")).toEqual(["idle", "spare"]);
    expect(names("dangling=false")).toEqual(["bridge", "host", "none", "used"]);
    expect(names("type=custom")).toEqual(["idle", "spare", "used"]);
    expect(names("type=builtin")).toEqual(["bridge", "host", "none"]);
    expect(names("label=team=web")).toEqual(["idle", "used"]);
    expect(names("label=team=web", "label=tier")).toEqual(["idle"]);
    expect(names("name=^s", "name=^u")).toEqual(["spare", "used"]);
    expect(names("driver=host")).toEqual(["host"]);
    expect(names("type=custom", "dangling=true", "label=team")).toEqual(["idle"]);
    const id = JSON.parse(ok(["network", "inspect", "spare"]))[0].Id as string;
    expect(ok(["network", "ls", "-q", "-f", `id=${id.slice(0, 10)}`])).toBe(`${id.slice(0, 12)}\n`);
    const bad = tsnet(["network", "ls", "--filter", "danglng=true"]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toBe('tsnet: invalid --filter "danglng=true": did you mean "dangling"? tsnet network ls filters by dangling, driver, id, label, name, scope, type (e.g. --filter type=custom)\n');
  });
});

describe("the resolver and IPv6", () => {
  /** The fake upstream on ADDRESS inside namespace nb6, reached from the host over IPv6. */
  async function upstream(address: string): Promise<{ asked(): string[]; stop(): Promise<void> }> {
    const log = `${dir}/asked-${Date.now()}`;
    writeFileSync(log, "");
    return askedServer(["ip", "netns", "exec", "nb6", PY, `${dir}/upstream.py`, address, log], log, "the fake upstream");
  }

  /** Namespace nb6 behind a veth: host fd00:53::1/64, nb6 fd00:53::2/64; fixed MACs, so fixed link-local addresses. */
  function makeV6Neighbour(): () => void {
    const steps = [
      "ip netns add nb6",
      "ip link add nb6h address 02:00:00:00:53:01 type veth peer name eth0 address 02:00:00:00:53:02 netns nb6",
      "ip addr add fd00:53::1/64 dev nb6h nodad",
      "ip link set nb6h up",
      "ip -n nb6 link set lo up",
      "ip -n nb6 addr add fd00:53::2/64 dev eth0 nodad",
      "ip -n nb6 link set eth0 up",
    ];
    for (const s of steps) {
      const r = sh(s.split(" "));
      if (r.code !== 0) throw new Error(`${s}: ${r.stderr}`);
    }
    return () => {
      sh(["ip", "link", "del", "nb6h"]);
      sh(["ip", "netns", "del", "nb6"]);
    };
  }

  test("AAAA for a container on an IPv4-only network is NODATA (NOERROR, no answer), not NXDOMAIN, and is not forwarded", async () => {
    const removeV6 = makeV6Neighbour();
    const up = await upstream("fd00:53::2");
    try {
      ok(["network", "create", "--subnet", "10.99.0.0/24", "plain"]);
      runDetached(["--name", "target", "--network", "plain", "--network-alias", "tgt", "--", "sleep", "60"]);
      runDetached(["--name", "asker", "--network", "plain", "--dns", "fd00:53::2", "--", "sleep", "60"]);
      expect(ask("asker", "target", 28)).toBe("0 0");
      expect(ask("asker", "tgt.plain", 28)).toBe("0 0");
      expect(ask("asker", "target", 28, "tcp")).toBe("0 0");
      expect(ask("asker", "target", 1)).toBe(`0 1 ${v4("tsnet-target")}`);
      expect(up.asked().filter((l) => l.includes("target") || l.includes("tgt"))).toEqual([]);
      // glibc takes NODATA as "no IPv6 address" and goes on with the IPv4 one.
      const ahosts = tsnet(["exec", "asker", "getent", "ahosts", "target"]);
      expect(ahosts.stdout.split("\n")[0]).toStartWith(v4("tsnet-target"));
    } finally {
      await up.stop();
      removeV6();
    }
  });

  test("an IPv6 lease beside the IPv4 one (as a dual-stack network takes them) answers AAAA, and PTR in ip6.arpa", () => {
    ok(["network", "create", "--subnet", "10.99.0.0/24", "duo"]);
    runDetached(["--name", "web", "--network", "duo", "--network-alias", "www", "--", "sleep", "60"]);
    const id = inspect("duo").Id as string;
    const rec = JSON.parse(ok(["inspect", "web"]))[0];
    // Written by hand where the lease allocator writes an address's owner: the same names as the IPv4 lease's.
    const lease = `/run/tsnet/networks/${id}/leases/fd00:99::5`;
    const v4lease = JSON.parse(readFileSync(`/run/tsnet/networks/${id}/leases/${v4("tsnet-web")}`, "utf8"));
    expect(v4lease.names).toEqual(["web", rec.Id.slice(0, 12), "www"]);
    writeFileSync(lease, JSON.stringify(v4lease));
    try {
      runDetached(["--name", "asker", "--network", "duo", "--", "sleep", "60"]);
      expect(ask("asker", "web", 28)).toBe("0 1 fd00:99::5");
      expect(ask("asker", "www.duo", 28, "tcp")).toBe("0 1 fd00:99::5");
      expect(ask("asker", "web", 1)).toBe(`0 1 ${v4("tsnet-web")}`);
      // getent resolves the PTR through glibc: the name is the container's on its network.
      const ptr = tsnet(["exec", "asker", "getent", "hosts", "fd00:99::5"]);
      expect(ptr.stdout).toBe("fd00:99::5      web.duo\n");
    } finally {
      rmSync(lease, { force: true });
    }
  });

  test("an IPv6 upstream (--dns, the host's resolv.conf, a scoped link-local one) answers over UDP and TCP, asked from the host's IPv6 address", async () => {
    const removeV6 = makeV6Neighbour();
    const up = await upstream("fd00:53::2");
    try {
      runDetached(["--name", "viadns", "--dns", "fd00:53::2", "--", "sleep", "60"]);
      expect(ask("viadns", "a.example.test", 1)).toBe("0 1 192.0.2.66");
      expect(ask("viadns", "b.example.test", 28)).toBe("0 1 2001:db8::66");
      expect(ask("viadns", "c.example.test", 28, "tcp")).toBe("0 1 2001:db8::66");
      await withHostResolvConf("nameserver fd00:53::2\n", () => {
        expect(tsnet(["run", "--rm", "--", "getent", "ahostsv4", "d.example.test"]).stdout).toStartWith("192.0.2.66");
      });
      expect(up.asked()).toEqual([
        "udp fd00:53::1 a.example.test 1",
        "udp fd00:53::1 b.example.test 28",
        "tcp fd00:53::1 c.example.test 28",
        "udp fd00:53::1 d.example.test 1",
      ]);
    } finally {
      await up.stop();
    }
    // A link-local server names its link (fe80::...%IFNAME), as resolv.conf allows.
    await waitFor("nb6's link-local address", () => ipj<any[]>(["-6", "addr", "show", "dev", "eth0", "scope", "link"], "nb6")[0]?.addr_info?.some((a: any) => a.local === "fe80::ff:fe00:5302" && !a.tentative));
    const ll = await upstream("fe80::ff:fe00:5302%eth0");
    try {
      await withHostResolvConf("nameserver fe80::ff:fe00:5302%nb6h\n", () => {
        runDetached(["--name", "vialink", "--", "sleep", "60"]);
        expect(ask("vialink", "e.example.test", 1)).toBe("0 1 192.0.2.66");
        expect(ask("vialink", "f.example.test", 1, "tcp")).toBe("0 1 192.0.2.66");
      });
      // From whichever of the host's addresses on that link the kernel picks.
      expect(ll.asked().map((l) => l.split(" ").filter((_, i) => i !== 1).join(" "))).toEqual(["udp e.example.test 1", "tcp f.example.test 1"]);
    } finally {
      await ll.stop();
      removeV6();
    }
  });
});
