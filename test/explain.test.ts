// tsnet explain against the kernel, in a throwaway host (test/sandbox.sh).
// 1. The nf_tables text: tsnet writes its table (networks of every kind, published ports), the
//    table is dumped with `nft -j`, and the rendered text is loaded with `nft -f` as a table of
//    another name (tsnet_text: the supervisor of the running containers puts `inet tsnet` back
//    the moment it is deleted, so the copy is what can be compared in peace); the dumps must be
//    equal but for the name, and tsnet's own byte-level comparison (ensureTable's dry run of the
//    same spec under that name) must find nothing to change.
// 2. The loopback guard as tc commands: the rendered steps, run by bash on a veth of their own,
//    leave the filter `tc -j filter show` prints for the guard tsnet put on a container's veth.
// 3. The proof (test/explain-state.test.ts shows that explain changes nothing): on two fresh hosts (nested throwaway hosts, test/explain-side.ts), one runs the
//    script `tsnet explain` prints with bash, the other runs tsnet itself; what the kernel holds
//    is compared, and the published port answers on both.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { natNetworks } from "../src/network/networks.ts";
import { natTable, PORT_SETS } from "../src/nat/ruleset.ts";
import { ensureTable, listElements, openNftSocket } from "../src/nftables/index.ts";
import { elementsText, tableText } from "../src/nftables/text.ts";
import type { ElementAdd, TableSpec } from "../src/nftables/ensure.ts";
import { loopbackGuardFilter } from "../src/network/guard.ts";
import { renderScript } from "../src/plan/render.ts";
import { assertThrowawayHost, nginxSite, normalizeNft, removeAllContainers, sh, tsnetOk, userNetworks, veths } from "./helpers.ts";

/** `nft -j list table` with what a reload changes by itself taken out: handles, counters, element order. */
export function nftDump(table = "inet tsnet", netns?: string, renamed?: string): unknown {
  const cmd = [...(netns ? ["ip", "netns", "exec", netns] : []), "nft", "-j", "list", "table", ...table.split(" ")];
  const r = sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  return normalizeNft(JSON.parse(r.stdout), renamed);
}

function nft(text: string, netns?: string): void {
  const cmd = [...(netns ? ["ip", "netns", "exec", netns] : []), "nft", "-f", "-"];
  const r = sh(cmd, { stdin: text });
  if (r.code !== 0) throw new Error(`nft -f of:\n${text}\nfailed: ${r.stderr}`);
}

/** The port elements tsnet put in its maps, as read back from the kernel. */
function portElementsInKernel(): ElementAdd[] {
  const s = openNftSocket();
  try {
    return PORT_SETS.map((set) => ({ set, elements: listElements(s, "inet", "tsnet", set) })).filter((a) => a.elements.length);
  } finally {
    s.close();
  }
}

const COPY = "tsnet_text";

function drift(spec: TableSpec, add: ElementAdd[]) {
  const s = openNftSocket();
  try {
    return ensureTable(s, spec, { add, addMissingOnly: true, dryRun: true });
  } finally {
    s.close();
  }
}

beforeAll(() => {
  assertThrowawayHost();
});

