import { defineCommand } from "citty";
import { scanOptions } from "../../cli/argv.ts";
import { requireRoot } from "../../cli/root.ts";
import { attachedContainers } from "../../container/attach.ts";
import { recoverOrphans } from "../../container/lifecycle.ts";
import { UsageError } from "../../errors/errors.ts";
import { allNetworks, removeNetwork } from "../../network/networks.ts";
import { hasLeases } from "../../state/leases.ts";

export default defineCommand({
  meta: { name: "prune", description: "Remove every user network that no container uses; prints the names removed" },
  run({ rawArgs }) {
    const { rest } = scanOptions("network prune", rawArgs, [{ names: ["-f", "--force"], key: "force", takesValue: false }]);
    if (rest.length) throw new UsageError(`tsnet network prune takes no arguments (got "${rest[0]}")`);
    requireRoot("tsnet network prune");
    recoverOrphans();
    for (const net of allNetworks()) {
      if (net.builtin || attachedContainers(net).length || hasLeases(net.id)) continue;
      removeNetwork(net, []);
      process.stdout.write(`${net.name}\n`);
    }
    return 0;
  },
});
