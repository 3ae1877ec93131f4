import { defineCommand } from "../../cli/command.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { UsageError } from "../../errors/errors.ts";
import { createNetwork } from "../../network/networks.ts";

export default defineCommand({
  name: "network create",
  details: [
    "A network is a bridge of its own, tsnet- and 9 hex digits of its id, holding the gateway address; the record stays in /var/lib/tsnet across reboots. Without --subnet it gets the first free /24 of 10.78.0.0/15. A subnet that overlaps another network or a host route is refused. Prints the network's id.",
  ],
  args: [{ name: "NETWORK", what: "a network name", description: "Its name: letters, digits, '_', '.' or '-'" }],
  options: {
    subnet: { type: "string", valueHint: "CIDR", description: "The network's subnet", example: "tsnet network create --subnet 10.80.0.0/24 backend" },
    gateway: { type: "string", valueHint: "ADDRESS", description: "The bridge's address in --subnet (default: the first)", example: "tsnet network create --subnet 10.80.0.0/24 --gateway 10.80.0.254 backend" },
    internal: { type: "boolean", description: "No way out: no masquerade, nothing forwarded beyond its bridge, no -p", example: "tsnet network create --internal vault" },
    driver: { type: "string", alias: "d", valueHint: "DRIVER", complete: ["bridge"], description: "Only bridge, accepted for Docker habits", example: "tsnet network create -d bridge backend" },
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
    requireRoot("tsnet network create");
    const net = createNetwork({ name: args[0]!, subnet: opts.subnet, gateway: opts.gateway, internal: opts.internal, labels });
    out(`${net.id}\n`);
    return 0;
  },
});
