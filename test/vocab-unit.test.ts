// Docker's network vocabulary without a kernel: `network create -o` and `--ip-range` as parsed and
// checked, the lease range an --ip-range gives, `network ls --filter` with Docker's rules, the
// enable_icc=false rule in tsnet's table, and the resolver's answers from leases (A, AAAA, NODATA,
// PTR for both families).
import { describe, expect, test } from "bun:test";
import { complete } from "../src/cli/complete.ts";
import { networkFilter } from "../src/commands/network/ls.ts";
import { TYPE_A, TYPE_AAAA, TYPE_PTR, CLASS_IN, RCODE_NOERROR, reverseV6 } from "../src/dns/message.ts";
import { UsageError } from "../src/errors/errors.ts";
import { formatIp, formatPrefix, ipFromBytes, parseIp, parsePrefix } from "../src/ip/addr.ts";
import { natTable } from "../src/nat/ruleset.ts";
import { checkIpRanges, leaseRange, usableRange } from "../src/network/networks.ts";
import { parseDriverOptions } from "../src/network/options.ts";
import { answerFromLeases, type NamedLeases } from "../src/network/resolver.ts";
import type { Lease } from "../src/state/leases.ts";
import type { NetworkRecord } from "../src/state/networks.ts";

/** The UsageError message fn throws (and that it throws one). */
function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error("no UsageError thrown");
}

describe("network create -o", () => {
  test("Docker's bridge options become settings; unknown keys are kept as given", () => {
    const d = parseDriverOptions([
      "com.docker.network.bridge.name=br-web",
      "com.docker.network.driver.mtu=1400",
      "com.docker.network.bridge.enable_icc=false",
      "com.docker.network.bridge.enable_ip_masquerade=0",
      "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
      "vendor.thing=a=b",
      "flag",
    ]);
    expect(d).toEqual({
      bridge: "br-web", mtu: 1400, icc: false, ipMasq: false, hostBindingIpv4: "127.0.0.1",
      options: {
        "com.docker.network.bridge.name": "br-web",
        "com.docker.network.driver.mtu": "1400",
        "com.docker.network.bridge.enable_icc": "false",
        "com.docker.network.bridge.enable_ip_masquerade": "0",
        "com.docker.network.bridge.host_binding_ipv4": "127.0.0.1",
        "vendor.thing": "a=b",
        flag: "",
      },
    });
    expect(parseDriverOptions(["com.docker.network.bridge.enable_icc=True"]).icc).toBe(true);
    // The last of a key given twice, as Docker's map keeps it.
    expect(parseDriverOptions(["com.docker.network.driver.mtu=1300", "com.docker.network.driver.mtu=9000"]).mtu).toBe(9000);
    expect(parseDriverOptions([])).toEqual({ options: {} });
  });

  test("bad values get one line naming the option", () => {
    const cases: [string, string][] = [
      ["com.docker.network.driver.mtu=20", 'invalid -o com.docker.network.driver.mtu="20": give an MTU from 68 to 65535'],
      ["com.docker.network.driver.mtu=1500b", 'invalid -o com.docker.network.driver.mtu="1500b": give an MTU from 68 to 65535'],
      ["com.docker.network.driver.mtu=70000", 'invalid -o com.docker.network.driver.mtu="70000": give an MTU from 68 to 65535'],
      ["com.docker.network.bridge.enable_icc=maybe", 'invalid -o com.docker.network.bridge.enable_icc="maybe": give true or false'],
      ["com.docker.network.bridge.enable_ip_masquerade", 'invalid -o com.docker.network.bridge.enable_ip_masquerade="": give true or false'],
      ["com.docker.network.bridge.host_binding_ipv4=::1", 'invalid -o com.docker.network.bridge.host_binding_ipv4="::1": give an IPv4 address of the host, e.g. 127.0.0.1'],
      ["com.docker.network.bridge.host_binding_ipv4=localhost", 'invalid -o com.docker.network.bridge.host_binding_ipv4="localhost": give an IPv4 address of the host, e.g. 127.0.0.1'],
      ["com.docker.network.bridge.name=a-name-too-long-for-linux", 'invalid -o com.docker.network.bridge.name="a-name-too-long-for-linux": give an interface name of 1 to 15 letters, digits, \'_\', \'.\' or \'-\''],
      ["com.docker.network.bridge.name=br/0", 'invalid -o com.docker.network.bridge.name="br/0": give an interface name of 1 to 15 letters, digits, \'_\', \'.\' or \'-\''],
      ["com.docker.network.bridge.name=..", 'invalid -o com.docker.network.bridge.name="..": give an interface name of 1 to 15 letters, digits, \'_\', \'.\' or \'-\''],
      ["=x", 'invalid -o "=x": give KEY=VALUE, e.g. -o com.docker.network.driver.mtu=1400'],
    ];
    for (const [spec, message] of cases) {
      const m = usage(() => parseDriverOptions([spec]));
      expect(m).toBe(message);
      expect(m).not.toContain("\n");
    }
  });
});

