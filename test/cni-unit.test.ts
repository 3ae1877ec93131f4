// The CNI plugin's parts that need no kernel: the reading of configurations and results.
import { describe, expect, test } from "bun:test";
import { parseConf, readEnv } from "../src/cni/config.ts";
import { readResult, toVersion } from "../src/cni/spec.ts";

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

  test("port mappings: protocol defaults to tcp, no hostIP means every address of both families, 0.0.0.0 every IPv4 one, a host port twice is refused", () => {
    const pm = (m: unknown[]) => parseConf(JSON.stringify({ cniVersion: "1.0.0", name: "n", runtimeConfig: { portMappings: m } }), env).portMappings;
    expect(pm([{ hostPort: 80, containerPort: 8080 }, { hostPort: 53, containerPort: 53, protocol: "UDP", hostIP: "127.0.0.1" }, { hostPort: 81, containerPort: 81, hostIP: "0.0.0.0" }])).toEqual([
      { proto: "tcp", hostIp: { family: 4, value: 0n }, hostPort: 80, containerPort: 8080 },
      // No hostIP: both families (an IPv4-only attachment gets no IPv6 element).
      { proto: "tcp", hostIp: { family: 6, value: 0n }, hostPort: 80, containerPort: 8080 },
      { proto: "udp", hostIp: { family: 4, value: 0x7f000001n }, hostPort: 53, containerPort: 53 },
      { proto: "tcp", hostIp: { family: 4, value: 0n }, hostPort: 81, containerPort: 81 },
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
