// tsnet explain without a kernel: every nf_tables expression tsnet writes put into nft's input
// language (the text nft itself prints for the same bytes, seen with `nft --debug=netlink` and
// `nft list`, nftables 1.0.6), and each kind of plan step as the commands a person would type.
// test/explain.test.ts loads the text into a kernel and compares.
import { describe, expect, test } from "bun:test";
import { parseIp, parsePrefix } from "../src/ip/addr.ts";
import { parseCidr } from "../src/ip/ipv4.ts";
import { dnsRedirectTable } from "../src/nat/dns.ts";
import { natTable, portElements } from "../src/nat/ruleset.ts";
import { loopbackGuardFilter, loopbackGuardProgram } from "../src/network/guard.ts";
import {
  IPS_DST_NAT, IPPROTO_TCP, NF_CT_STATE_ESTABLISHED_BIT, NF_CT_STATE_RELATED_BIT, NFPROTO_IPV4, NFT_CMP_NEQ, NFT_NAT_DNAT, RTN_LOCAL,
} from "../src/nftables/constants.ts";
import {
  accept, counter, ctStatusAny, drop, fibDaddrType, fields, goto, iifname, ipPrefix, jump, l4proto, masquerade, nat, oifname, ret,
} from "../src/nftables/expr/index.ts";
import { ctStateNone, inSet, ip6Daddr, ip6Prefix } from "../src/nftables/expr/match.ts";
import type { Expr } from "../src/nftables/expr/expr.ts";
import { dnatMap } from "../src/nat/ruleset.ts";
import { changesText, elementsText, NftTextError, ruleText, tableText } from "../src/nftables/text.ts";
import type { SetSpec } from "../src/nftables/set.ts";
import { ifname, inet_proto, inet_service, ipv4_addr, ipv6_addr, value, concatValue } from "../src/nftables/types.ts";
import { renderScript, shellWord, tcBytecode } from "../src/plan/render.ts";
import type { Op } from "../src/plan/ops.ts";

const SETS = new Map<string, SetSpec>([
  ["bridges", { name: "bridges", key: [ifname] }],
  ["same_bridge", { name: "same_bridge", key: [ifname, ifname] }],
  ["ports", { name: "ports", key: [inet_proto, inet_service], data: [ipv4_addr, inet_service] }],
  ["hostip_ports", { name: "hostip_ports", key: [ipv4_addr, inet_proto, inet_service], data: [ipv4_addr, inet_service] }],
  ["ports6", { name: "ports6", key: [inet_proto, inet_service], data: [ipv6_addr, inet_service] }],
]);
const text = (exprs: Expr[]) => ruleText(exprs, SETS);
const v6 = (s: string) => parsePrefix(s)!;

