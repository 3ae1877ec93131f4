// A dual-stack test topology inside the throwaway host (test/sandbox.sh): the sandbox's own
// namespace is "the host"; a LAN neighbour and a far "world" host are namespaces of the test's
// own, each joined to the host by a veth, with IPv4 and IPv6 addresses and routes both ways.
//
//   lan (ns "lan")  eth0 192.168.77.2/24 fd00:77::2/64  --  lan0 192.168.77.1 fd00:77::1    host
//   world (ns "world") eth0 198.51.100.2/24 2001:db8:100::2/64  --  wan0 198.51.100.1 2001:db8:100::1
//
// Both neighbours route everything else through the host (default routes, both families), so a
// container's packet that leaves unmasqueraded still gets its answer back and the world's log
// shows the container's own address: a test then fails by what it saw, not by a timeout.
// Forwarding on the host is left as it is: whether tsnet turns it on for each family is for the
// tests to see (`setForwarding` is there for the harness's own test).
//
// The addresses are private (RFC 1918, ULA) or documentation ranges (TEST-NET-2, 2001:db8::/32),
// only inside namespaces the tests made, and clear of tsnet's pools (10.77.0.0/16, 10.78.0.0/15,
// fd00:7473::/48) and of test/helpers.ts's neighbour (192.0.2.0/24).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { ipj, sh, waitFor, type Result } from "./helpers.ts";

export const HOST = {
  lan4: "192.168.77.1",
  lan6: "fd00:77::1",
  wan4: "198.51.100.1",
  wan6: "2001:db8:100::1",
} as const;
export const LAN = { ns: "lan", link: "lan0", v4: "192.168.77.2", v6: "fd00:77::2", prefix4: "192.168.77.0/24", prefix6: "fd00:77::/64" } as const;
export const WORLD = { ns: "world", link: "wan0", v4: "198.51.100.2", v6: "2001:db8:100::2", prefix4: "198.51.100.0/24", prefix6: "2001:db8:100::/64" } as const;

/** URL host part: an IPv6 address in brackets. */
export const urlHost = (addr: string) => (addr.includes(":") ? `[${addr}]` : addr);

function must(cmd: string): void {
  const r = sh(cmd.split(" "));
  if (r.code !== 0) throw new Error(`topology: ${cmd}: ${r.stderr.trim()}`);
}

/**
 * One neighbour: namespace NS with eth0 joined to the host's LINK. `nodad`: the addresses are
 * usable at once (duplicate address detection would keep them tentative for about a second, and
 * a route via a tentative address fails).
 */
function neighbour(ns: string, link: string, host4: string, host6: string, peer4: string, peer6: string): void {
  for (const s of [
    `ip netns add ${ns}`,
    `ip link add ${link} type veth peer name eth0 netns ${ns}`,
    `ip addr add ${host4}/24 dev ${link}`,
    `ip -6 addr add ${host6}/64 dev ${link} nodad`,
    `ip link set ${link} up`,
    `ip -n ${ns} link set lo up`,
    `ip -n ${ns} addr add ${peer4}/24 dev eth0`,
    `ip -n ${ns} -6 addr add ${peer6}/64 dev eth0 nodad`,
    `ip -n ${ns} link set eth0 up`,
    `ip -n ${ns} route add default via ${host4}`,
    `ip -n ${ns} -6 route add default via ${host6}`,
  ]) must(s);
  // A veth passes packets only once the kernel's link watch has seen its carrier and given it a
  // queue (up to a second after `up`): the first ping was lost until then.
  const deadline = Date.now() + 5000;
  const up = (n?: string) => ipj<any[]>(["link", "show", n ? "eth0" : link], n)[0]?.operstate === "UP";
  while (!(up() && up(ns))) {
    if (Date.now() > deadline) throw new Error(`topology: ${link} and ${ns}'s eth0 not UP after 5 s`);
    Bun.sleepSync(10);
  }
}

export interface Topology {
  /** Makes LAN route PREFIX (either family) via the host's LAN address; returns the undo. */
  lanRouteViaHost(prefix: string): () => void;
  /** curl from inside the LAN neighbour (or the world): status and body. */
  curlFrom(ns: "lan" | "world", url: string, seconds?: number): Result;
  /** Removes both namespaces and links (idempotent). */
  remove(): void;
}

/** Makes the LAN neighbour and the world; throws, naming the step, if one fails (and undoes the rest). */
export function makeDualStackTopology(): Topology {
  const remove = () => {
    for (const link of [LAN.link, WORLD.link]) sh(["ip", "link", "del", link]);
    for (const ns of [LAN.ns, WORLD.ns]) sh(["ip", "netns", "del", ns]);
  };
  remove(); // what an aborted earlier run of the same sandbox may have left
  try {
    neighbour(LAN.ns, LAN.link, HOST.lan4, HOST.lan6, LAN.v4, LAN.v6);
    neighbour(WORLD.ns, WORLD.link, HOST.wan4, HOST.wan6, WORLD.v4, WORLD.v6);
  } catch (e) {
    remove();
    throw e;
  }
  return {
    lanRouteViaHost(prefix) {
      const six = prefix.includes(":");
      const via = six ? HOST.lan6 : HOST.lan4;
      must(`ip -n ${LAN.ns} ${six ? "-6" : "-4"} route add ${prefix} via ${via}`);
      return () => void sh(["ip", "-n", LAN.ns, six ? "-6" : "-4", "route", "del", prefix, "via", via]);
    },
    curlFrom(ns, url, seconds = 2) {
      return sh(["ip", "netns", "exec", ns, "curl", "-gsS", "--max-time", String(seconds), url]);
    },
    remove,
  };
}

