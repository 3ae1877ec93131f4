import { defineCommand } from "../../cli/command.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { attachedContainers } from "../../container/attach.ts";
import { allNetworks, removeNetwork } from "../../network/networks.ts";
import { hasLeases } from "../../state/leases.ts";
import { recover } from "../../supervisor/client.ts";

export default defineCommand({
  name: "network prune",
  details: ["Removes every user network that no container uses, without asking (scripts call it), and prints their names."],
  args: [],
  options: {
    force: { type: "boolean", alias: "f", description: "Accepted for Docker habits (tsnet never asks)", example: "tsnet network prune -f" },
  },
  examples: ["tsnet network prune"],
  async run() {
    requireRoot("tsnet network prune");
    await recover();
    for (const net of allNetworks()) {
      if (net.builtin || attachedContainers(net).length || hasLeases(net.id)) continue;
      removeNetwork(net, []);
      out(`${net.name}\n`);
    }
    return 0;
  },
});