describe("network create --ip-range", () => {
  const subnet = parsePrefix("10.80.0.0/24")!;

  test("a range inside the subnet, one per subnet, and only with --subnet", () => {
    const got = checkIpRanges(["10.80.0.128/25"], [subnet]);
    expect([...got].map(([s, r]) => [s, formatPrefix(r)])).toEqual([["10.80.0.0/24", "10.80.0.128/25"]]);
    expect(checkIpRanges([], [subnet]).size).toBe(0);
    expect(usage(() => checkIpRanges(["10.80.0.0/25"], []))).toBe("--ip-range 10.80.0.0/25 needs --subnet: give the subnet the range lies in");
    expect(usage(() => checkIpRanges(["10.81.0.0/25"], [subnet]))).toBe("--ip-range 10.81.0.0/25 is not inside 10.80.0.0/24: give a range inside the subnet");
    // Larger than the subnet it starts in.
    expect(usage(() => checkIpRanges(["10.80.0.0/16"], [subnet]))).toBe("--ip-range 10.80.0.0/16 is not inside 10.80.0.0/24: give a range inside the subnet");
    expect(usage(() => checkIpRanges(["10.80.0.0/26", "10.80.0.64/26"], [subnet]))).toBe(
      "--ip-range 10.80.0.64/26: subnet 10.80.0.0/24 already has --ip-range 10.80.0.0/26; give one range per subnet",
    );
    expect(usage(() => checkIpRanges(["10.80.0.129/25"], [subnet]))).toBe('invalid --ip-range "10.80.0.129/25": host bits are set; did you mean 10.80.0.128/25?');
    expect(usage(() => checkIpRanges(["10.80.0.300/25"], [subnet]))).toContain('invalid --ip-range "10.80.0.300/25": give an address and prefix length');
    // With a subnet of each family, each range finds its own.
    const v6 = parsePrefix("fd00:80::/64")!;
    const both = checkIpRanges(["fd00:80::100/120", "10.80.0.0/26"], [subnet, v6]);
    expect(formatPrefix(both.get("fd00:80::/64")!)).toBe("fd00:80::100/120");
    expect(formatPrefix(both.get("10.80.0.0/24")!)).toBe("10.80.0.0/26");
  });

  test("leases come from the range, clipped to the usable addresses; --ip's range is the whole subnet", () => {
    const text = (r: { first: { family: 4 | 6; value: bigint }; last: { family: 4 | 6; value: bigint } }) => `${formatIp(r.first)}-${formatIp(r.last)}`;
    expect(text(leaseRange({ subnet, ipRange: parsePrefix("10.80.0.128/25")! }))).toBe("10.80.0.128-10.80.0.254");
    expect(text(leaseRange({ subnet, ipRange: parsePrefix("10.80.0.0/26")! }))).toBe("10.80.0.1-10.80.0.63");
    expect(text(leaseRange({ subnet, ipRange: parsePrefix("10.80.0.64/27")! }))).toBe("10.80.0.64-10.80.0.95");
    expect(text(leaseRange({ subnet }))).toBe("10.80.0.1-10.80.0.254");
    expect(text(usableRange({ subnet }))).toBe("10.80.0.1-10.80.0.254");
  });
});

