// Published ports as the "Why" has them: held ports visible as tsnet's listening sockets
// (ss, fuser) that never accept what DNAT should have taken; -p [::1]:PORT:CTR; a dual-stack
// network publishing on 0.0.0.0 and [::] (the host's [::1] and 127.0.0.1 both, a LAN neighbour
// over IPv6 through nf_tables' ip6 DNAT); tsnet port listing both; -P with --expose; ps's
// publish= and expose= filters; host_binding_ipv4. Witnesses: ss, fuser, nft -j, curl.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { curl, useNeighbour, sh, startContainer, tsnet, veths, waitFor } from "./helpers.ts";

const site = mkdtempSync("/tmp/tsnet-ports-");
chmodSync(site, 0o755);
writeFileSync(`${site}/index.html`, "hello over both families\n");
// busybox httpd on [::]:80 takes IPv4 too (IPV6_V6ONLY off).
const HTTPD = ["busybox", "httpd", "-f", "-p", "[::]:80", "-h", site];
const PAGE = "hello over both families\n";
// 24 MiB of text (sh() reads stdout as text): lines numbered, so a lost or repeated piece shows.
const BIG = Array.from({ length: 1 << 20 }, (_, i) => `${String(i).padStart(22, "0")}\n`).join("");
writeFileSync(`${site}/big`, BIG);
const BIG_SHA = new Bun.CryptoHasher("sha256").update(BIG).digest("hex");

useNeighbour();
beforeAll(() => {
  // The neighbour over IPv6 too (documentation prefix, only inside namespaces made here).
  for (const s of ["ip addr add 2001:db8:1::1/64 dev nb0 nodad", "ip -n nb addr add 2001:db8:1::2/64 dev eth0 nodad", "ip -n nb -6 route add default via 2001:db8:1::1"]) {
    const r = sh(s.split(" "));
    if (r.code !== 0) throw new Error(`${s}: ${r.stderr}`);
  }
});
afterAll(() => {
  rmSync(site, { recursive: true, force: true });
});

async function serving(url: string, netns?: string): Promise<string> {
  return await waitFor(`${url} to answer`, () => {
    const r = curl(url, netns);
    return r.code === 0 && r.stdout;
  });
}

/** `ss -Hltnp` lines of a port: [local address, process]. */
function listeners(port: number): { local: string; recvQ: number; users: string }[] {
  const out = sh(["ss", "-Hltnp", `sport = :${port}`]).stdout.trim();
  return out.split("\n").filter(Boolean).map((l) => {
    const c = l.trim().split(/\s+/);
    return { recvQ: Number(c[1]), local: c[3]!, users: c.slice(5).join(" ") };
  });
}

/** A TCP connect with a timeout, from python: "connected", "refused" or "timeout". */
function connect(host: string, port: number): string {
  const py = `import socket
s = socket.socket(socket.AF_INET6 if ":" in "${host}" else socket.AF_INET); s.settimeout(2)
try:
    s.connect(("${host}", ${port})); print("connected")
except ConnectionRefusedError: print("refused")
except (socket.timeout, TimeoutError): print("timeout")`;
  return sh(["python3", "-c", py]).stdout.trim();
}

describe("held ports are listening sockets of tsnet's", () => {
  test("ss -ltnp and fuser name tsnet on 0.0.0.0:8080; with DNAT gone (nft flush ruleset) it accepts nothing", async () => {
    const c = await startContainer("held", ["-p", "8080:80"], HTTPD);
    try {
      expect(await serving("http://127.0.0.1:8080/")).toBe(PAGE);
      const l = listeners(8080);
      expect(l.map((x) => x.local)).toEqual(["0.0.0.0:8080"]);
      expect(l[0]!.users).toContain(`("tsnet",pid=${c.proc.pid},`);
      expect(sh(["fuser", "8080/tcp"]).stdout.trim().split(/\s+/)).toContain(String(c.proc.pid));
      // The manager heals a flushed table at once: stopped, it cannot, and the port's socket is
      // what a connection meets.
      process.kill(c.proc.pid, "SIGSTOP");
      try {
        expect(sh(["nft", "flush", "ruleset"]).code).toBe(0);
        // Its SYN is dropped by the socket's filter: nobody answers, not even with a refusal.
        expect(connect("127.0.0.1", 8080)).toBe("timeout");
        // ...and nothing waits in its accept queue.
        expect(listeners(8080)[0]!.recvQ).toBe(0);
      } finally {
        process.kill(c.proc.pid, "SIGCONT");
      }
      expect(await serving("http://127.0.0.1:8080/")).toBe(PAGE);
    } finally {
      await c.stop();
    }
    expect(listeners(8080)).toEqual([]);
  });
});