describe("nf_tables text", () => {
  let spec: TableSpec;
  let elements: ElementAdd[];
  beforeAll(() => {
    tsnetOk(["network", "create", "--ipv6", "--subnet", "10.90.0.0/20", "--subnet", "fd00:90::/63", "-o", "com.docker.network.bridge.enable_icc=false", "dual"]);
    tsnetOk(["network", "create", "--internal", "vault"]);
    tsnetOk(["network", "create", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "nomasq"]);
    tsnetOk(["run", "-d", "--name", "rt-web", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "--", "sleep", "600"]);
    tsnetOk(["run", "-d", "--name", "rt-web6", "--network", "dual", "-p", "8081:80", "--", "sleep", "600"]);
    spec = natTable({ table: COPY, networks: natNetworks() });
    elements = portElementsInKernel();
  });
  afterAll(() => {
    removeAllContainers();
    for (const n of userNetworks()) tsnetOk(["network", "rm", n]);
  });

  test("tsnet's table, loaded again from its text, dumps the same and matches tsnet's spec byte for byte", () => {
    expect(elements.map((e) => e.set).sort()).toEqual(["hostip_ports", "ports", "ports6"]);
    const before = nftDump();
    nft(tableText(spec) + elementsText(spec, elements));
    expect(nftDump(`inet ${COPY}`, undefined, COPY)).toEqual(before);
    const d = drift(spec, elements);
    expect(d.drifted).toBe(false);
    expect(d.rewrittenChains).toEqual([]);
  });

  test("on a drifted table, the text for an existing table puts back exactly the spec and keeps the port elements", () => {
    const before = nftDump();
    sh(["nft", "flush", "chain", "inet", COPY, "forward"]);
    sh(["nft", "add", "rule", "inet", COPY, "guard", "counter"]);
    sh(["nft", "add", "element", "inet", COPY, "bridges", "{ stray0 }"]);
    expect(drift(spec, elements).drifted).toBe(true);
    nft(tableText(spec, { existing: true }));
    expect(nftDump(`inet ${COPY}`, undefined, COPY)).toEqual(before);
    expect(drift(spec, elements).drifted).toBe(false);
    sh(["nft", "delete", "table", "inet", COPY]);
  });
});

