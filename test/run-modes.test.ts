// `tsnet run` in none, host and bridge modes: the tutorial's scenarios, checked with ip, curl,
// ping and /proc from outside tsnet.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readlinkSync } from "node:fs";
import {
  TSNET, assertThrowawayHost, containerAddress, containerCgroups, ipj, leases, netnsNames, records, sh, startContainer, tsnet, veths, waitFor,
} from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

function expectNothingLeft(): void {
  expect(veths()).toEqual([]);
  expect(netnsNames()).toEqual([]);
  expect(leases()).toEqual([]);
  expect(records().filter((r) => r.status !== "exited")).toEqual([]);
  expect(containerCgroups()).toEqual([]);
}

describe("--network none", () => {
  test("the namespace has only lo, and it is up", () => {
    const r = tsnet(["run", "--rm", "--network", "none", "--", "ip", "-j", "link"]);
    expect(r.code).toBe(0);
    const links = JSON.parse(r.stdout);
    expect(links.map((l: any) => l.ifname)).toEqual(["lo"]);
    expect(links[0].flags).toContain("UP");
    const addrs = JSON.parse(tsnet(["run", "--rm", "--network", "none", "--", "ip", "-j", "-4", "addr"]).stdout);
    expect(addrs.flatMap((l: any) => l.addr_info.map((a: any) => a.local))).toEqual(["127.0.0.1"]);
    expectNothingLeft();
  });

  test("the command's namespace is not the host's", () => {
    const r = tsnet(["run", "--rm", "--network", "none", "--", "readlink", "/proc/self/ns/net"]);
    expect(r.stdout.trim()).not.toBe(readlinkSync("/proc/self/ns/net"));
  });
});

