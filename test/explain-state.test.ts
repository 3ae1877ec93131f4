// tsnet explain changes nothing (in a throwaway host, test/sandbox.sh): for each explained command
// (run in every mode, network create, connect and rm, rm, cni-add), on a fresh host and on one
// with networks and containers, the state directories (every name and content), links, addresses,
// routes, namespaces (and what is inside them), the ruleset, the sysctls tsnet sets and the
// cgroups are the same after it as before. test/explain.test.ts shows the script builds what
// tsnet builds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { assertThrowawayHost, containerCgroups, normalizeNft, removeAllContainers, sh, tsnet, tsnetOk, userNetworks } from "./helpers.ts";

beforeAll(() => {
  assertThrowawayHost();
});

const STATE_ROOTS = ["/run/tsnet", "/run/netns", process.env.TSNET_STATE_DIR ?? "/var/lib/tsnet"];

/** Every file under the roots with its content (sockets and FIFOs by name and kind only). */
function stateFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const n of readdirSync(dir).sort()) {
      const p = `${dir}/${n}`;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out[p] = `dir ${st.mode.toString(8)}`;
        walk(p);
      } else if (dir.startsWith("/run/netns")) out[p] = st.isSymbolicLink() ? "namespace (link)" : "namespace (mount)";
      else if (st.isFile()) out[p] = readFileSync(p, "utf8");
      else out[p] = st.isSymbolicLink() ? "symlink" : "special";
    }
  };
  for (const r of STATE_ROOTS) walk(r);
  return out;
}

function sysctlValues(): Record<string, string> {
  const links = JSON.parse(sh(["ip", "-j", "link", "show"]).stdout) as { ifname: string }[];
  const paths = ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
    ...links.flatMap((l) => [`net/ipv4/conf/${l.ifname}/route_localnet`, `net/ipv6/conf/${l.ifname}/disable_ipv6`])];
  return Object.fromEntries(paths.map((p) => [p, existsSync(`/proc/sys/${p}`) ? readFileSync(`/proc/sys/${p}`, "utf8").trim() : "(missing)"]));
}

/** The bridge's and its ports' timers, which run on by themselves, left out. */
function withoutTimers(v: any): any {
  if (Array.isArray(v)) return v.map(withoutTimers);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).filter(([k]) => !k.endsWith("_timer")).map(([k, x]) => [k, withoutTimers(x)]));
  return v;
}

