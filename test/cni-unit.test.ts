// The CNI plugin's parts that need no kernel: what its path loads, the libc file calls it uses
// instead of node:fs, and the reading of configurations and results.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync as nodeRead, rmSync, statSync, writeFileSync as nodeWrite } from "node:fs";
import { dirname, resolve } from "node:path";
import * as ffs from "../ffi/fs.ts";
import { parseConf, readEnv } from "../src/cni/config.ts";
import { readResult, toVersion } from "../src/cni/spec.ts";

describe("what the plugin's path loads", () => {
  // Bun builds node:fs on first import, 1.2 ms of every plugin call (ffi/fs.ts says why); the
  // modules a CNI request loads (src/cli/main.ts imports src/cni/main.ts, which imports one
  // command's module) must keep to ffi/fs.ts.
  test("no module statically imported from src/cni/ imports node:fs or node:crypto", () => {
    const seen = new Map<string, string[]>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      const src = nodeRead(file, "utf8");
      const specs = [...src.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)"/gms)].filter((m) => !m[1]).map((m) => m[2]!);
      seen.set(file, specs);
      for (const s of specs) if (s.startsWith(".")) walk(resolve(dirname(file), s));
    };
    const root = resolve(import.meta.dir, "../src/cni");
    for (const f of ["main", "add", "del", "check", "gc", "status"]) walk(`${root}/${f}.ts`);
    const offenders = [...seen].filter(([, specs]) => specs.some((s) => s === "node:fs" || s === "node:crypto")).map(([f]) => f);
    expect(offenders).toEqual([]);
    expect(seen.size).toBeGreaterThan(30);
  });
});