describe("network ls --filter", () => {
  const net = (name: string, o: Partial<NetworkRecord> = {}): NetworkRecord => ({
    id: `${name.padEnd(8, "0").replace(/[^0-9a-f]/g, "e").slice(0, 8)}${"0".repeat(56)}`,
    name, driver: "bridge", bridge: `tsnet-${name}`, subnets: [], internal: false, builtin: false, created: "2026-01-01T00:00:00Z", labels: {}, ...o,
  });
  const all = [
    net("bridge", { builtin: true, id: `aaaa${"0".repeat(60)}` }),
    net("host", { builtin: true, driver: "host", id: `bbbb${"0".repeat(60)}` }),
    net("none", { builtin: true, driver: "null", id: `cccc${"0".repeat(60)}` }),
    net("backend", { labels: { team: "web", tier: "db" }, id: `d1d1${"0".repeat(60)}` }),
    net("frontend", { labels: { team: "web" }, id: `e2e2${"0".repeat(60)}` }),
    net("spare", { labels: { team: "ops" }, id: `f3f3${"0".repeat(60)}` }),
  ];
  const used = new Set(["backend"]);
  const pick = (...specs: string[]) => {
    const m = networkFilter(specs);
    return all.filter((n) => m(n, (x) => used.has(x.name))).map((n) => n.name);
  };

  test("each key as Docker has it", () => {
    expect(pick()).toEqual(["bridge", "host", "none", "backend", "frontend", "spare"]);
    expect(pick("driver=bridge")).toEqual(["bridge", "backend", "frontend", "spare"]);
    expect(pick("driver=null")).toEqual(["none"]);
    expect(pick("name=end")).toEqual(["backend", "frontend"]);
    expect(pick("name=^b")).toEqual(["bridge", "backend"]);
    expect(pick("id=d1d1")).toEqual(["backend"]);
    expect(pick("label=team")).toEqual(["backend", "frontend", "spare"]);
    expect(pick("label=team=web")).toEqual(["backend", "frontend"]);
    expect(pick("scope=local")).toEqual(pick());
    expect(pick("scope=swarm")).toEqual([]);
    expect(pick("type=builtin")).toEqual(["bridge", "host", "none"]);
    expect(pick("type=custom")).toEqual(["backend", "frontend", "spare"]);
    // dangling=true: a user network nothing is on; false: a built-in one or one in use.
    expect(pick("dangling=true")).toEqual(["frontend", "spare"]);
    expect(pick("dangling=1")).toEqual(["frontend", "spare"]);
    expect(pick("dangling=false")).toEqual(["bridge", "host", "none", "backend"]);
  });

  test("the same key twice matches either, except label (all must match); different keys all match", () => {
    expect(pick("name=backend", "name=spare")).toEqual(["backend", "spare"]);
    expect(pick("type=custom", "type=builtin")).toEqual(pick());
    expect(pick("label=team=web", "label=tier")).toEqual(["backend"]);
    expect(pick("label=team", "name=^f", "name=^s")).toEqual(["frontend", "spare"]);
    expect(pick("driver=bridge", "type=builtin")).toEqual(["bridge"]);
    expect(pick("dangling=true", "label=team=web")).toEqual(["frontend"]);
  });

  test("a bad filter is one line, before anything is read", () => {
    expect(usage(() => networkFilter(["nmae=x"]))).toBe('invalid --filter "nmae=x": did you mean "name"? tsnet network ls filters by dangling, driver, id, label, name, scope, type (e.g. --filter type=custom)');
    expect(usage(() => networkFilter(["colour=red"]))).toBe('invalid --filter "colour=red": tsnet network ls filters by dangling, driver, id, label, name, scope, type (e.g. --filter type=custom)');
    expect(usage(() => networkFilter(["type=user"]))).toBe('invalid --filter "type=user": a type is custom or builtin');
    expect(usage(() => networkFilter(["dangling=maybe"]))).toBe('invalid --filter "dangling=maybe": dangling is true or false');
    expect(usage(() => networkFilter(["scope=planet"]))).toBe('invalid --filter "scope=planet": a scope is local, swarm or global');
    expect(usage(() => networkFilter(["name=("]))).toBe('invalid --filter "name=(": "(" is not a regular expression');
    expect(usage(() => networkFilter(["label"]))).toBe('invalid --filter "label": give KEY=VALUE, e.g. --filter label=team=web');
  });

  test("--filter and -o come from the option tables: completion offers their keys", async () => {
    const words = async (w: string[]) => (await complete(w)).map((c) => c.word);
    expect(await words(["network", "ls", "--filter", ""])).toEqual(["dangling=", "driver=", "id=", "label=", "name=", "scope=", "type="]);
    expect(await words(["network", "ls", "-"])).toContain("-f");
    expect(await words(["network", "create", "-o", "com.docker.network.bridge.en"])).toEqual([
      "com.docker.network.bridge.enable_icc=", "com.docker.network.bridge.enable_ip_masquerade=",
    ]);
    expect(await words(["network", "create", "--ip"])).toEqual(["--ipv6", "--ip-range"]);
  });
});

