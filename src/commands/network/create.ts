import { defineCommand } from "../../cli/command.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { UsageError } from "../../errors/errors.ts";
import { createNetwork } from "../../network/networks.ts";
import { KNOWN_OPTIONS, parseDriverOptions } from "../../network/options.ts";

export default defineCommand({
  name: "network create",
  details: [
    "A network is a bridge of its own, tsnet- and 9 hex digits of its id (or the name -o com.docker.network.bridge.name gives: a bridge the host already has is used, and left when the network is removed), holding the gateway address; the record stays in /var/lib/tsnet across reboots. Without --subnet it gets the first free /24 of 10.78.0.0/15. A subnet that overlaps another network or a host route is refused. Prints the network's id.",
  ],
  args: [{ name: "NETWORK", what: "a network name", description: "Its name: letters, digits, '_', '.' or '-'" }],
  options: {
    subnet: { type: "string", valueHint: "CIDR", description: "The network's subnet", example: "tsnet network create --subnet 10.80.0.0/24 backend" },
    gateway: { type: "string", valueHint: "ADDRESS", description: "The bridge's address in --subnet (default: the first)", example: "tsnet network create --subnet 10.80.0.0/24 --gateway 10.80.0.254 backend" },
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
  },
  examples: ["tsnet network create backend", "tsnet network create --internal --subnet 10.80.0.0/24 vault"],
  run({ opts, args }) {
    if (opts.driver !== undefined && opts.driver !== "bridge") throw new UsageError(`tsnet network create: only the bridge driver is supported (got "${opts.driver}")`);
    const labels: Record<string, string> = {};
    for (const l of opts.label) {
      const eq = l.indexOf("=");
      labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? "" : l.slice(eq + 1);
    }
    const d = parseDriverOptions(opts.opt);
    requireRoot("tsnet network create");
    const net = createNetwork({
      name: args[0]!, subnet: opts.subnet, gateway: opts.gateway, internal: opts.internal, labels, ipRanges: opts["ip-range"],
      bridge: d.bridge, mtu: d.mtu, icc: d.icc, ipMasq: d.ipMasq, hostBindingIpv4: d.hostBindingIpv4, options: d.options,
    });
    out(`${net.id}\n`);
    return 0;
  },
});