describe("the loopback guard as tc commands", () => {
  afterAll(() => {
    removeAllContainers();
    sh(["ip", "link", "del", "explainv0"]);
  });

  test("the rendered steps on a veth of their own leave the filter tsnet puts on a container's veth", () => {
    tsnetOk(["run", "-d", "--name", "guard-web", "--", "sleep", "600"]);
    const id = JSON.parse(tsnetOk(["inspect", "guard-web"]))[0].Id as string;
    const veth = veths().find((v) => v === `veth${id.slice(0, 7)}`);
    expect(veth).toBeDefined();
    const tsnetSide = JSON.parse(sh(["tc", "-j", "filter", "show", "dev", veth!, "ingress"]).stdout);
    const script = renderScript([
      { op: "link-add", name: "explainv0", kind: "veth", up: true, peer: { name: "explainv1" }, why: "a veth pair" },
      { op: "guard", dev: "explainv0", why: "the loopback guard" },
    ], { guard: loopbackGuardFilter() });
    const r = sh(["bash", "-c", script]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const scriptSide = JSON.parse(sh(["tc", "-j", "filter", "show", "dev", "explainv0", "ingress"]).stdout);
    expect(scriptSide).toEqual(tsnetSide);
    expect(JSON.stringify(scriptSide)).toContain('"direct-action":true');
  });
});

// ---------------------------------------------------------------------------------------------
// 3. The proof: the script on one fresh host, tsnet on another, the same kernel state.

const ROOT = resolve(import.meta.dir, "..");

/** Runs steps on a fresh host of its own; its snapshots by name. */
function side(steps: { run: string; snap?: string; curl?: string[] }[]): Record<string, any> {
  const r = sh(["bash", `${ROOT}/test/sandbox.sh`, process.execPath, `${ROOT}/test/explain-side.ts`, JSON.stringify({ steps })]);
  const lines = r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const failed = lines.find((l) => l.failed);
  if (failed) throw new Error(`step failed on a fresh host: ${failed.failed}\n${failed.stderr}`);
  if (r.code !== 0) throw new Error(`a fresh host failed (${r.code}): ${r.stderr}`);
  return Object.fromEntries(lines.map((l) => [l.snap, l]));
}

/**
 * Where the script honestly differs from tsnet, and only there:
 * - a host veth's name is veth + 7 hex of the container's id, a new random id on each side;
 * - its MAC is the kernel's random pick on each side (tsnet does not set it), and so are the
 *   IPv6 link-local address and local route the kernel derives from it;
 * - a published port's element comment starts with 12 hex of that id;
 * - inside the namespace, tsnet's resolver writes table inet tsnet_dns (127.0.0.11 redirected to
 *   its sockets), which the script leaves out: it is the resolver's, not the network's.
 */
function normalized(snap: any): any {
  let text = JSON.stringify({ namespaces: snap.namespaces, host: snap.host, inside: snap.inside, curl: snap.curl });
  text = text.replace(/veth[0-9a-f]{7}/g, "vethID").replace(/"comment":"[0-9a-f]{12} /g, '"comment":"TAG ');
  const s = JSON.parse(text);
  for (const l of s.host.links) if (l.name.startsWith("vethID")) l.mac = "(random)";
  const randomLinkLocal = (x: string) => /vethID/.test(x) && /fe80::/.test(x) && !/fe80::\/64/.test(x);
  s.host.addresses = s.host.addresses.filter((a: string) => !randomLinkLocal(a));
  s.host.routes = s.host.routes.filter((r: string) => !randomLinkLocal(r));
  for (const ns of Object.values<any>(s.inside)) ns.nft = ns.nft.filter((o: any) => JSON.stringify(o).indexOf('"tsnet_dns"') < 0);
  return s;
}

const pipe = (explain: string) => `set -o pipefail; "$TSNET" explain ${explain} | bash`;

describe("the script on a fresh host builds what tsnet builds", () => {
  let site: ReturnType<typeof nginxSite>;
  beforeAll(() => {
    site = nginxSite("explained\n", { daemon: true, ipv6: true });
  });
  // Daemonized, its output away from the step's pipes (which would stay open while it runs).
  const nginx = () => `${site.command.join(" ")} >/dev/null 2>&1`;
  const nginxFg = () => `${site.command.join(" ")} -g 'daemon off;'`;
  const urls = ["http://127.0.0.1:8080/", "http://192.0.2.10:8080/"];

  test("run -d -p 8080:80 --name web on the default bridge network", () => {
    const a = side([
      { run: pipe(`run -d -p 8080:80 --name web -- nginx`) },
      { run: `ip netns exec tsnet-web ${nginx()}`, snap: "run", curl: urls },
    ]);
    const b = side([{ run: `"$TSNET" run -d -p 8080:80 --name web -- ${nginxFg()}`, snap: "run", curl: urls }]);
    expect(a.run.curl[urls[0]!]).toBe("explained\n");
    expect(a.run.curl[urls[1]!]).toBe("explained\n");
    expect(normalized(a.run)).toEqual(normalized(b.run));
    expect(a.run.namespaces).toEqual(["tsnet-web"]);
  });

  test("network create --ipv6, and a run on it", () => {
    const create = "network create --ipv6 --subnet 10.90.0.0/24 --subnet fd00:90::/64 -o com.docker.network.bridge.name=tsnetv6 v6net";
    const u6 = [...urls, "http://[2001:db8::10]:8080/"];
    const a = side([{ run: pipe(create), snap: "create" }]);
    const b = side([
      { run: `"$TSNET" ${create} >/dev/null`, snap: "create" },
      { run: `"$TSNET" run -d --network v6net -p 8080:80 --name web6 -- ${nginxFg()}`, snap: "run", curl: u6 },
    ]);
    expect(normalized(a.create)).toEqual(normalized(b.create));
    // The run on a third fresh host: explain needs the network's record, which the script of
    // network create leaves out (and tsnet refuses to make over a bridge it did not record), so
    // this one is made by tsnet, as on side B.
    const a2 = side([
      { run: `"$TSNET" ${create} >/dev/null` },
      { run: pipe(`run -d --network v6net -p 8080:80 --name web6 -- nginx`) },
      { run: `ip netns exec tsnet-web6 ${nginx()}`, snap: "run", curl: u6 },
    ]);
    for (const u of u6) expect(a2.run.curl[u]).toBe("explained\n");
    expect(normalized(a2.run)).toEqual(normalized(b.run));
  });

  test("network connect of a running container", () => {
    const before = [
      { run: `"$TSNET" network create --subnet 10.91.0.0/24 -o com.docker.network.bridge.name=tsnetc net2 >/dev/null` },
      { run: `"$TSNET" run -d -p 8080:80 --name app -- ${nginxFg()} >/dev/null` },
    ];
    const a = side([...before, { run: pipe("network connect net2 app"), snap: "connect", curl: urls }]);
    const b = side([...before, { run: `"$TSNET" network connect net2 app`, snap: "connect", curl: urls }]);
    expect(a.connect.curl[urls[0]!]).toBe("explained\n");
    expect(normalized(a.connect)).toEqual(normalized(b.connect));
    expect(a.connect.inside["tsnet-app"].addresses).toContain("eth1 10.91.0.2/24 global");
  });
});