describe("nft text of each expression", () => {
  test("meta iifname/oifname with cmp, equal and not", () => {
    expect(text([...iifname("lo", NFT_CMP_NEQ), ...oifname("tsnet0"), drop()])).toBe(`iifname != "lo" oifname "tsnet0" drop`);
  });
  test("payload: an IPv4 prefix, byte-aligned (a shorter load) and not (bitwise mask); the nfproto dependency implied", () => {
    expect(text(ipPrefix("daddr", 0x7f000000, 8))).toBe("ip daddr 127.0.0.0/8");
    expect(text(ipPrefix("saddr", 0x0a4f0000, 20, NFT_CMP_NEQ))).toBe("ip saddr != 10.79.0.0/20");
    expect(text(ipPrefix("daddr", 0x7f00000b, 32))).toBe("ip daddr 127.0.0.11");
  });
  test("payload: IPv6 prefixes and a whole address", () => {
    expect(text(ip6Prefix("saddr", v6("fd00:7473::/64")))).toBe("ip6 saddr fd00:7473::/64");
    expect(text(ip6Prefix("daddr", v6("fd00:1::/63")))).toBe("ip6 daddr fd00:1::/63");
    expect(text(ip6Daddr(new Uint8Array([...new Array(15).fill(0), 1]), NFT_CMP_NEQ))).toBe("ip6 daddr != ::1");
  });
  test("a meta l4proto match before a transport port is implied: tcp dport", () => {
    expect(text(l4proto(IPPROTO_TCP))).toBe("meta l4proto tcp");
    const dns = dnsRedirectTable(0x7f00000b, 40000).chains![0]!.rules![1]!;
    expect(text([...dns.exprs])).toBe("ip daddr 127.0.0.11 tcp dport 53 dnat ip to 127.0.0.11:40000");
  });
  test("fib daddr type, ct status (one bit), ct state (none of a mask)", () => {
    expect(text(fibDaddrType(RTN_LOCAL))).toBe("fib daddr type local");
    expect(text(fibDaddrType(RTN_LOCAL, NFT_CMP_NEQ))).toBe("fib daddr type != local");
    expect(text([...ctStatusAny(IPS_DST_NAT), accept()])).toBe("ct status dnat accept");
    expect(text(ctStateNone(NF_CT_STATE_ESTABLISHED_BIT | NF_CT_STATE_RELATED_BIT))).toBe("ct state & (established|related) == 0");
  });
  test("lookup in a set, inverted, with a concatenated key", () => {
    expect(text(inSet([fields.iifname], "bridges"))).toBe("iifname @bridges");
    expect(text(inSet([fields.iifname, fields.oifname], "same_bridge", true))).toBe("iifname . oifname != @same_bridge");
  });
  test("map lookup into nat: dnat ip and dnat ip6 to KEY map @MAP", () => {
    expect(text(dnatMap([fields.ipDaddr, fields.l4proto, fields.thDport], "hostip_ports"))).toBe("dnat ip to ip daddr . meta l4proto . th dport map @hostip_ports");
    expect(text(dnatMap([fields.l4proto, fields.thDport], "ports6", 6))).toBe("dnat ip6 to meta l4proto . th dport map @ports6");
  });
  test("counter, masquerade, and every verdict", () => {
    expect(text([counter(), masquerade()])).toBe("counter masquerade");
    expect(text([ret()])).toBe("return");
    expect(text([jump("a")])).toBe("jump a");
    expect(text([goto("b")])).toBe("goto b");
  });
  test("what it cannot say is an error, never a guess", () => {
    expect(() => text([{ name: "limit", encode() {} }])).toThrow(NftTextError);
    expect(() => text([nat({ type: NFT_NAT_DNAT, family: NFPROTO_IPV4, addr: 1 })])).toThrow(/nothing loaded/);
    expect(() => text(inSet([fields.iifname], "nosuch"))).toThrow(/does not declare/);
    expect(() => ruleText([drop()], SETS) && tableText({ family: "inet", name: "t", chains: [{ name: "c", rules: [{ exprs: [drop()], comment: 'a "quote"' }] }] })).toThrow(/cannot quote/);
  });
});

describe("nft text of tables and elements", () => {
  const spec = natTable({
    networks: [
      { name: "bridge", bridge: "tsnet0", subnets: [parseCidr("10.78.0.0/24")!], internal: false },
      { name: "v", bridge: "tsnet-v", subnets: [parseCidr("10.80.0.0/24")!], internal: true },
    ],
  });
  test("the declaration, as nft list prints it (output's dstnat priority as a number: nft 1.0 names it only on prerouting)", () => {
    const t = tableText(spec);
    expect(t.startsWith("table inet tsnet {\n\tmap ports {\n\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n\t}\n")).toBe(true);
    expect(t).toContain(`\tset bridges {\n\t\ttype ifname\n\t\telements = { "tsnet-v", "tsnet0" }\n\t}`);
    expect(t).toContain(`\tset same_bridge {\n\t\ttype ifname . ifname\n\t\telements = { "tsnet-v" . "tsnet-v", "tsnet0" . "tsnet0" }\n\t}`);
    expect(t).toContain("\tchain guard {\n\t\ttype filter hook prerouting priority raw; policy accept;\n");
    expect(t).toContain("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n");
    expect(t).toContain(`\t\tip saddr 10.78.0.0/24 oifname != "tsnet0" masquerade comment "tsnet: bridge: containers reach out as the host"\n`);
    expect(t).toContain(`\t\tiifname @internal iifname . oifname != @same_bridge counter drop comment "tsnet: an internal network has no way out"\n`);
  });
  test("on a table that may exist: declarations, then each fixed set and chain flushed and filled in the same file", () => {
    const t = tableText(spec, { existing: true });
    expect(t).not.toContain("elements =");
    expect(t).toContain(`flush set inet tsnet bridges\nadd element inet tsnet bridges { "tsnet-v", "tsnet0" }\n`);
    expect(t).toContain(`flush chain inet tsnet guard\nadd rule inet tsnet guard iifname != "lo" ip daddr 127.0.0.0/8 counter drop comment`);
    // The port maps list no elements in the spec: left as they are.
    expect(t).not.toContain("flush set inet tsnet ports");
  });
  test("port elements with their owner's comment, in the map of their family", () => {
    const adds = portElements("abcdef012345", "web", [
      { proto: "tcp", hostIp: parseIp("0.0.0.0")!, hostPort: 8080, containerIp: parseIp("10.78.0.2")!, containerPort: 80 },
      { proto: "udp", hostIp: parseIp("192.0.2.1")!, hostPort: 53, containerIp: parseIp("10.78.0.2")!, containerPort: 53 },
    ]);
    expect(elementsText(spec, adds)).toBe(
      `add element inet tsnet ports { tcp . 8080 comment "abcdef012345 web tcp 8080 -> 10.78.0.2:80" : 10.78.0.2 . 80 }\n` +
      `add element inet tsnet hostip_ports { 192.0.2.1 . udp . 53 comment "abcdef012345 web udp 192.0.2.1:53 -> 10.78.0.2:53" : 10.78.0.2 . 53 }\n`,
    );
  });
  test("a planned difference: deletions by handle and key, additions", () => {
    const t = changesText(spec, [
      { change: "delete-rule", chain: "forward", handle: 7n, comment: "old" },
      { change: "add-rule", chain: "forward", rule: { exprs: [...ctStatusAny(IPS_DST_NAT), accept()] } },
      { change: "delete-elements", set: "bridges", elements: [{ key: value.ifname("gone0") }] },
      { change: "add-elements", set: "same_bridge", elements: [{ key: concatValue([value.ifname("b"), value.ifname("b")]) }] },
    ]);
    expect(t).toBe(
      "delete rule inet tsnet forward handle 7  # old\n" +
      "add rule inet tsnet forward ct status dnat accept\n" +
      `delete element inet tsnet bridges { "gone0" }\n` +
      `add element inet tsnet same_bridge { "b" . "b" }\n`,
    );
  });
});

