// The comment on each published port's element (its owner, name and route) is one `nft list
// ruleset` prints and `nft -f` reads back, and one `tsnet explain` can write, whatever the owner's
// name: a 63-character container name publishing a long IPv6 host address (the whole comment
// passed nft's 127 bytes, and `tsnet run` failed), a CNI interface name holding '"' or '\' (nft
// printed a comment it cannot read back; explain failed with an internal error).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { assertThrowawayHost, removeAllContainers, sh, tsnet, tsnetOk, userNetworks } from "./helpers.ts";

const HOST6 = "fd00:1234:5678:9abc:def0:1234:5678:9abc";
const LONG = "a".repeat(63);
const namespaces: string[] = [];

beforeAll(() => {
  assertThrowawayHost();
  sh(["ip", "addr", "add", `${HOST6}/128`, "dev", "lo", "nodad"]);
});

afterAll(() => {
  removeAllContainers();
  for (const ns of namespaces) sh(["ip", "netns", "del", ns]);
  for (const n of userNetworks()) tsnet(["network", "rm", n]);
  sh(["ip", "addr", "del", `${HOST6}/128`, "dev", "lo"]);
});

/**
 * tsnet's table as nft prints it, loaded again from that text as a copy beside it (tsnet's own is
 * left alone: a container's manager would restore it): it must load and list the same.
 */
function tableReloads(): void {
  const text = sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
  expect(text).toStartWith("table inet tsnet {\n");
  const copy = text.replace("table inet tsnet {", "table inet tsnet_reload {");
  const load = sh(["nft", "-f", "-"], { stdin: copy });
  try {
    expect(load.stderr).toBe("");
    expect(load.code).toBe(0);
    expect(sh(["nft", "list", "table", "inet", "tsnet_reload"]).stdout).toBe(copy);
  } finally {
    sh(["nft", "delete", "table", "inet", "tsnet_reload"]);
  }
}

describe("published ports' comments", () => {
  test("a 63-character name publishing on a long IPv6 host address: run publishes it, explain shows it, its table reloads", () => {
    tsnetOk(["network", "create", "--ipv6", "--subnet", "10.40.0.0/24", "--subnet", "fd00:aaaa:bbbb:cccc::/64", "pc6"]);
    const args = ["--network", "pc6", "-p", `[${HOST6}]:65535:65535`, "--name", LONG];
    const explained = tsnet(["explain", "run", ...args, "--", "true"]);
    expect(explained.stderr).toBe("");
    expect(explained.code).toBe(0);
    expect(explained.stdout).toMatch(new RegExp(`add element inet tsnet hostip_ports6 \\{ ${HOST6} \\. tcp \\. 65535 comment "[0-9a-f]{12} ${LONG} tcp" : fd00:aaaa:bbbb:cccc::2 \\. 65535 \\}`));
    const run = tsnet(["run", "-d", ...args, "--", "sleep", "1000"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const map = sh(["nft", "list", "map", "inet", "tsnet", "hostip_ports6"]).stdout;
    expect(map).toMatch(new RegExp(`${HOST6} \\. tcp \\. 65535 comment "[0-9a-f]{12} ${LONG} tcp" : fd00:aaaa:bbbb:cccc::2 \\. 65535`));
    tableReloads();
    tsnetOk(["rm", "-f", LONG]);
  });

  test("a CNI interface name holding '\"' and '\\': ADD publishes with the name's unquotable characters as '?', explain shows the same, its table reloads", () => {
    const ns = `pc-${process.pid}`;
    expect(sh(["ip", "netns", "add", ns]).code).toBe(0);
    namespaces.push(ns);
    const conf = JSON.stringify({
      cniVersion: "1.0.0", name: "pccni", type: "tsnet", subnet: "10.41.0.0/24",
      runtimeConfig: { portMappings: [{ hostPort: 8090, containerPort: 80, protocol: "tcp" }] },
    });
    const env = { CNI_CONTAINERID: "c1", CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'e"x\\y', CNI_PATH: "/nonexistent" };
    const element = /tcp \. 8090 comment "[0-9a-f]{12} cni:c1:e\?x\?y tcp 8090 -> 10\.41\.0\.2:80" : 10\.41\.0\.2 \. 80/;
    const explained = tsnet(["explain", "cni-add"], { stdin: conf, env });
    expect(explained.stderr).toBe("");
    expect(explained.code).toBe(0);
    expect(explained.stdout).toMatch(element);
    const add = tsnet([], { stdin: conf, env: { ...env, CNI_COMMAND: "ADD" } });
    expect(add.stderr).toBe("");
    expect(add.code).toBe(0);
    expect(sh(["nft", "list", "map", "inet", "tsnet", "ports"]).stdout).toMatch(element);
    tableReloads();
    const del = tsnet([], { stdin: conf, env: { ...env, CNI_COMMAND: "DEL" } });
    expect(del.code).toBe(0);
    expect(sh(["nft", "list", "map", "inet", "tsnet", "ports"]).stdout).not.toContain("8090");
  });
});
