// tsnet explain against the kernel, in a throwaway host (test/sandbox.sh).
// 1. The nf_tables text: tsnet writes its table (networks of every kind, published ports), the
//    table is dumped with `nft -j`, and the rendered text is loaded with `nft -f` as a table of
//    another name (tsnet_text: the supervisor of the running containers puts `inet tsnet` back
//    the moment it is deleted, so the copy is what can be compared in peace); the dumps must be
//    equal but for the name, and tsnet's own byte-level comparison (ensureTable's dry run of the
//    same spec under that name) must find nothing to change.
// 2. The loopback guard as tc commands: the rendered steps, run by bash on a veth of their own,
//    leave the filter `tc -j filter show` prints for the guard tsnet put on a container's veth.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { natNetworks } from "../src/network/networks.ts";
import { natTable, PORT_SETS } from "../src/nat/ruleset.ts";
import { ensureTable, listElements, openNftSocket } from "../src/nftables/index.ts";
import { elementsText, tableText } from "../src/nftables/text.ts";
import type { ElementAdd, TableSpec } from "../src/nftables/ensure.ts";
import { loopbackGuardFilter } from "../src/network/guard.ts";
import { renderScript } from "../src/plan/render.ts";
import { assertThrowawayHost, normalizeNft, removeAllContainers, sh, tsnetOk, userNetworks, veths } from "./helpers.ts";

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
