// The one port model (src/ip/port.ts) and what turns into it: -p parsing (IPv6 in brackets), a
// network's default host addresses (dual stack, host_binding_ipv4), records read back (the
// numeric hostIp of records written before IPv6 included), ports aimed at a container's
// addresses, map elements of both families, --expose ranges. Root-free.
import { describe, expect, test } from "bun:test";
import { formatIp, parseIp, type IpAddress } from "../src/ip/addr.ts";
import { ANY_V4, ANY_V6, aimPorts, clashes, describePort, formatHostPort, portFromJson, portToJson, portsFromJson, type PublishedPort } from "../src/ip/port.ts";
import { parsePortRange, parsePublish, parsePublishAll, resolvePorts } from "../src/network/ports.ts";
import { HOSTIP_PORTS6_MAP, HOSTIP_PORTS_MAP, PORTS6_MAP, PORTS_MAP, portElements } from "../src/nat/ruleset.ts";
import { loadRecord } from "../src/state/containers.ts";
import { UsageError } from "../src/errors/errors.ts";

const ip = (s: string): IpAddress => parseIp(s)!;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function refusal(spec: string): string {
  try {
    parsePublishAll([spec]);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`-p ${spec} was accepted`);
}

describe("-p", () => {
  test("an IPv6 host address in brackets, IPv4 as before", () => {
    expect(parsePublish("[::1]:8081:80")).toEqual([{ proto: "tcp", hostIp: "::1", hostPort: 8081, containerPort: 80 }]);
    expect(parsePublish("[::]:8080:80/udp")).toEqual([{ proto: "udp", hostIp: "::", hostPort: 8080, containerPort: 80 }]);
    expect(parsePublish("[2001:DB8::0001]::80")).toEqual([{ proto: "tcp", hostIp: "2001:db8::1", hostPort: 0, containerPort: 80 }]);
    expect(parsePublish("[fd00::1]:8080-8081:80-81").map((p) => p.hostPort)).toEqual([8080, 8081]);
    expect(parsePublish("127.0.0.1:8080:80")).toEqual([{ proto: "tcp", hostIp: "127.0.0.1", hostPort: 8080, containerPort: 80 }]);
    expect(parsePublish("8080:80")).toEqual([{ proto: "tcp", hostPort: 8080, containerPort: 80 }]);
  });

  test("bad IPv6 forms are one clear line each", () => {
    for (const [spec, why] of [
      ["::1:8080:80", /too many ':' \(an IPv6 address goes in brackets: \[::1\]:8080:80\)/],
      ["[::1:8080:80", /no "\]" closes/],
      ["[1.2.3.4]:80:80", /"1\.2\.3\.4" is not an IPv6 address/],
      ["[::1]8080:80", /must be followed by ":HOST_PORT:CONTAINER_PORT"/],
      ["[::1]:80", /give HOST_PORT:CONTAINER_PORT/],
      ["[::g]:80:80", /"::g" is not an IPv6 address/],
      ["::1:80:80:80", /too many ':'/],
    ] as const) {
      const m = refusal(spec);
      expect(m).toMatch(why);
      expect(m).toContain(`invalid -p "${spec}"`);
      expect(m).toContain("-p [::1]:8080:80");
      expect(m.split("\n").length).toBe(1);
    }
  });

  test("the same host port twice: refused when the addresses meet, allowed on two families' own addresses", () => {
    expect(() => parsePublishAll(["8080:80", "[::1]:8080:81"])).toThrow(/published twice/);
    expect(() => parsePublishAll(["[::1]:8080:80", "[::1]:8080:81"])).toThrow(/published twice/);
    expect(parsePublishAll(["127.0.0.1:8080:80", "[::1]:8080:80"]).length).toBe(2);
  });

  test("without an address: 0.0.0.0, with :: too on a dual-stack network, host_binding_ipv4 instead of 0.0.0.0", () => {
    const req = parsePublish("8080:80");
    expect(resolvePorts(req, { ipv6: false })).toEqual([{ proto: "tcp", hostIp: ANY_V4, hostPort: 8080, containerPort: 80 }]);
    expect(resolvePorts(req, { ipv6: true }).map((p) => formatHostPort(p.hostIp, p.hostPort))).toEqual(["0.0.0.0:8080", "[::]:8080"]);
    expect(resolvePorts(req, { ipv6: true, hostBindingIpv4: ip("192.0.2.1") }).map((p) => formatHostPort(p.hostIp, p.hostPort))).toEqual(["192.0.2.1:8080", "[::]:8080"]);
    // A named address is kept as it is, whatever the network.
    expect(resolvePorts(parsePublish("[::1]:8081:80"), { ipv6: false, hostBindingIpv4: ip("192.0.2.1") }).map((p) => describePort(p))).toEqual(["[::1]:8081->80/tcp"]);
  });
});