/** What the kernel and the state directories hold, everything explain must leave alone. */
function everything(): unknown {
  const namespaces = (JSON.parse(sh(["ip", "-j", "netns", "list"]).stdout || "[]") as { name: string }[]).map((n) => n.name).sort();
  const j = (cmd: string[]) => withoutTimers(JSON.parse(sh(cmd).stdout || "[]"));
  return {
    files: stateFiles(),
    links: j(["ip", "-j", "-d", "link", "show"]),
    addresses: j(["ip", "-j", "addr", "show"]),
    routes: [j(["ip", "-j", "route", "show", "table", "all"]), j(["ip", "-j", "-6", "route", "show", "table", "all"])],
    nft: normalizeNft(j(["nft", "-j", "list", "ruleset"])),
    sysctls: sysctlValues(),
    cgroups: containerCgroups(),
    namespaces,
    inside: Object.fromEntries(namespaces.map((ns) => [ns, {
      links: j(["ip", "-n", ns, "-j", "-d", "link", "show"]),
      addresses: j(["ip", "-n", ns, "-j", "addr", "show"]),
      routes: j(["ip", "-n", ns, "-j", "route", "show", "table", "all"]),
      nft: normalizeNft(j(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"])),
      sysctls: readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8"),
    }])),
  };
}

/**
 * Waits (up to 5 s) until no IPv6 address on the host or in a namespace is still tentative: the
 * kernel's duplicate address detection on a just-made veth ends by itself, adding local routes,
 * and must not be taken for a change explain made.
 */
function dadSettled(): void {
  const tentative = () => {
    const namespaces = (JSON.parse(sh(["ip", "-j", "netns", "list"]).stdout || "[]") as { name: string }[]).map((n) => n.name);
    return [sh(["ip", "-j", "addr"]), ...namespaces.map((ns) => sh(["ip", "-n", ns, "-j", "addr"]))].some((r) => r.stdout.includes('"tentative":true'));
  };
  const deadline = Date.now() + 5000;
  while (tentative() && Date.now() < deadline) Bun.sleepSync(100);
}

/** `tsnet explain ARGS` succeeds with a script, and everything is as it was. */
function explainsWithoutChange(args: string[], o: { stdin?: string; env?: Record<string, string> } = {}): string {
  dadSettled();
  const before = everything();
  const r = tsnet(["explain", ...args], o);
  if (r.code !== 0) throw new Error(`tsnet explain ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  expect(r.stdout.startsWith("#!/bin/bash\n")).toBe(true);
  expect(everything()).toEqual(before);
  return r.stdout;
}

const CNI_CONF = (name: string, extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: "1.0.0", name, type: "tsnet", ...extra });
const CNI_ENV = (netns: string) => ({ CNI_CONTAINERID: "explaincni0001", CNI_NETNS: netns, CNI_IFNAME: "eth0", CNI_PATH: "/nonexistent" });

// The tests need a host of their own, fresh (npm test runs every file in one throwaway host): the
// file runs itself again in a nested one, where TSNET_EXPLAIN_FRESH says so.
const FRESH = process.env.TSNET_EXPLAIN_FRESH === "1";

if (!FRESH) {
  test("explain changes nothing (the tests below, run on a fresh host of their own)", () => {
    const root = resolve(import.meta.dir, "..");
    const r = sh(["bash", `${root}/test/sandbox.sh`, process.execPath, "test", "--timeout", "60000", `${root}/test/explain-state.test.ts`], { env: { TSNET_EXPLAIN_FRESH: "1" } });
    if (r.code !== 0 || !/\b2 pass\b/.test(r.stderr)) throw new Error(`on a fresh host:\n${r.stderr}`);
  }, 120000);
}

// Defined only on the fresh host: outside it they would show as skipped, which a kernel test never is.
if (FRESH) describe("explain changes nothing", () => {
  afterAll(() => {
    removeAllContainers();
    for (const n of userNetworks()) tsnet(["network", "rm", n]);
    sh(["ip", "netns", "del", "explain-cni"]);
  });

  test("on a fresh host: run (bridge with ports, none, host), network create, cni-add; not even the built-in networks' records are written", () => {
    sh(["ip", "netns", "add", "explain-cni"]);
    // (tsnet network ls would write the built-in networks' records: not called before this.)
    // Nothing of tsnet's exists yet: no records (not even the built-in networks'), no bridge, no table.
    expect(existsSync(`${STATE_ROOTS[2]}/networks`)).toBe(false);
    const run = explainsWithoutChange(["run", "-d", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "--name", "web", "--", "nginx"]);
    expect(run).toContain("ip netns add tsnet-web");
    expect(run).toContain("ip link add tsnet0 address 02:74:0a:4d:00:01 up type bridge");
    expect(run).toContain("ip -n tsnet-web addr add 10.77.0.2/16 dev eth0");
    expect(explainsWithoutChange(["run", "--network", "none", "--", "true"])).toContain("ip -n tsnet-");
    expect(explainsWithoutChange(["run", "--network", "host", "--", "true"])).toContain("there are no kernel steps");
    const net = explainsWithoutChange(["network", "create", "--ipv6", "--internal", "-o", "com.docker.network.driver.mtu=1400", "back"]);
    expect(net).toContain("sysctl -q -e -w net.ipv6.conf.all.forwarding=1");
    expect(net).toMatch(/ip link add tsnet-[0-9a-f]{9} address 02:74:0a:4e:00:01 mtu 1400 up type bridge/);
    const cni = explainsWithoutChange(["cni-add"], { stdin: CNI_CONF("cninet", { runtimeConfig: { portMappings: [{ hostPort: 8090, containerPort: 80, protocol: "tcp" }] } }), env: CNI_ENV("/run/netns/explain-cni") });
    expect(cni).toContain("peer name eth0 netns /run/netns/explain-cni");
    expect(cni).toContain("nsenter --net=/run/netns/explain-cni ip addr add 10.78.0.2/24 dev eth0");
  });

  test("with networks and containers: run on a user network, network connect, network rm, rm -f, cni-add on an existing network", () => {
    tsnetOk(["network", "create", "--ipv6", "front"]);
    tsnetOk(["network", "create", "empty"]);
    tsnetOk(["network", "create", "-o", "com.docker.network.bridge.enable_icc=false", "quiet"]);
    tsnetOk(["run", "-d", "--name", "busy", "-p", "8081:80", "--", "sleep", "600"]);
    const run = explainsWithoutChange(["run", "--network", "front", "--ip", "10.78.0.50", "--mac-address", "02:42:0a:4e:00:32", "--network-alias", "db", "--rm", "--", "true"]);
    expect(run).toContain("address 02:42:0a:4e:00:32");
    expect(run).toContain("addr add 10.78.0.50/24 dev eth0");
    expect(run).not.toContain("type bridge");
    // The next free address: busy has 10.77.0.2, so the next run gets .3, and no lease is taken.
    expect(explainsWithoutChange(["run", "--", "true"])).toContain("addr add 10.77.0.3/16 dev eth0");
    expect(explainsWithoutChange(["run", "--", "true"])).toContain("addr add 10.77.0.3/16 dev eth0");
    const connect = explainsWithoutChange(["network", "connect", "quiet", "busy"]);
    expect(connect).toContain("peer name eth1 netns tsnet-busy");
    const rm = explainsWithoutChange(["network", "rm", "empty"]);
    expect(rm).toMatch(/ip link del dev tsnet-[0-9a-f]{9}/);
    const rmc = explainsWithoutChange(["rm", "-f", "busy"]);
    expect(rmc).toContain("ip netns del tsnet-busy");
    expect(rmc).toContain("delete element inet tsnet ports");
    const cni = explainsWithoutChange(["cni-add"], { stdin: CNI_CONF("front"), env: CNI_ENV("/run/netns/explain-cni") });
    expect(cni).toContain("addr add fd00:7473::2/64 dev eth0 nodad");
    // And refusals are the commands' own.
    expect(tsnet(["explain", "rm", "busy"]).stderr).toContain("cannot remove running container busy");
    expect(tsnet(["explain", "network", "rm", "bridge"]).stderr).toContain("pre-defined network");
    expect(tsnet(["explain", "run", "-p", "8081:80", "--", "true"]).stderr).toContain("already in use");
  });
});

