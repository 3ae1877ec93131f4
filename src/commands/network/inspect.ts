import { defineCommand } from "citty";
import { scanOptions } from "../../cli/argv.ts";
import { log } from "../../cli/log.ts";
import { attachedContainers } from "../../container/attach.ts";
import { eachRef } from "../../container/control.ts";
import { UsageError } from "../../errors/errors.ts";
import { requireRoot } from "../../cli/root.ts";
import { allNetworks, mustFindNetwork } from "../../network/networks.ts";
import type { NetworkRecord } from "../../state/networks.ts";

/** Docker's shape for `network inspect`; Containers lists the running ones with their addresses. */
export function inspectNetwork(n: NetworkRecord) {
  const containers: Record<string, unknown> = {};
  for (const c of attachedContainers(n)) {
    const ep = c.endpoints!.find((e) => e.networkId === n.id)!;
    const v4 = ep.ips.find((i) => !i.address.includes(":"));
    const v6 = ep.ips.find((i) => i.address.includes(":"));
    containers[c.id] = {
      Name: c.name,
      EndpointID: ep.hostVeth,
      MacAddress: ep.mac,
      IPv4Address: v4 ? `${v4.address}/${v4.prefix}` : "",
      IPv6Address: v6 ? `${v6.address}/${v6.prefix}` : "",
    };
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: "local",
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: "default", Options: {}, Config: n.subnets.map((s) => ({ Subnet: s.subnet, Gateway: s.gateway })) },
    Internal: n.internal,
    Attachable: false,
    Containers: containers,
    Options: n.bridge ? { "com.docker.network.bridge.name": n.bridge } : {},
    Labels: n.labels,
  };
}

export default defineCommand({
  meta: { name: "inspect", description: "Docker-shaped JSON about networks" },
  async run({ rawArgs }) {
    const { rest } = scanOptions("network inspect", rawArgs, []);
    if (rest.length === 0) throw new UsageError("tsnet network inspect needs at least one network, e.g. tsnet network inspect bridge");
    requireRoot("tsnet network inspect");
    const all = allNetworks();
    const out: unknown[] = [];
    const code = await eachRef(rest, (ref) => {
      out.push(inspectNetwork(mustFindNetwork(ref, all)));
    }, (e) => log.error(e.message));
    process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
    return code;
  },
});