/** The host's forwarding switches for both families ("0"/"1"), read from /proc. */
export function forwarding(): { v4: string; v6: string } {
  return {
    v4: readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim(),
    v6: readFileSync("/proc/sys/net/ipv6/conf/all/forwarding", "utf8").trim(),
  };
}

/** Sets the host's forwarding (only the harness's own test: tsnet's tests see what tsnet set). */
export function setForwarding(f: { v4: string; v6: string }): void {
  writeFileSync("/proc/sys/net/ipv4/ip_forward", f.v4);
  writeFileSync("/proc/sys/net/ipv6/conf/all/forwarding", f.v6);
}

export interface PeerLog {
  /** http://ADDR:PORT/ for each of the world's addresses. */
  url4: string;
  url6: string;
  /** The source address of every request so far, as the world saw it (IPv4-mapped written as IPv4). */
  peers(): string[];
  stop(): Promise<void>;
}

/**
 * An HTTP server in the world on PORT, both families (one IPv6 socket with IPV6_V6ONLY off):
 * it answers each GET with the requester's address as it saw it, and logs it. The oracle for
 * "the world sees the host's address".
 */
export async function worldPeerLog(port = 9000): Promise<PeerLog> {
  const dir = mkdtempSync("/tmp/tsnet-world-");
  const log = `${dir}/peers`;
  const py = `
import socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        peer = self.client_address[0]
        if peer.startswith("::ffff:"): peer = peer[7:]
        with open(${JSON.stringify(log)}, "a") as f: f.write(peer + "\\n")
        body = (peer + "\\n").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class S(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
s = S(("::", ${port}), H)
print("ready", flush=True)
s.serve_forever()
`;
  const p = Bun.spawn(["ip", "netns", "exec", WORLD.ns, "python3", "-c", py], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const first = await (p.stdout as ReadableStream<Uint8Array>).getReader().read();
  if (!new TextDecoder().decode(first.value ?? new Uint8Array()).includes("ready")) {
    p.kill();
    throw new Error(`the world's peer log did not start: ${await new Response(p.stderr).text()}`);
  }
  const url4 = `http://${WORLD.v4}:${port}/`;
  const url6 = `http://[${WORLD.v6}]:${port}/`;
  return {
    url4,
    url6,
    peers: () => {
      try {
        return readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
      } catch {
        return [];
      }
    },
    async stop() {
      p.kill();
      await p.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A container's (or any namespace's: undefined is the host) global IPv6 addresses on IFNAME, read by ip. */
export function globalAddresses6(netns: string | undefined, ifname = "eth0"): { address: string; prefix: number }[] {
  const [link] = ipj<any[]>(["-6", "addr", "show", "dev", ifname, "scope", "global"], netns);
  // ip -j leaves an empty object for each address its filter (scope) skipped.
  return (link?.addr_info ?? []).filter((a: any) => a.local).map((a: any) => ({ address: a.local as string, prefix: a.prefixlen as number }));
}

/** The eight 16-bit groups of an IPv6 address ("fd00:7473::1" -> [0xfd00, 0x7473, 0, 0, 0, 0, 0, 1]). */
export function groups6(addr: string): number[] {
  const [head, tail] = addr.includes("::") ? addr.split("::") : [addr, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const mid = tail === undefined ? [] : Array(8 - h.length - t.length).fill("0");
  const all = [...h, ...mid, ...t].map((g) => parseInt(g, 16));
  if (all.length !== 8 || all.some((g) => !(g >= 0 && g <= 0xffff))) throw new Error(`not an IPv6 address: ${addr}`);
  return all;
}

/** The on-link IPv6 prefixes of IFNAME in NETNS (the kernel's routes for its addresses), e.g. "fd00:91::/64". */
export function onLinkPrefixes6(netns: string, ifname = "eth0"): string[] {
  return ipj<any[]>(["-6", "route", "show", "dev", ifname, "proto", "kernel"], netns)
    .map((r) => r.dst as string)
    .filter((d) => !d.startsWith("fe80:"));
}

/** The host's link holding ADDRESS (IPv4 or IPv6), from ip. */
export function hostLinkWith(address: string): string | undefined {
  return ipj<any[]>(["addr"]).find((l) => (l.addr_info ?? []).some((a: any) => a.local === address))?.ifname;
}

/** Waits (bounded) until the world's address answers from the LAN, or throws naming what did not. */
export async function waitReachable(url: string, from: "lan" | "world", topo: Topology, ms = 5000): Promise<string> {
  return await waitFor(`${url} from ${from}`, () => {
    const r = topo.curlFrom(from, url, 1);
    return r.code === 0 && r.stdout;
  }, ms);
}
