// -p: published ports through nf_tables DNAT, reached from every place a user would try, with
// nginx as the server and curl, ping and nft as the witnesses.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import {
  UDP_ECHO, curl, useNeighbour, netnsNames, nginxSite, records, sh,
  startContainer, tsnet, udpAsk, veths, waitFor,
} from "./helpers.ts";

const site = nginxSite("hello from nginx\n");

useNeighbour();
afterAll(() => {
  rmSync(site.dir, { recursive: true, force: true });
});

const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
// A port's map element (`tcp . 8320 comment ... : ADDRESS . 80`): a plain search for the number
// would also find it inside a bridge's random name.
const elementFor = (port: number) => new RegExp(` \\. ${port} `);

async function serving(url: string, netns?: string): Promise<string> {
  return await waitFor(`${url} to answer`, () => {
    const r = curl(url, netns);
    return r.code === 0 && r.stdout;
  });
}

describe("a published TCP port", () => {
  test("answers on localhost, on each host address, from a neighbour, from other containers and from the container itself", async () => {
    const web = await startContainer("web", ["-p", "8080:80"], site.command);
    try {
      expect(await serving("http://127.0.0.1:8080/")).toBe("hello from nginx\n");
      expect(curl("http://192.0.2.1:8080/").stdout).toBe("hello from nginx\n"); // the host's other address
      expect(curl("http://10.77.0.1:8080/").stdout).toBe("hello from nginx\n"); // the bridge's address
      expect(curl("http://192.0.2.1:8080/", "nb").stdout).toBe("hello from nginx\n"); // another host
      // Another container, through the host's addresses.
      const other = tsnet(["run", "--rm", "--", "curl", "-sS", "--max-time", "2", "http://192.0.2.1:8080/"]);
      expect(other.stdout).toBe("hello from nginx\n");
      // The container itself, through the host's address (hairpin).
      const self = tsnet(["run", "--rm", "--network", "container:web", "--", "curl", "-sS", "--max-time", "2", "http://192.0.2.1:8080/"]);
      expect(self.stderr).toBe("");
      expect(self.stdout).toBe("hello from nginx\n");
      // The element is in tsnet's map, tagged with the container, while it runs.
      const rec = records().find((r) => r.name === "web");
      expect(ruleset()).toMatch(new RegExp(`tcp \\. 8080 comment "${rec.id.slice(0, 12)} web tcp 8080 -> 10\\.77\\.0\\.\\d+:80" : 10\\.77\\.0\\.\\d+ \\. 80`));
    } finally {
      await web.stop();
    }
    expect(ruleset()).not.toMatch(elementFor(8080));
    expect(curl("http://127.0.0.1:8080/", undefined, 1).code).not.toBe(0);
    expect(veths()).toEqual([]);
    expect(netnsNames()).toEqual([]);
  });

  test("ranges, a chosen free port, and tcp and udp on the same number", async () => {
    const c = await startContainer("multi", ["-p", "8100-8101:80-81", "-p", "80", "-p", "5353:53/udp", "-p", "5353:53/tcp"], ["sh", "-c", `${site.command.map((a) => `'${a}'`).join(" ")} & exec python3 -c '${UDP_ECHO[2]}'`]);
    try {
      expect(await serving("http://127.0.0.1:8100/")).toBe("hello from nginx\n");
      expect(curl("http://127.0.0.1:8101/").stdout).toBe("hello from nginx\n");
      const rec = records().find((r) => r.name === "multi");
      const chosen = rec.ports.find((p: any) => p.containerPort === 80 && p.hostPort !== 8100);
      expect(chosen.hostPort).toBeGreaterThan(1023);
      expect(curl(`http://127.0.0.1:${chosen.hostPort}/`).stdout).toBe("hello from nginx\n");
      // The UDP server starts beside nginx; wait until it is up before judging.
      expect(await waitFor("udp echo", () => udpAsk("127.0.0.1", 5353))).toBe("echo:ping");
      expect(udpAsk("192.0.2.1", 5353, "nb")).toBe("echo:ping");
      expect(ruleset()).toMatch(/udp \. 5353 comment "[0-9a-f]{12} multi udp 5353 -> /);
      expect(ruleset()).toMatch(/tcp \. 5353 comment "[0-9a-f]{12} multi tcp 5353 -> /);
    } finally {
      await c.stop();
    }
    expect(ruleset()).not.toContain("multi");
  });

  test("1,000 ports in one run: 1,000 elements while it runs, none after", async () => {
    const c = await startContainer("thousand", ["-p", "21000-21999:21000-21999"], ["sleep", "30"]);
    try {
      const elements = ruleset().match(/comment "[0-9a-f]{12} thousand tcp \d+ -> /g) ?? [];
      expect(elements.length).toBe(1000);
    } finally {
      await c.stop();
    }
    expect(ruleset()).not.toContain("thousand");
  });

  test("the chosen host port is reported on stderr", () => {
    const r = tsnet(["run", "--rm", "-p", "80", "--", "true"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^tsnet: published 0\.0\.0\.0:\d+->80\/tcp\n$/);
  });
});

  test("the nf_tables sockets a run leaves to the kernel's garbage collector are released, and their namespaces with them", async () => {
    // tsnet closes its nf_tables sockets through an unreachable unix socket (ffi/libc.ts,
    // closeInKernelWorker), so the kernel frees them a little later: they must not accumulate.
    const nftSockets = () => readFileSync("/proc/net/netlink", "utf8").split("\n").filter((l) => l.trim().split(/\s+/)[1] === "12").length;
    const before = nftSockets();
    const vethsBefore = veths();
    for (let i = 0; i < 5; i++) expect(tsnet(["run", "--rm", "-p", `${8100 + i}:80`, "--", "true"]).code).toBe(0);
    await waitFor("the nf_tables sockets to be released", () => nftSockets() <= before, 5000);
    // The resolver's socket was opened inside the container's namespace and holds it until
    // freed: a namespace kept would keep its veth pair (veths() waits for dying ones).
    expect(veths()).toEqual(vethsBefore);
  });

describe("a port published on 127.0.0.1", () => {
  test("answers only on the host's loopback", async () => {
    const c = await startContainer("local", ["-p", "127.0.0.1:8081:80"], site.command);
    try {
      expect(await serving("http://127.0.0.1:8081/")).toBe("hello from nginx\n");
      expect(curl("http://192.0.2.1:8081/", undefined, 1).code).not.toBe(0);
      expect(curl("http://192.0.2.1:8081/", "nb", 1).code).not.toBe(0);
    } finally {
      await c.stop();
    }
  });

  test("a neighbour routing 127.0.0.1 to the host is dropped (CVE-2020-8558 class)", async () => {
    const c = await startContainer("local2", ["-p", "127.0.0.1:8082:80"], site.command);
    // The neighbour sends 127.0.0.1 out of its eth0 towards the host, as an attacker would.
    const setup = [
      "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet",
      "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet",
      "ip rule add pref 10 lookup local",
      "ip rule del pref 0",
      "ip rule add pref 5 to 127.0.0.1 lookup 100",
      "ip route add 127.0.0.1 via 192.0.2.1 dev eth0 onlink table 100",
    ].join(" && ");
    try {
      expect(await serving("http://127.0.0.1:8082/")).toBe("hello from nginx\n");
      const r = sh(["ip", "netns", "exec", "nb", "sh", "-c", setup]);
      expect(r.stderr).toBe("");
      const dropped = () => Number(/guard.*?packets (\d+)/s.exec(ruleset())?.[1] ?? -1);
      const before = dropped();
      expect(curl("http://127.0.0.1:8082/", "nb", 1).code).not.toBe(0);
      // The packets did reach the host and were dropped by the guard, not lost on the way.
      expect(dropped()).toBeGreaterThan(before);
    } finally {
      sh(["ip", "netns", "exec", "nb", "sh", "-c", "ip rule add pref 0 lookup local; ip rule del pref 10; ip rule del pref 5; echo 0 > /proc/sys/net/ipv4/conf/all/route_localnet"]);
      await c.stop();
    }
  });
});

describe("outbound", () => {
  test("traffic leaving by another interface is masqueraded to the host's address", async () => {
    const log = "/tmp/tsnet-world.log";
    const world = Bun.spawn(["ip", "netns", "exec", "nb", "python3", "-m", "http.server", "9000", "--bind", "192.0.2.2"], { stdout: "ignore", stderr: Bun.file(log) });
    try {
      await waitFor("world server", () => curl("http://192.0.2.2:9000/").code === 0);
      const r = tsnet(["run", "--rm", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", "http://192.0.2.2:9000/"]);
      expect(r.stdout).toBe("200");
      const lines = (await Bun.file(log).text()).trim().split("\n");
      expect(lines.at(-1)).toStartWith("192.0.2.1 ");
      expect(lines.some((l) => l.startsWith("10.77."))).toBe(false);
    } finally {
      world.kill();
      await world.exited;
      rmSync(log, { force: true });
    }
  });
});

describe("conflicts", () => {
  test("a host port published by another container is refused, naming it; released when it ends", async () => {
    const a = await startContainer("first", ["-p", "8090:80"], site.command);
    try {
      const r = tsnet(["run", "--rm", "--name", "second", "-p", "8090:80", "--", "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/host port 8090\/tcp is already in use by container "first"/);
      expect(records().find((x) => x.name === "second")).toBeUndefined();
    } finally {
      await a.stop();
    }
    expect(tsnet(["run", "--rm", "-p", "8090:80", "--", "true"]).code).toBe(0);
  });

  test("a host port held by a host program is refused, naming the program", async () => {
    const server = Bun.spawn(["python3", "-m", "http.server", "8091", "--bind", "0.0.0.0"], { stdout: "ignore", stderr: "ignore" });
    try {
      await waitFor("host server", () => curl("http://127.0.0.1:8091/").code === 0);
      const before = veths();
      const r = tsnet(["run", "--rm", "-p", "8091:80", "--", "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`host port 8091/tcp is already in use by python3 (pid ${server.pid})`);
      expect(veths()).toEqual(before);
    } finally {
      server.kill();
      await server.exited;
    }
  });

  test("while published, the host port is reserved against host programs", async () => {
    const c = await startContainer("reserver", ["-p", "8092:80"], ["sleep", "30"]);
    try {
      const bind = `import socket; s = socket.socket(); s.bind(("0.0.0.0", 8092))`;
      const r = sh(["python3", "-c", bind]);
      expect(r.stderr).toContain("Address already in use");
    } finally {
      await c.stop();
    }
  });
});

describe("bad -p", () => {
  for (const bad of ["abc", "70000:80", "80:", "8080-8090:80", "1.2.3:80:80", "8080:80/sctpx"]) {
    test(`"${bad}" is refused with a correct form shown`, () => {
      const r = tsnet(["run", "--rm", "-p", bad, "--", "true"]);
      expect(r.code).toBe(125);
      const lines = r.stderr.trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain(`"${bad}"`);
      expect(lines[0]).toContain("-p 8080:80");
      expect(veths()).toEqual([]);
    });
  }
});