describe("ffi/fs.ts: libc's file calls with node:fs's semantics", () => {
  test("write, read, exclusive create, rename, list, unlink, mkdir -p, and node's error codes", () => {
    const dir = mkdtempSync("/tmp/tsnet-ffs-");
    try {
      ffs.mkdirSync(`${dir}/a/b/c`, { recursive: true, mode: 0o700 });
      ffs.mkdirSync(`${dir}/a/b/c`, { recursive: true });
      expect(statSync(`${dir}/a/b/c`).mode & 0o777).toBe(0o700);
      ffs.writeFileSync(`${dir}/a/f`, "héllo\n", { mode: 0o600 });
      expect(nodeRead(`${dir}/a/f`, "utf8")).toBe("héllo\n");
      expect(statSync(`${dir}/a/f`).mode & 0o777).toBe(0o600);
      const big = "x".repeat(200_000);
      nodeWrite(`${dir}/big`, big);
      expect(ffs.readFileSync(`${dir}/big`, "utf8")).toBe(big);
      expect(() => ffs.writeFileSync(`${dir}/a/f`, "again", { flag: "wx" })).toThrow(expect.objectContaining({ code: "EEXIST", syscall: "open" }));
      ffs.renameSync(`${dir}/a/f`, `${dir}/a/g`);
      expect(ffs.readdirSync(`${dir}/a`).sort()).toEqual(["b", "g"]);
      ffs.unlinkSync(`${dir}/a/g`);
      expect(() => ffs.readFileSync(`${dir}/a/g`, "utf8")).toThrow(expect.objectContaining({ code: "ENOENT", errno: -2, path: `${dir}/a/g` }));
      expect(() => ffs.unlinkSync(`${dir}/a/g`)).toThrow(expect.objectContaining({ code: "ENOENT" }));
      expect(() => ffs.readdirSync(`${dir}/nope`)).toThrow(expect.objectContaining({ code: "ENOENT" }));
      const fd = ffs.openSync(`${dir}/app`, "a", 0o600);
      ffs.writeSync(fd, Buffer.from("1"));
      ffs.closeSync(fd);
      ffs.writeFileSync(`${dir}/app`, "2", { flag: "a" });
      expect(nodeRead(`${dir}/app`, "utf8")).toBe("12");
      expect(() => ffs.accessSync(`${dir}/app`, ffs.constants.X_OK)).toThrow(expect.objectContaining({ code: "EACCES" }));
      expect(ffs.readlinkSync("/proc/self/ns/net")).toMatch(/^net:\[\d+\]$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("configurations and results", () => {
  const env = readEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/x", CNI_IFNAME: "eth0", CNI_ARGS: "IgnoreUnknown=1;IP=10.1.2.3" });

  test("every key is optional; the type defaults to tsnet; CNI_ARGS IP= is a requested address", () => {
    const c = parseConf(JSON.stringify({ cniVersion: "1.0.0", name: "n" }), env);
    expect(c).toMatchObject({ cniVersion: "1.0.0", name: "n", type: "tsnet", portMappings: [], routes: [], aliases: [] });
    expect(c.ip).toEqual({ family: 4, value: 0x0a010203n });
    expect(c.subnet).toBeUndefined();
    expect(c.ipMasq).toBeUndefined();
  });

  test("host-local's forms of subnet and gateway are read from tsnet's own ipam section", () => {
    const c = parseConf(JSON.stringify({ cniVersion: "1.0.0", name: "n", ipam: { type: "tsnet", ranges: [[{ subnet: "10.9.0.0/24", gateway: "10.9.0.254" }]], routes: [{ dst: "10.10.0.0/16", gw: "10.9.0.1" }] } }), env);
    expect(c).toMatchObject({ subnet: "10.9.0.0/24", gateway: "10.9.0.254" });
    expect(c.routes).toEqual([{ dst: { family: 4, net: 0x0a0a0000n, prefix: 16 }, gw: { family: 4, value: 0x0a090001n } }]);
    expect(() => parseConf(JSON.stringify({ cniVersion: "1.0.0", name: "n", subnet: "10.9.0.0/24", ipam: { subnet: "10.8.0.0/24" } }), env)).toThrow(/differ/);
    expect(parseConf(JSON.stringify({ cniVersion: "1.0.0", name: "n", ipam: { type: "host-local", subnet: "10.9.0.0/24" } }), env).ipamPlugin).toBe("host-local");
  });

  test("port mappings: protocol defaults to tcp, an empty or 0.0.0.0 hostIP means every address, a host port twice is refused", () => {
    const pm = (m: unknown[]) => parseConf(JSON.stringify({ cniVersion: "1.0.0", name: "n", runtimeConfig: { portMappings: m } }), env).portMappings;
    expect(pm([{ hostPort: 80, containerPort: 8080 }, { hostPort: 53, containerPort: 53, protocol: "UDP", hostIP: "127.0.0.1" }, { hostPort: 81, containerPort: 81, hostIP: "0.0.0.0" }])).toEqual([
      { proto: "tcp", hostIp: 0, hostPort: 80, containerPort: 8080 },
      { proto: "udp", hostIp: 0x7f000001, hostPort: 53, containerPort: 53 },
      { proto: "tcp", hostIp: 0, hostPort: 81, containerPort: 81 },
    ]);
    expect(() => pm([{ hostPort: 80, containerPort: 1 }, { hostPort: 80, containerPort: 2 }])).toThrow(/mapped twice/);
    expect(() => pm([{ hostPort: 0, containerPort: 1 }])).toThrow(/"hostPort" must be a port/);
  });

  test("a 0.4.0 result reads into the 1.x shape and is written back with its ips' version", () => {
    const r = readResult({ cniVersion: "0.4.0", interfaces: [{ name: "eth0", sandbox: "/x" }], ips: [{ version: "4", address: "10.1.0.2/24", interface: 0 }], dns: {} }, "prevResult");
    expect(r.ips).toEqual([{ address: "10.1.0.2/24", interface: 0 }]);
    expect(toVersion(r, "0.4.0").ips).toEqual([{ version: "4", address: "10.1.0.2/24", interface: 0 }]);
    expect(toVersion(r, "1.1.0").ips).toEqual([{ address: "10.1.0.2/24", interface: 0 }]);
    expect(() => readResult({ ips: [{ gateway: "x" }] }, "prevResult")).toThrow(/an ip has no address/);
  });
});
