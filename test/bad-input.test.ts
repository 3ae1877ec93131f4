// Bad input: one line naming the problem, exit 125, nothing created.
import { beforeAll, describe, expect, test } from "bun:test";
import { TSNET, assertThrowawayHost, ipj, leases, netnsNames, records, sh, tsnet, veths } from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

function snapshot() {
  // veths() first: it waits for the veths of containers that ended to go with their namespaces.
  veths();
  return {
    links: ipj<any[]>(["link"]).map((l) => l.ifname).sort(),
    netns: netnsNames(),
    leases: leases(),
    records: records().map((r) => r.id).sort(),
  };
}

function expectRefused(args: string[], mention: string | RegExp) {
  const before = snapshot();
  const r = tsnet(args);
  expect(r.code).toBe(125);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trim().split("\n");
  expect(lines.length).toBe(1);
  expect(lines[0]).toMatch(mention);
  expect(snapshot()).toEqual(before);
}

describe("bad input", () => {
  test("unknown network", () => expectRefused(["run", "--network", "bogus", "--", "true"], /network bogus not found: create it with tsnet network create bogus, or see tsnet network ls/));
  test("missing command", () => expectRefused(["run", "--rm"], /needs a command/));
  test("unknown option", () => expectRefused(["run", "--frobnicate", "--", "true"], /unknown option "--frobnicate"/));
  test("option without its value", () => expectRefused(["run", "--network"], /--network needs a value/));
  test("invalid name", () => expectRefused(["run", "--name", "no/slash", "--", "true"], /invalid container name "no\/slash"/));
  test("unknown command", () => expectRefused(["runn", "true"], /unknown command "runn"/));
  test("a host address that is not this host's", () =>
    expectRefused(["run", "--rm", "-p", "192.0.2.77:8080:80", "--", "true"], /^tsnet: cannot publish on 192\.0\.2\.77: it is not an address of this host: give one of the host's addresses, or none for every address \(-p 8080:80\)$/));

  test("not root: says so and how to run it", () => {
    const r = sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TSNET, "run", "--", "true"]);
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split("\n").length).toBe(1);
    expect(r.stderr).toMatch(/needs root.*sudo tsnet run -- true/);
  });
});

describe("a failure half-way undoes what was done", () => {
  test("namespace name already taken: the lease, record and name are released", () => {
    sh(["ip", "netns", "add", "tsnet-clash"]);
    try {
      const r = tsnet(["run", "--rm", "--name", "clash", "--", "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain("/run/netns/tsnet-clash");
      expect(veths()).toEqual([]);
      expect(leases()).toEqual([]);
      expect(records().find((x) => x.name === "clash")).toBeUndefined();
    } finally {
      sh(["ip", "netns", "del", "tsnet-clash"]);
    }
    // The name is free again.
    expect(tsnet(["run", "--rm", "--name", "clash", "--", "true"]).code).toBe(0);
  });

  test("a subnet that overlaps a host route is refused before anything is made", () => {
    // A fresh host of its own, so that tsnet0 does not exist yet.
    const script = [
      "set -e",
      "mount -t tmpfs tmpfs /run",
      "ip link set lo up",
      "ip link add o1 type veth peer name o2",
      "ip addr add 10.77.5.1/24 dev o1",
      "ip link set o1 up",
      `rc=0; ${TSNET} run --rm -- true || rc=$?; echo "rc=$rc"`,
      "ip -j link show tsnet0 2>/dev/null || echo no-bridge",
    ].join("\n");
    const r = sh(["unshare", "--net", "--mount", "--propagation", "private", "bash", "-c", script]);
    expect(r.stdout).toContain("rc=125");
    expect(r.stdout).toContain("no-bridge");
    expect(r.stderr).toMatch(/subnet 10\.77\.0\.0\/16 overlaps the host route 10\.77\.5\.0\/24 dev o1.*TSNET_BRIDGE_SUBNET/);
  });

  test("TSNET_CGROUP_PARENT that is not a relative cgroup path is refused, with nothing left", () => {
    const before = snapshot();
    const r = tsnet(["run", "--rm", "--", "true"], { env: { TSNET_CGROUP_PARENT: "../escape" } });
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringContaining('TSNET_CGROUP_PARENT="../escape" is not a cgroup path')]);
    expect(snapshot()).toEqual(before);
  });

  test("TSNET_BRIDGE_SUBNET that is not a subnet is refused", () => {
    const r = tsnet(["run", "--rm", "--", "true"], { env: { TSNET_BRIDGE_SUBNET: "10.1.2/33" } });
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('TSNET_BRIDGE_SUBNET="10.1.2/33"');
  });
});
