import { defineCommand, type Values } from "../../cli/command.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { UsageError } from "../../errors/errors.ts";
import { createNetwork, type CreateNetworkOptions } from "../../network/networks.ts";
import { KNOWN_OPTIONS, parseDriverOptions } from "../../network/options.ts";

const CREATE_OPTIONS = {
  subnet: { type: "string", repeat: true, valueHint: "CIDR", description: "The network's subnet; once per family (IPv6 with --ipv6)", example: "tsnet network create --ipv6 --subnet 10.80.0.0/24 --subnet fd00:80::/64 backend" },
  gateway: { type: "string", repeat: true, valueHint: "ADDRESS", description: "The bridge's address in the --subnet of its family (default: the first)", example: "tsnet network create --subnet 10.80.0.0/24 --gateway 10.80.0.254 backend" },
  ipv6: { type: "boolean", description: "Dual stack: an IPv6 subnet too (a free /64 of fd00:7473::/48 unless --subnet gives one)", example: "tsnet network create --ipv6 backend" },
  internal: { type: "boolean", description: "No way out: no masquerade, nothing forwarded beyond its bridge, no -p", example: "tsnet network create --internal vault" },
  driver: { type: "string", alias: "d", valueHint: "DRIVER", complete: ["bridge"], description: "Only bridge, accepted for Docker habits", example: "tsnet network create -d bridge backend" },
  "ip-range": {
    type: "string", repeat: true, valueHint: "CIDR",
    description: "Containers get addresses only from this part of --subnet (run --ip may still name any address of the subnet)",
    example: "tsnet network create --subnet 10.80.0.0/24 --ip-range 10.80.0.128/25 backend",
  },
  opt: {
    type: "string", alias: "o", repeat: true, valueHint: "KEY=VALUE", complete: KNOWN_OPTIONS.map((k) => `${k}=`),
    description: `A driver option: ${KNOWN_OPTIONS.join(", ")}; other keys are kept and shown by network inspect`,
    example: "tsnet network create -o com.docker.network.bridge.enable_icc=false -o com.docker.network.driver.mtu=1400 backend",
  },
  label: { type: "string", repeat: true, valueHint: "KEY=VALUE", description: "A label, shown by network inspect", example: "tsnet network create --label team=web backend" },
} as const;

export default defineCommand({
  name: "network create",
  details: [
    "A network is a bridge of its own, tsnet- and 9 hex digits of its id (or the name -o com.docker.network.bridge.name gives: a bridge the host already has is used, and left when the network is removed), holding the gateway address; the record stays in /var/lib/tsnet across reboots. Without --subnet it gets the first free /24 of 10.78.0.0/15. A subnet that overlaps another network or a host route is refused. Prints the network's id.",
    "--ipv6 makes it dual stack: an IPv6 subnet beside the IPv4 one (the first free /64 of fd00:7473::/48 unless an IPv6 --subnet is given, with a prefix length from 16 to 124), an IPv6 address and default route for each container, IPv6 forwarding, and outbound IPv6 masqueraded as the host (NAT66). Give --subnet and --gateway once per family. Without --ipv6 containers' interfaces have IPv6 turned off; the default bridge network is IPv4 only.",
  ],
  args: [{ name: "NETWORK", what: "a network name", description: "Its name: letters, digits, '_', '.' or '-'" }],
  options: CREATE_OPTIONS,
  examples: ["tsnet network create backend", "tsnet network create --internal --subnet 10.80.0.0/24 vault", "tsnet network create --ipv6 --subnet fd00:80::/64 web6"],
  run({ opts, args }) {
    const o = createOptions(opts, args);
    requireRoot("tsnet network create");
    const net = createNetwork(o);
    out(`${net.id}\n`);
    return 0;
  },
});

/** The command line as createNetwork's options (`tsnet explain network create` parses the same way). */
export function createOptions(opts: Values<typeof CREATE_OPTIONS>, args: readonly string[]): CreateNetworkOptions {
  if (opts.driver !== undefined && opts.driver !== "bridge") throw new UsageError(`tsnet network create: only the bridge driver is supported (got "${opts.driver}")`);
  const labels: Record<string, string> = {};
  for (const l of opts.label) {
    const eq = l.indexOf("=");
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? "" : l.slice(eq + 1);
  }
  const d = parseDriverOptions(opts.opt);
  return {
    name: args[0]!, subnets: opts.subnet, gateways: opts.gateway, ipv6: opts.ipv6, internal: opts.internal, labels, ipRanges: opts["ip-range"],
    bridge: d.bridge, mtu: d.mtu, icc: d.icc, ipMasq: d.ipMasq, hostBindingIpv4: d.hostBindingIpv4, options: d.options,
  };
}