describe("the port model", () => {
  const p6: PublishedPort = { proto: "tcp", hostIp: ip("::1"), hostPort: 8081, containerPort: 80 };

  test("JSON both ways; records written before IPv6 (numeric hostIp) still read", () => {
    expect(portToJson(p6)).toEqual({ proto: "tcp", hostIp: "::1", hostPort: 8081, containerPort: 80 });
    expect(portFromJson(JSON.parse(JSON.stringify(portToJson(p6))))).toEqual(p6);
    expect(portFromJson({ proto: "tcp", hostIp: 0, hostPort: 8080, containerPort: 80 })).toEqual({ proto: "tcp", hostIp: ANY_V4, hostPort: 8080, containerPort: 80 });
    expect(portFromJson({ proto: "udp", hostIp: 0x7f000001, hostPort: 53, containerPort: 53 })?.hostIp).toEqual(ip("127.0.0.1"));
    for (const bad of [{ proto: "sctp", hostIp: 0, hostPort: 1, containerPort: 1 }, { proto: "tcp", hostIp: "x", hostPort: 1, containerPort: 1 }, { proto: "tcp", hostIp: -1, hostPort: 1, containerPort: 1 }, { proto: "tcp", hostPort: 1, containerPort: 1 }, { proto: "tcp", hostIp: "::", hostPort: 1, containerPort: 0 }]) {
      expect(portFromJson(bad)).toBeUndefined();
    }
    expect(portsFromJson([{ proto: "tcp", hostIp: 0, hostPort: 1, containerPort: 1 }, "x"])).toBeUndefined();
  });

  test("a container record of the old form loads into the model; a bad port is refused by name", () => {
    const id = "a".repeat(64);
    const rec = { id, name: "old", command: ["true"], mode: "bridge", status: "running", created: "2026-01-01T00:00:00Z", ports: [{ proto: "tcp", hostIp: 0, hostPort: 8080, containerPort: 80 }, { proto: "tcp", hostIp: 2130706433, hostPort: 8081, containerPort: 80 }] };
    const loaded = loadRecord(id, JSON.stringify(rec))!;
    expect(loaded.ports!.map(describePort)).toEqual(["0.0.0.0:8080->80/tcp", "127.0.0.1:8081->80/tcp"]);
    expect(() => loadRecord(id, JSON.stringify({ ...rec, ports: [{ proto: "tcp", hostIp: "nowhere", hostPort: 1, containerPort: 1 }] }))).toThrow(/field ports/);
  });

  test("aimed at the container's address of the host address's family; ::1 is the relay's, not the kernel's", () => {
    const ports = resolvePorts([...parsePublish("8080:80"), ...parsePublish("[::1]:8081:80"), ...parsePublish("[fd00::9]:8082:80")], { ipv6: true });
    const aimed = aimPorts(ports, [ip("10.1.0.2"), ip("fd00:1::2")]);
    expect(aimed.map((p) => `${describePort(p)} at ${formatIp(p.containerIp)}`)).toEqual([
      "0.0.0.0:8080->80/tcp at 10.1.0.2",
      "[::]:8080->80/tcp at fd00:1::2",
      "[fd00::9]:8082->80/tcp at fd00:1::2",
    ]);
    // An endpoint with only an IPv4 address: the IPv6 ports have nothing to lead to.
    expect(aimPorts(ports, [ip("10.1.0.2")]).map(describePort)).toEqual(["0.0.0.0:8080->80/tcp"]);
  });

  test("clashes: same protocol and port, overlapping addresses of one family", () => {
    const at = (a: string, port = 8080): PublishedPort => ({ proto: "tcp", hostIp: ip(a), hostPort: port, containerPort: 80 });
    expect(clashes(at("0.0.0.0"), at("127.0.0.1"))).toBe(true);
    expect(clashes(at("::"), at("::1"))).toBe(true);
    expect(clashes(at("0.0.0.0"), at("::"))).toBe(false);
    expect(clashes(at("127.0.0.1"), at("127.0.0.2"))).toBe(false);
    expect(clashes(at("::"), at("::", 8081))).toBe(false);
  });

  test("map elements: each family in its own maps, 16-byte addresses for IPv6", () => {
    const adds = portElements("c0ffee000001", "web", [
      { proto: "tcp", hostIp: ANY_V4, hostPort: 8080, containerPort: 80, containerIp: ip("10.1.0.2") },
      { proto: "tcp", hostIp: ANY_V6, hostPort: 8080, containerPort: 80, containerIp: ip("fd00:1::2") },
      { proto: "udp", hostIp: ip("2001:db8::1"), hostPort: 53, containerPort: 5353, containerIp: ip("fd00:1::2") },
      { proto: "tcp", hostIp: ip("127.0.0.1"), hostPort: 8081, containerPort: 80, containerIp: ip("10.1.0.2") },
    ]);
    expect(adds.map((a) => a.set)).toEqual([PORTS_MAP, HOSTIP_PORTS_MAP, PORTS6_MAP, HOSTIP_PORTS6_MAP]);
    const six = adds.find((a) => a.set === PORTS6_MAP)!.elements[0]!;
    // key: proto (padded to 4) . port (padded); data: 16-byte address . port (padded).
    expect(hex(six.key)).toBe("06000000" + "1f900000");
    expect(hex(six.data!)).toBe("fd000001000000000000000000000002" + "00500000");
    expect(six.comment).toBe("c0ffee000001 web tcp 8080 -> [fd00:1::2]:80");
    const keyed = adds.find((a) => a.set === HOSTIP_PORTS6_MAP)!.elements[0]!;
    expect(hex(keyed.key)).toBe("20010db8000000000000000000000001" + "11000000" + "00350000");
    expect(keyed.comment).toBe("c0ffee000001 web udp [2001:db8::1]:53 -> [fd00:1::2]:5353");
    expect(() => portElements("t", "n", [{ proto: "tcp", hostIp: ANY_V6, hostPort: 1, containerPort: 1, containerIp: ip("10.0.0.1") }])).toThrow(/differ in family/);
  });

  test("map element comments nft can print and read back: at most 127 bytes, no '\"', '\\' or control characters", () => {
    const long = "a".repeat(63);
    const far = { proto: "tcp" as const, hostIp: ip("fd00:1234:5678:9abc:def0:1234:5678:9abc"), hostPort: 65535, containerPort: 65535, containerIp: ip("fd00:aaaa:bbbb:cccc::2") };
    // 163 bytes with the route: the route goes (the element's key and data say it), the owner stays.
    expect(portElements("c0ffee000001", long, [far])[0]!.elements[0]!.comment).toBe(`c0ffee000001 ${long} tcp`);
    const near = { ...far, hostIp: ip("2001:db8::1"), containerIp: ip("fd00:1::2") };
    expect(portElements("c0ffee000001", long, [near])[0]!.elements[0]!.comment).toBe(`c0ffee000001 ${long} tcp [2001:db8::1]:65535 -> [fd00:1::2]:65535`);
    // A CNI interface name is any the kernel takes: '"', '\\' and control characters become '?'.
    expect(portElements("c0ffee000001", 'cni:c1:e"x\\y\x1b', [near])[0]!.elements[0]!.comment).toBe("c0ffee000001 cni:c1:e?x?y? tcp [2001:db8::1]:65535 -> [fd00:1::2]:65535");
  });
});

describe("--expose and the ps filters' ports", () => {
  test("PORT, PORT/PROTO and ranges; bad ones are one line naming the flag", () => {
    expect(parsePortRange("80", "--expose")).toEqual({ proto: "tcp", lo: 80, hi: 80 });
    expect(parsePortRange("9000-9010/UDP", "--expose")).toEqual({ proto: "udp", lo: 9000, hi: 9010 });
    for (const bad of ["", "x", "0", "70000", "90-80", "80/sctp", "80-"]) {
      expect(() => parsePortRange(bad, "--expose")).toThrow(new RegExp(`invalid --expose "${bad}"`));
    }
  });
});