describe("enable_icc=false in tsnet's table", () => {
  const base = { subnets: [], internal: false };
  test("one drop for that bridge, after published ports are accepted; none for other networks", () => {
    const spec = natTable({ networks: [{ ...base, name: "open", bridge: "tsnet-open" }, { ...base, name: "closed", bridge: "br-closed", icc: false }] });
    const forward = spec.chains!.find((c) => c.name === "forward")!.rules!.map((r) => r.comment);
    expect(forward).toEqual([
      "tsnet: an internal network has no way out",
      "tsnet: and no way in",
      "tsnet: published ports are reachable from every network",
      "tsnet: closed: containers cannot reach each other (enable_icc=false)",
      "tsnet: networks are isolated from each other",
    ]);
    const none = natTable({ networks: [{ ...base, name: "open", bridge: "tsnet-open" }] });
    expect(none.chains!.find((c) => c.name === "forward")!.rules!.some((r) => r.comment?.includes("enable_icc"))).toBe(false);
  });
});

describe("the resolver's answers from leases", () => {
  const lease = (address: string, ...names: string[]): Lease => ({ address: parseIp(address)!, container: "c".repeat(64), ifname: "eth0", names });
  const dual: NamedLeases = {
    name: "dual",
    leases: () => [lease("10.80.0.2", "web", "0123456789ab", "frontend"), lease("fd00:80::2", "web", "0123456789ab", "frontend"), lease("10.80.0.3", "db")],
  };
  const v4only: NamedLeases = { name: "plain", leases: () => [lease("10.81.0.2", "cache")] };
  const ask = (name: string, type: number) => answerFromLeases([dual, v4only], { name, type, qclass: CLASS_IN });
  const addresses = (a: ReturnType<typeof ask>) => a?.answers.map((x) => formatIp(ipFromBytes(x.data)));

  test("AAAA from the IPv6 leases, A from the IPv4 ones, by name, alias, short id and name.network", () => {
    for (const name of ["web", "frontend", "0123456789ab", "web.dual", "WEB"]) {
      const aaaa = ask(name.toLowerCase(), TYPE_AAAA);
      expect(aaaa?.rcode).toBe(RCODE_NOERROR);
      expect(aaaa?.answers.every((x) => x.type === TYPE_AAAA)).toBe(true);
      expect(addresses(aaaa)).toEqual(["fd00:80::2"]);
      expect(addresses(ask(name.toLowerCase(), TYPE_A))).toEqual(["10.80.0.2"]);
    }
  });

  test("AAAA for a name with only an IPv4 address is NODATA (NOERROR, no answer), not NXDOMAIN; unknown names go upstream", () => {
    expect(ask("cache", TYPE_AAAA)).toEqual({ rcode: RCODE_NOERROR, answers: [] });
    expect(ask("db", TYPE_AAAA)).toEqual({ rcode: RCODE_NOERROR, answers: [] });
    expect(addresses(ask("cache", TYPE_A))).toEqual(["10.81.0.2"]);
    expect(ask("example.com", TYPE_AAAA)).toBeUndefined();
    expect(ask("web", TYPE_AAAA)).toBeDefined();
    expect(answerFromLeases([dual], { name: "web", type: TYPE_AAAA, qclass: 3 })).toBeUndefined();
  });

  test("PTR for a container's IPv6 address as for its IPv4 one", () => {
    const v6ptr = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.0.0.0.0.d.f.ip6.arpa";
    expect(formatIp(ipFromBytes(reverseV6(v6ptr)!))).toBe("fd00:80::2");
    expect(reverseV6("2.0.ip6.arpa")).toBeUndefined();
    expect(reverseV6(v6ptr.replace("2.", "g."))).toBeUndefined();
    const name = (a: ReturnType<typeof ask>) => {
      const d = a!.answers[0]!.data;
      const labels: string[] = [];
      for (let i = 0; d[i]; i += d[i]! + 1) labels.push(new TextDecoder().decode(d.subarray(i + 1, i + 1 + d[i]!)));
      return labels.join(".");
    };
    const ptr6 = ask(v6ptr, TYPE_PTR);
    expect(ptr6?.answers[0]?.type).toBe(TYPE_PTR);
    expect(name(ptr6)).toBe("web.dual");
    expect(name(ask("3.0.80.10.in-addr.arpa", TYPE_PTR))).toBe("db.dual");
    // An address no lease holds goes upstream.
    expect(ask(v6ptr.replace(/^2/, "9"), TYPE_PTR)).toBeUndefined();
  });
});