describe("--network host", () => {
  test("shares the host's namespace", () => {
    const r = tsnet(["run", "--rm", "--network", "host", "--", "readlink", "/proc/self/ns/net"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(readlinkSync("/proc/self/ns/net"));
    expect(netnsNames()).toEqual([]);
  });

  test("a second server on a port the host already uses fails with Address already in use", () => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const bind = `import socket; s = socket.socket(); s.bind(("127.0.0.1", ${server.port})); s.listen()`;
      const r = tsnet(["run", "--rm", "--network", "host", "--", "python3", "-c", bind]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("Address already in use");
      // The same program in a namespace of its own binds the port without trouble.
      const isolated = tsnet(["run", "--rm", "--network", "none", "--", "python3", "-c", bind]);
      expect(isolated.code).toBe(0);
    } finally {
      server.stop(true);
    }
  });
});

describe("--network bridge (the default)", () => {
  test("eth0 gets an address in the bridge subnet, a MAC, and a default route via tsnet0's address", () => {
    const r = tsnet(["run", "--rm", "--", "sh", "-c", "ip -j -4 addr show eth0; ip -j -4 route; ip -j link show eth0"]);
    expect(r.code).toBe(0);
    const [addr, routes, link] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const [bridge] = ipj<any[]>(["-4", "addr", "show", "tsnet0"]);
    const gw = bridge.addr_info[0];
    expect(gw.prefixlen).toBe(16);
    const a = addr[0].addr_info[0];
    expect(a.prefixlen).toBe(16);
    // Same /16 as the gateway, and not the gateway itself.
    expect(a.local.split(".").slice(0, 2)).toEqual(gw.local.split(".").slice(0, 2));
    expect(a.local).not.toBe(gw.local);
    const def = routes.find((x: any) => x.dst === "default");
    expect(def).toMatchObject({ gateway: gw.local, dev: "eth0" });
    expect(link[0].address).toMatch(/^02:/); // locally administered
    expect(link[0].operstate).toBe("UP");
    expectNothingLeft();
  });

  test("subnet avoids Docker's and Podman's defaults", () => {
    tsnet(["run", "--rm", "--", "true"]);
    const [bridge] = ipj<any[]>(["-4", "addr", "show", "tsnet0"]);
    const gw = bridge.addr_info[0].local as string;
    expect(gw.startsWith("172.17.")).toBe(false);
    expect(gw.startsWith("10.88.")).toBe(false);
  });

  test("while running: one veth on tsnet0, eth0 inside via ip netns exec; after exit both are gone", async () => {
    veths(); // the veths of earlier containers go with their namespaces, a moment after they end
    const c = await startContainer("inspectme", [], ["sleep", "30"]);
    try {
      const ports = ipj<any[]>(["link", "show", "master", "tsnet0"]);
      expect(ports.length).toBe(1);
      expect(ports[0].ifname).toMatch(/^veth[0-9a-f]{7}$/);
      expect(veths()).toEqual([ports[0].ifname]);
      expect(netnsNames()).toContain(c.netns);
      const inside = sh(["ip", "netns", "exec", c.netns, "ip", "-j", "link"]);
      expect(JSON.parse(inside.stdout).map((l: any) => l.ifname)).toEqual(["lo", "eth0"]);
      expect(sh(["ip", "netns", "list"]).stdout).toContain(c.netns);
    } finally {
      expect(await c.stop()).toBe(143);
    }
    expectNothingLeft();
    // The bridge stays, like docker0, with no carrier once empty.
    const [br] = ipj<any[]>(["link", "show", "tsnet0"]);
    expect(br.flags).toContain("NO-CARRIER");
  });

  test("the host reaches a server in the container by the container's address", async () => {
    const c = await startContainer("web", [], ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"]);
    try {
      const { address } = containerAddress(c.netns);
      const body = await waitFor("the server to answer", () => {
        const r = sh(["curl", "-sS", "--max-time", "2", `http://${address}:8000/`]);
        return r.code === 0 && r.stdout;
      });
      expect(body).toContain("Directory listing");
    } finally {
      await c.stop();
    }
    expectNothingLeft();
  });

  test("two containers on the bridge ping each other", async () => {
    const a = await startContainer("ping-a", [], ["sleep", "30"]);
    const b = await startContainer("ping-b", [], ["sleep", "30"]);
    try {
      const ipA = containerAddress(a.netns).address;
      const ipB = containerAddress(b.netns).address;
      expect(ipA).not.toBe(ipB);
      expect(sh(["ip", "netns", "exec", a.netns, "ping", "-c", "1", "-W", "2", ipB]).code).toBe(0);
      expect(sh(["ip", "netns", "exec", b.netns, "ping", "-c", "1", "-W", "2", ipA]).code).toBe(0);
      // Both reach the gateway, i.e. the host.
      const gw = ipj<any[]>(["-4", "addr", "show", "tsnet0"])[0].addr_info[0].local;
      expect(sh(["ip", "netns", "exec", a.netns, "ping", "-c", "1", "-W", "2", gw]).code).toBe(0);
    } finally {
      await a.stop();
      await b.stop();
    }
    expectNothingLeft();
  });

  test("runs started at once get distinct addresses; a released address is not handed out again at once", async () => {
    const n = 12;
    const procs = Array.from({ length: n }, () =>
      Bun.spawn([TSNET, "run", "--rm", "--", "sh", "-c", "ip -j -4 addr show eth0; sleep 0.3"], { stdout: "pipe", stderr: "pipe" }),
    );
    const outs = await Promise.all(procs.map(async (p) => ({ code: await p.exited, out: await new Response(p.stdout).text() })));
    expect(outs.every((o) => o.code === 0)).toBe(true);
    const addrs = outs.map((o) => JSON.parse(o.out)[0].addr_info[0].local as string);
    expect(new Set(addrs).size).toBe(n);
    // Round-robin, as Docker's IPAM: the kernel may still be removing a released address's old
    // veth, so the next run gets a fresh address rather than the lowest free one.
    const next = tsnet(["run", "--rm", "--", "ip", "-j", "-4", "addr", "show", "eth0"]);
    const fresh = JSON.parse(next.stdout)[0].addr_info[0].local as string;
    expect(addrs).not.toContain(fresh);
    expect(fresh).not.toBe("10.77.0.1");
    expectNothingLeft();
  });
});


afterAll(() => {
  // Leave the throwaway host tidy for the other test files.
  expect(veths()).toEqual([]);
});
