import { defineCommand } from "../../cli/command.ts";
import { execute, parseFormat } from "../../cli/format.ts";
import { log } from "../../cli/log.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { attachedContainers } from "../../container/attach.ts";
import { eachRef } from "../../container/control.ts";
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
  name: "network inspect",
  args: [{ name: "NETWORK", what: "at least one network", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "network-name" }],
  options: {
    format: {
      type: "string", alias: "f", valueHint: "FORMAT", complete: ["json"],
      description: "json (the default), or a Go template run over each network's document",
      example: "tsnet network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' backend",
    },
  },
  examples: ["tsnet network inspect bridge"],
  async run({ opts, args }) {
    const format = parseFormat("network inspect", opts.format, "zero");
    requireRoot("tsnet network inspect", "the built-in networks are written to /var/lib/tsnet on first use");
    const all = allNetworks();
    const found: unknown[] = [];
    const code = await eachRef(args, (ref) => {
      found.push(inspectNetwork(mustFindNetwork(ref, all)));
    }, (e) => log.error(e.message));
    if (format.kind === "template") out(found.map((n) => `${execute("network inspect", format.template, n)}\n`).join(""));
    else out(`${JSON.stringify(found, null, 4)}\n`);
    return code;
  },
});