describe("-p [::1]:HOST:CTR", () => {
  test("is accepted on an IPv4 network, answers on the host's [::1], not from a LAN neighbour", async () => {
    const c = await startContainer("lo6", ["-p", "[::1]:8081:80"], HTTPD);
    try {
      expect(await serving("http://[::1]:8081/")).toBe(PAGE);
      const l = listeners(8081);
      expect(l.map((x) => x.local)).toEqual(["[::1]:8081"]);
      expect(l[0]!.users).toContain(`("tsnet",pid=${c.proc.pid},`);
      expect(tsnet(["port", "lo6"]).stdout).toBe("80/tcp -> [::1]:8081\n");
      // A body far larger than what the relay buffers, to a reader slower than the container:
      // whole, in order (the relay stops reading the container while the client is behind).
      const big = sh(["curl", "-sS", "--max-time", "20", "--limit-rate", "8M", "-o", "-", "http://[::1]:8081/big"]);
      expect(big.code).toBe(0);
      expect(new Bun.CryptoHasher("sha256").update(big.stdout).digest("hex")).toBe(BIG_SHA);
      expect(tsnet(["ps", "--format", "{{.Ports}}", "--filter", "name=lo6"]).stdout).toBe("[::1]:8081->80/tcp\n");
      // Not on the host's other addresses, and so not from the neighbour, over either family.
      expect(curl("http://[2001:db8:1::1]:8081/", "nb").code).not.toBe(0);
      expect(curl("http://192.0.2.1:8081/", "nb").code).not.toBe(0);
      expect(curl("http://127.0.0.1:8081/").code).not.toBe(0);
    } finally {
      await c.stop();
    }
    expect(listeners(8081)).toEqual([]);
  });

  test("run -d: the supervisor holds the ports and relays [::1] for its containers; rm -f lets go of them", async () => {
    expect(tsnet(["run", "-d", "--name", "lo6d", "-p", "[::1]:8083:80", "-p", "8084:80", "--", ...HTTPD]).code).toBe(0);
    try {
      expect(await serving("http://[::1]:8083/")).toBe(PAGE);
      expect(await serving("http://127.0.0.1:8084/")).toBe(PAGE);
      const supervisor = /pid=(\d+)/.exec(listeners(8083)[0]!.users)?.[1];
      expect(supervisor).toBeDefined();
      expect(readFileSync(`/proc/${supervisor}/cmdline`, "utf8").split("\0")).toContain("_supervise");
      expect(listeners(8084)[0]!.users).toContain(`pid=${supervisor},`);
    } finally {
      tsnet(["rm", "-f", "lo6d"]);
    }
    expect(listeners(8083)).toEqual([]);
    expect(listeners(8084)).toEqual([]);
  });

  test("bad uses are one line, and nothing is made", () => {
    for (const [args, why] of [
      [["-p", "[::1]:8081:80/udp"], /UDP cannot be published on \[::1\]/],
      [["-p", "[2001:db8:1::1]:8082:80"], /publishes on an IPv6 address, but network bridge has no IPv6/],
      [["-p", "::1:8081:80"], /an IPv6 address goes in brackets/],
    ] as const) {
      const r = tsnet(["run", "--rm", ...args, "--", "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(r.stderr).toMatch(why);
      expect(veths()).toEqual([]);
    }
  });
});

describe("a dual-stack network", () => {
  test("-p 8080:80 publishes on 0.0.0.0 and [::]: the host's 127.0.0.1 and [::1], a neighbour over IPv6; tsnet port lists both; -P takes one port number on both", async () => {
    expect(tsnet(["network", "create", "--ipv6", "--subnet", "10.91.0.0/24", "--subnet", "fd00:91::/64", "dual"]).code).toBe(0);
    const c = await startContainer("dual", ["--network", "dual", "--ip6", "fd00:91::2", "-p", "8080:80", "-P", "--expose", "9000"], HTTPD);
    try {
      expect(await serving("http://127.0.0.1:8080/")).toBe(PAGE);
      expect(await serving("http://[::1]:8080/")).toBe(PAGE);
      expect(listeners(8080).map((x) => x.local).sort()).toEqual(["0.0.0.0:8080", "[::1]:8080", "[::]:8080"]);
      for (const l of listeners(8080)) expect(l.users).toContain(`("tsnet",pid=${c.proc.pid},`);

      // In the IPv6 map, aimed at the container's IPv6 address.
      const ruleset = JSON.parse(sh(["nft", "-j", "list", "ruleset"]).stdout).nftables;
      const ports6 = ruleset.find((o: any) => o.map?.name === "ports6").map;
      expect(ports6.type).toEqual(["inet_proto", "inet_service"]);
      expect(ports6.map).toBe("ipv6_addr . inet_service");
      const e = ports6.elem.map((x: any) => JSON.stringify(x));
      expect(e.some((x: string) => x.includes(`"tcp",8080`) && x.includes(`"fd00:91::2",80`))).toBe(true);
      // From the neighbour over IPv6 (prerouting), and from the host to its own IPv6 address (output).
      expect(await serving("http://[2001:db8:1::1]:8080/", "nb")).toBe(PAGE);
      expect(curl("http://[2001:db8:1::1]:8080/").stdout).toBe(PAGE);
      expect(curl("http://127.0.0.1:8080/").stdout).toBe(PAGE);
      expect(curl("http://[::1]:8080/").stdout).toBe(PAGE);

      const port = tsnet(["port", "dual"]).stdout.trim().split("\n");
      const chosen = /^9000\/tcp -> 0\.0\.0\.0:(\d+)$/.exec(port.find((l) => l.startsWith("9000/tcp -> 0.0.0.0")) ?? "")?.[1];
      expect(chosen).toBeDefined();
      expect(port).toEqual(["80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080", `9000/tcp -> 0.0.0.0:${chosen}`, `9000/tcp -> [::]:${chosen}`]);
      expect(tsnet(["port", "dual", "80"]).stdout).toBe("0.0.0.0:8080\n[::]:8080\n");
    } finally {
      await c.stop();
      tsnet(["network", "rm", "dual"]);
    }
  });

  test("host_binding_ipv4: a -p without an address publishes IPv4 on that address only", async () => {
    expect(tsnet(["network", "create", "--subnet", "10.92.0.0/24", "-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "hb"]).code).toBe(0);
    const c = await startContainer("hb", ["--network", "hb", "-p", "8086:80"], HTTPD);
    try {
      expect(await serving("http://127.0.0.1:8086/")).toBe(PAGE);
      expect(curl("http://192.0.2.1:8086/", "nb").code).not.toBe(0);
      expect(curl("http://192.0.2.1:8086/").code).not.toBe(0);
      expect(tsnet(["port", "hb"]).stdout).toBe("80/tcp -> 127.0.0.1:8086\n");
      expect(listeners(8086).map((x) => x.local)).toEqual(["127.0.0.1:8086"]);
    } finally {
      await c.stop();
      tsnet(["network", "rm", "hb"]);
    }
  });
});

describe("-P, --expose and ps's filters", () => {
  test("every exposed port gets a free host port; publish= and expose= match container ports and ranges, as Docker's", async () => {
    const pub = tsnet(["run", "-d", "--name", "pub", "-P", "--expose", "80", "--expose", "9000-9001/udp", "--", ...HTTPD]);
    expect(pub.code).toBe(0);
    const exp = tsnet(["run", "-d", "--name", "exp", "--expose", "8080", "--", "sleep", "60"]);
    expect(exp.code).toBe(0);
    try {
      const lines = tsnet(["port", "pub"]).stdout.trim().split("\n");
      expect(lines.map((l) => l.replace(/:\d+$/, ":N"))).toEqual(["80/tcp -> 0.0.0.0:N", "9000/udp -> 0.0.0.0:N", "9001/udp -> 0.0.0.0:N"]);
      const web = Number(lines[0]!.split(":").at(-1));
      expect(web).toBeGreaterThan(1023);
      expect(await serving(`http://127.0.0.1:${web}/`)).toBe(PAGE);

      const names = (...filters: string[]) => {
        const r = tsnet(["ps", "--format", "{{.Names}}", ...filters.flatMap((f) => ["--filter", f])]);
        expect(r.stderr).toBe("");
        return r.stdout.trim().split("\n").filter(Boolean).sort();
      };
      expect(names("publish=80")).toEqual(["pub"]);
      expect(names("publish=80/tcp")).toEqual(["pub"]);
      expect(names("publish=80/udp")).toEqual([]);
      expect(names("publish=9001/udp")).toEqual(["pub"]);
      expect(names("publish=8999-9000/udp")).toEqual(["pub"]);
      expect(names("publish=9000")).toEqual([]);
      expect(names("publish=8080")).toEqual([]);
      expect(names("expose=8080")).toEqual(["exp"]);
      expect(names("expose=80")).toEqual(["pub"]);
      expect(names("expose=1-65535")).toEqual(["exp", "pub"]);
      expect(names("expose=8000-8100/tcp")).toEqual(["exp"]);
      expect(names("expose=8080", "expose=80")).toEqual(["exp", "pub"]);
      expect(tsnet(["ps", "--format", "{{.Ports}}", "--filter", "name=exp"]).stdout).toBe("8080/tcp\n");
      const bad = tsnet(["ps", "--filter", "publish=eighty"]);
      expect(bad.code).toBe(125);
      expect(bad.stderr.trim().split("\n").length).toBe(1);
      expect(bad.stderr).toContain(`invalid --filter publish="eighty": give PORT[-PORT][/tcp|/udp], e.g. --filter publish=8080`);
    } finally {
      tsnet(["rm", "-f", "pub", "exp"]);
    }
  });
});
