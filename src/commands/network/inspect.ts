import { defineCommand } from "../../cli/command.ts";
import { execute, parseFormat } from "../../cli/format.ts";
import { log } from "../../cli/log.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { attachedContainers } from "../../container/attach.ts";
import { eachRef } from "../../container/control.ts";
import { allNetworks, mustFindNetwork } from "../../network/networks.ts";
import { listAttachments } from "../../state/cni.ts";
import type { Endpoint } from "../../state/containers.ts";
import type { NetworkRecord } from "../../state/networks.ts";

function endpointView(name: string, ep: Endpoint) {
  const v4 = ep.ips.find((i) => !i.address.includes(":"));
  const v6 = ep.ips.find((i) => i.address.includes(":"));
  return {
    Name: name,
    EndpointID: ep.hostVeth,
    MacAddress: ep.mac,
    IPv4Address: v4 ? `${v4.address}/${v4.prefix}` : "",
    IPv6Address: v6 ? `${v6.address}/${v6.prefix}` : "",
  };
}

/**
 * Docker's shape for `network inspect`; Containers lists the running ones with their addresses,
 * and the containers a runtime attached through the CNI plugin (keyed by the runtime's id, named
 * cni:ID:IFNAME).
 */
export function inspectNetwork(n: NetworkRecord) {
  const containers: Record<string, unknown> = {};
  for (const c of attachedContainers(n)) containers[c.id] = endpointView(c.name, c.endpoints!.find((e) => e.networkId === n.id)!);
  for (const a of listAttachments(n.name)) {
    const ep = a.endpoints[0];
    if (a.networkId === n.id && ep) containers[a.ifname === "eth0" ? a.containerId : `${a.containerId}/${a.ifname}`] = endpointView(`cni:${a.containerId.slice(0, 12)}:${a.ifname}`, ep);
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: "local",
    Driver: n.driver,
    EnableIPv6: n.enableIPv6 === true,
    IPAM: { Driver: "default", Options: {}, Config: n.subnets.map((s) => ({ Subnet: s.subnet, ...(s.ipRange && { IPRange: s.ipRange }), Gateway: s.gateway })) },
    Internal: n.internal,
    Attachable: false,
    Containers: containers,
    // Docker's option names for the settings a network has (a CNI configuration gives some), then
    // the -o options as they were given, unknown ones too, as Docker shows them.
    Options: {
      ...(n.bridge && { "com.docker.network.bridge.name": n.bridge }),
      ...(n.ipMasq === false && { "com.docker.network.bridge.enable_ip_masquerade": "false" }),
      ...(n.icc === false && { "com.docker.network.bridge.enable_icc": "false" }),
      ...(n.hostBindingIpv4 !== undefined && { "com.docker.network.bridge.host_binding_ipv4": n.hostBindingIpv4 }),
      ...(n.mtu !== undefined && { "com.docker.network.driver.mtu": String(n.mtu) }),
      ...(n.hairpin !== undefined && { "tsnet.hairpin": String(n.hairpin) }),
      ...(n.isGateway === false && { "tsnet.is_gateway": "false" }),
      ...n.options,
    },
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
    const format = parseFormat("network inspect", opts.format, "zero", false);
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
