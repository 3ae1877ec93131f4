// One side of test/explain.test.ts's proof, run inside a fresh host of its own (a nested
// test/sandbox.sh: its own network, mount and PID namespaces, empty /run and state directories).
// It gives the host a stand-in network card (lan0, 192.0.2.10/24 and 2001:db8::10/64), runs the
// steps it is given (bash, with $TSNET set), one after the other, and after each step named in
// `snap` prints what the kernel holds, read with ip, tc, nft and /proc, as one JSON line:
// namespaces, links, addresses, routes (host and each namespace), sysctls, the tc filters on the
// host's veths, the nf_tables ruleset, and what curl gets from the published port.
//
//   bun test/explain-side.ts '{"steps": [{"run": "..."}, {"run": "...", "snap": "after", "curl": [...]}]}'
import { TSNET, normalizeNft, sh } from "./helpers.ts";

interface Step {
  run: string;
  /** Print a snapshot under this name once the step has run. */
  snap?: string;
  /** URLs to fetch for the snapshot, each waited for up to 5 s (the server starts behind the step). */
  curl?: string[];
}

function ok(cmd: string[]): string {
  const r = sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function json(cmd: string[]): any {
  return JSON.parse(ok(cmd) || "[]");
}

const inNs = (ns: string | undefined, cmd: string[]) => (ns ? ["ip", "netns", "exec", ns, ...cmd] : cmd);

function links(ns?: string) {
  return json(inNs(ns, ["ip", "-j", "-d", "link", "show"])).map((l: any) => ({
    name: l.ifname,
    index: l.ifindex,
    kind: l.linkinfo?.info_kind ?? null,
    master: l.master ?? null,
    up: (l.flags as string[]).includes("UP"),
    mac: l.address,
    mtu: l.mtu,
    hairpin: l.linkinfo?.info_slave_data?.hairpin ?? null,
  })).sort((a: any, b: any) => a.name.localeCompare(b.name));
}

function addresses(ns?: string) {
  return json(inNs(ns, ["ip", "-j", "addr", "show"])).flatMap((l: any) =>
    (l.addr_info as any[]).map((a) => `${l.ifname} ${a.local}/${a.prefixlen} ${a.scope}${a.nodad ? " nodad" : ""}`)).sort();
}

function routes(ns?: string) {
  const r = (fam: string, table: string) =>
    json(inNs(ns, ["ip", "-j", fam, "route", "show", "table", table])).map((x: any) =>
      [table, x.type ?? "unicast", x.dst, x.gateway ? `via ${x.gateway}` : "", `dev ${x.dev}`, x.prefsrc ? `src ${x.prefsrc}` : "", x.protocol ?? ""].filter(Boolean).join(" "));
  return [...r("-4", "main"), ...r("-6", "main"), ...r("-4", "local"), ...r("-6", "local")].sort();
}

function sysctls(ns: string | undefined, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const r = sh(inNs(ns, ["cat", `/proc/sys/${n}`]));
    out[n] = r.code === 0 ? r.stdout.trim() : "(missing)";
  }
  return out;
}

function ruleset(ns?: string): unknown {
  return normalizeNft(json(inNs(ns, ["nft", "-j", "list", "ruleset"])));
}

function fetch(url: string): string {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = sh(["curl", "-sS", "-g", "--max-time", "2", url]);
    if (r.code === 0 || Date.now() > deadline) return r.code === 0 ? r.stdout : `(curl ${r.code}: ${r.stderr.trim()})`;
    Bun.sleepSync(100);
  }
}

function snapshot(step: Step): unknown {
  const namespaces = json(["ip", "-j", "netns", "list"]).map((n: any) => n.name).sort() as string[];
  const hostLinks = links();
  const bridges = hostLinks.filter((l: any) => l.kind === "bridge").map((l: any) => l.name);
  const hostVeths = hostLinks.filter((l: any) => l.kind === "veth" && l.master).map((l: any) => l.name);
  const host = {
    links: hostLinks,
    addresses: addresses(),
    routes: routes(),
    sysctls: sysctls(undefined, [
      "net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
      ...bridges.flatMap((b: string) => [`net/ipv4/conf/${b}/route_localnet`, `net/ipv6/conf/${b}/disable_ipv6`]),
    ]),
    tc: Object.fromEntries(hostVeths.map((v: string) => [v, {
      qdiscs: json(["tc", "-j", "qdisc", "show", "dev", v]),
      ingress: json(["tc", "-j", "filter", "show", "dev", v, "ingress"]),
    }])),
    nft: ruleset(),
  };
  const inside = Object.fromEntries(namespaces.map((ns) => {
    const l = links(ns);
    return [ns, {
      links: l,
      addresses: addresses(ns),
      routes: routes(ns),
      sysctls: sysctls(ns, l.filter((x: any) => x.name !== "lo").map((x: any) => `net/ipv6/conf/${x.name}/disable_ipv6`)),
      nft: ruleset(ns),
    }];
  }));
  return { snap: step.snap, namespaces, host, inside, curl: Object.fromEntries((step.curl ?? []).map((u) => [u, fetch(u)])) };
}

const { steps } = JSON.parse(process.argv[2]!) as { steps: Step[] };
// The host's own network card, the same on both sides (fixed MACs).
ok(["ip", "link", "add", "lan0", "address", "02:00:00:00:00:10", "type", "veth", "peer", "name", "lan1", "address", "02:00:00:00:00:11"]);
ok(["ip", "addr", "add", "192.0.2.10/24", "dev", "lan0"]);
ok(["ip", "addr", "add", "2001:db8::10/64", "dev", "lan0", "nodad"]);
ok(["ip", "link", "set", "lan0", "up"]);
ok(["ip", "link", "set", "lan1", "up"]);
for (const step of steps) {
  const r = sh(["bash", "-c", step.run], { env: { TSNET } });
  if (r.code !== 0) {
    console.log(JSON.stringify({ failed: step.run, code: r.code, stderr: r.stderr }));
    process.exit(1);
  }
  if (step.snap) console.log(JSON.stringify(snapshot(step)));
}
