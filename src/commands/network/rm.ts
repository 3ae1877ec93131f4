import { defineCommand } from "citty";
import { scanOptions } from "../../cli/argv.ts";
import { log } from "../../cli/log.ts";
import { requireRoot } from "../../cli/root.ts";
import { attachedContainers } from "../../container/attach.ts";
import { eachRef } from "../../container/control.ts";
import { recoverOrphans } from "../../container/lifecycle.ts";
import { UsageError } from "../../errors/errors.ts";
import { allNetworks, mustFindNetwork, removeNetwork } from "../../network/networks.ts";

export default defineCommand({
  meta: { name: "rm", description: "Remove networks (refused while a container uses one; bridge, host and none stay)" },
  async run({ rawArgs }) {
    const { rest } = scanOptions("network rm", rawArgs, [{ names: ["-f", "--force"], key: "force", takesValue: false }]);
    if (rest.length === 0) throw new UsageError("tsnet network rm needs at least one network, e.g. tsnet network rm backend");
    requireRoot("tsnet network rm");
    recoverOrphans();
    const all = allNetworks();
    return eachRef(rest, (ref) => {
      const net = mustFindNetwork(ref, all);
      removeNetwork(net, attachedContainers(net).map((c) => c.name));
      process.stdout.write(`${ref}\n`);
    }, (e) => log.error(e.message));
  },
});