describe("plan steps as commands", () => {
  const addr = (s: string) => parseIp(s)!;
  test("tc's bytecode form of the guard, instruction by instruction", () => {
    const prog = loopbackGuardProgram();
    const t = tcBytecode(prog);
    const [count, ...insns] = t.split(",");
    expect(Number(count)).toBe(prog.length / 8);
    expect(insns[0]).toBe("32 0 0 4294963200"); // ld [SKF_AD_OFF + SKF_AD_PROTOCOL]
  });
  test("a shell word is quoted only when it must be", () => {
    expect(shellWord("tsnet-web")).toBe("tsnet-web");
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
    // A control character (a CNI interface name may hold one) is written as \xHH inside $'...'.
    expect(shellWord("e\x1b[2Ax'\\")).toBe(`$'e\\x1b[2Ax\\'\\\\'`);
    expect(Bun.spawnSync(["bash", "-c", `printf %s ${shellWord("e\x1b[2Ax'\\")}`]).stdout.toString()).toBe("e\x1b[2Ax'\\");
  });
  test("a comment line holds no control character: a why or header line cannot end early, or reach the terminal raw", () => {
    const s = renderScript([{ op: "netns-del", name: "n", why: "a\nid\x1b[1A" }], { header: ["h\nrm -rf /tmp/x"] });
    expect(s).toBe("#!/bin/bash\n# h?rm -rf /tmp/x\nset -euo pipefail\n\n# a?id?[1A\nip netns del n\n");
  });
  test("each kind of step, with its why as a comment line above it", () => {
    const ops: Op[] = [
      { op: "netns-add", name: "tsnet-web", why: "a network namespace: the container's own network stack" },
      { op: "sysctl", key: "net.ipv4.ip_forward", value: "1", why: "the host routes between its interfaces" },
      { op: "sysctl", netns: "tsnet-web", key: "net.ipv6.conf.eth0.disable_ipv6", value: "1", why: "no IPv6 on eth0" },
      { op: "link-add", name: "tsnet0", kind: "bridge", mac: "02:74:0a:4e:00:01", up: true, why: "the bridge" },
      {
        op: "link-add", name: "vethabcdef0", kind: "veth", master: "tsnet0", up: true,
        peer: { name: "eth0", netns: "tsnet-web", mac: "02:42:0a:4e:00:02", index: 2 }, why: "a veth pair",
      },
      { op: "guard", dev: "vethabcdef0", why: "the loopback guard" },
      { op: "link-set", netns: "tsnet-web", dev: "eth0", up: true, why: "eth0 up" },
      { op: "link-set", dev: "vethabcdef0", hairpin: true, why: "hairpin" },
      { op: "addr-add", netns: "tsnet-web", dev: "eth0", address: addr("10.78.0.2"), prefix: 24, why: "its address" },
      { op: "addr-add", netns: "/proc/42/ns/net", dev: "eth0", address: addr("fd00::2"), prefix: 64, nodad: true, why: "IPv6" },
      { op: "route-add", netns: "tsnet-web", dev: "eth0", gateway: addr("10.78.0.1"), why: "default route" },
      { op: "route-add", netns: "tsnet-web", dev: "eth0", gateway: addr("fd00::1"), why: "IPv6 default route" },
      { op: "link-del", dev: "vethabcdef0", ifExists: true, why: "gone" },
      { op: "netns-del", name: "tsnet-web", why: "the namespace goes" },
    ];
    const s = renderScript(ops, { guard: loopbackGuardFilter(), header: ["tsnet explain run"] });
    const g = tcBytecode(loopbackGuardProgram());
    expect(s).toBe([
      "#!/bin/bash",
      "# tsnet explain run",
      "set -euo pipefail",
      "",
      "# a network namespace: the container's own network stack (tsnet keeps the namespace by a symbolic link to its manager's open fd; ip netns add bind-mounts it)",
      "ip netns add tsnet-web",
      "",
      "# the host routes between its interfaces",
      "sysctl -q -e -w net.ipv4.ip_forward=1",
      "",
      "# no IPv6 on eth0",
      "ip netns exec tsnet-web sysctl -q -e -w net.ipv6.conf.eth0.disable_ipv6=1",
      "",
      "# the bridge",
      "ip link add tsnet0 address 02:74:0a:4e:00:01 up type bridge",
      "",
      "# a veth pair",
      "ip link add vethabcdef0 master tsnet0 up type veth peer name eth0 netns tsnet-web address 02:42:0a:4e:00:02 index 2",
      "",
      "# the loopback guard",
      "tc qdisc add dev vethabcdef0 clsact",
      `tc filter add dev vethabcdef0 ingress prio 1 handle 0x74736e74 protocol all bpf direct-action bytecode '${g}'`,
      "",
      "# eth0 up",
      "ip -n tsnet-web link set dev eth0 up",
      "",
      "# hairpin",
      "ip link set dev vethabcdef0 type bridge_slave hairpin on",
      "",
      "# its address",
      "ip -n tsnet-web addr add 10.78.0.2/24 dev eth0",
      "",
      "# IPv6",
      "nsenter --net=/proc/42/ns/net ip addr add fd00::2/64 dev eth0 nodad",
      "",
      "# default route",
      "ip -n tsnet-web route add default via 10.78.0.1 dev eth0",
      "",
      "# IPv6 default route",
      "ip -n tsnet-web -6 route add default via fd00::1 dev eth0",
      "",
      "# gone",
      "ip link del dev vethabcdef0 2>/dev/null || true",
      "",
      "# the namespace goes",
      "ip netns del tsnet-web",
      "",
    ].join("\n"));
  });
  test("nf_tables steps: a table written whole, elements in the layout of the table's sets, in a namespace by ip netns exec", () => {
    const spec = dnsRedirectTable(0x7f00000b, 40000);
    const nat = natTable({ networks: [] });
    const s = renderScript([
      { op: "nft-table", netns: "tsnet-web", spec, why: "the resolver's redirect" },
      {
        op: "nft-elements", family: "inet", table: "tsnet", why: "the published port",
        add: portElements("abcdef012345", "web", [{ proto: "tcp", hostIp: parseIp("0.0.0.0")!, hostPort: 8080, containerIp: parseIp("10.78.0.2")!, containerPort: 80 }]),
      },
    ], { tables: [nat] });
    expect(s).toContain(`# the resolver's redirect\nip netns exec tsnet-web nft -f - <<'EOF'\ntable inet tsnet_dns {\n`);
    expect(s).toContain(`# the published port\nnft -f - <<'EOF'\nadd element inet tsnet ports { tcp . 8080 comment "abcdef012345 web tcp 8080 -> 10.78.0.2:80" : 10.78.0.2 . 80 }\nEOF\n`);
    expect(() => renderScript([{ op: "nft-elements", family: "inet", table: "other", add: [], why: "x" }])).toThrow(/not known/);
  });
});
