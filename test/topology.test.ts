// The dual-stack test topology (test/topology.ts) checked on its own, with plain kernel IPv4 and
// IPv6 between the namespaces it makes, and with tsnet's IPv4 paths that exist: so that a
// failing test in test/ipv6.test.ts points at tsnet, not at its harness.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { assertThrowawayHost, curl, ipj, nginxSite, removeAllContainers, runDetached, sh, tsnet, waitFor } from "./helpers.ts";
import { HOST, LAN, WORLD, forwarding, makeDualStackTopology, setForwarding, worldPeerLog, type Topology } from "./topology.ts";

let topo: Topology;
const site = nginxSite("hello over both families\n", { ipv6: true });

beforeAll(() => {
  assertThrowawayHost();
  topo = makeDualStackTopology();
});
afterAll(() => {
  removeAllContainers();
  topo?.remove();
  rmSync(site.dir, { recursive: true, force: true });
  expect(sh(["ip", "netns", "list"]).stdout).not.toMatch(/^(lan|world)\b/m);
});

const ping = (args: string[], netns?: string) => sh([...(netns ? ["ip", "netns", "exec", netns] : []), "ping", "-c1", "-W1", ...args]).code;

describe("the topology", () => {
  test("the host reaches the LAN neighbour and the world over IPv4 and IPv6, and they reach it", () => {
    for (const a of [LAN.v4, LAN.v6, WORLD.v4, WORLD.v6]) expect(ping([a])).toBe(0);
    expect(ping([HOST.lan4], LAN.ns)).toBe(0);
    expect(ping([HOST.lan6], LAN.ns)).toBe(0);
    expect(ping([HOST.wan4], WORLD.ns)).toBe(0);
    expect(ping([HOST.wan6], WORLD.ns)).toBe(0);
    // Default routes both ways, both families.
    for (const ns of [LAN.ns, WORLD.ns]) {
      expect(ipj<any[]>(["-4", "route", "show", "default"], ns).length).toBe(1);
      expect(ipj<any[]>(["-6", "route", "show", "default"], ns).length).toBe(1);
    }
  });

  test("with the host forwarding, the LAN reaches the world over both families, and the world's log shows the LAN's own addresses; without, it does not", async () => {
    const was = forwarding();
    const world = await worldPeerLog(9001);
    try {
      setForwarding({ v4: "1", v6: "1" });
      expect(topo.curlFrom("lan", world.url4).stdout).toBe(`${LAN.v4}\n`);
      expect(topo.curlFrom("lan", world.url6).stdout).toBe(`${LAN.v6}\n`);
      // From the host itself: its own address on that link.
      expect(curl(world.url4).stdout).toBe(`${HOST.wan4}\n`);
      expect(curl(world.url6).stdout).toBe(`${HOST.wan6}\n`);
      setForwarding({ v4: "0", v6: "0" });
      expect(topo.curlFrom("lan", world.url6, 1).code).not.toBe(0);
      expect(topo.curlFrom("lan", world.url4, 1).code).not.toBe(0);
      expect(world.peers()).toEqual([LAN.v4, LAN.v6, HOST.wan4, HOST.wan6]);
    } finally {
      setForwarding(was);
      await world.stop();
    }
  });

  test("lanRouteViaHost adds a route in the LAN neighbour for either family, and its undo removes it", () => {
    const undo6 = topo.lanRouteViaHost("fd00:99::/64");
    const undo4 = topo.lanRouteViaHost("10.99.0.0/24");
    expect(ipj<any[]>(["-6", "route", "show", "fd00:99::/64"], LAN.ns)[0]?.gateway).toBe(HOST.lan6);
    expect(ipj<any[]>(["-4", "route", "show", "10.99.0.0/24"], LAN.ns)[0]?.gateway).toBe(HOST.lan4);
    undo6();
    undo4();
    expect(ipj<any[]>(["-6", "route", "show", "fd00:99::/64"], LAN.ns)).toEqual([]);
    expect(ipj<any[]>(["-4", "route", "show", "10.99.0.0/24"], LAN.ns)).toEqual([]);
  });
});

describe("tsnet's IPv4 paths through the topology (what exists before IPv6)", () => {
  test("a container's outbound IPv4 reaches the world as the host's address; a published port answers the LAN at the host's LAN address", async () => {
    const world = await worldPeerLog(9002);
    try {
      const r = tsnet(["run", "--rm", "--", "curl", "-sS", "--max-time", "2", world.url4]);
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(`${HOST.wan4}\n`);
      runDetached(["--name", "topo-web", "-p", "8480:80", "--", ...site.command]);
      await waitFor("nginx", () => curl("http://127.0.0.1:8480/").code === 0);
      expect(topo.curlFrom("lan", `http://${HOST.lan4}:8480/`).stdout).toBe("hello over both families\n");
    } finally {
      removeAllContainers();
      await world.stop();
    }
  });
});
