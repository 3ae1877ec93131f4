import { defineCommand } from "../../cli/command.ts";
import { log } from "../../cli/log.ts";
import { actOnAll, out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { attachedNames } from "../../container/attach.ts";
import { eachRef } from "../../container/control.ts";
import { allNetworks, mustFindNetwork, removeNetwork } from "../../network/networks.ts";
import { recover } from "../../supervisor/client.ts";

export default defineCommand({
  name: "network rm",
  details: ["Refused while a container is on the network; bridge, host and none cannot be removed. Removes the bridge and its rules, and prints each name."],
  args: [{ name: "NETWORK", what: "at least one network", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "network-name" }],
  options: {
    force: { type: "boolean", alias: "f", description: "Accepted for Docker habits", example: "tsnet network rm -f backend" },
  },
  examples: ["tsnet network rm backend"],
  async run({ args }) {
    requireRoot("tsnet network rm");
    await recover();
    const all = allNetworks();
    return actOnAll(() => eachRef(args, (ref) => {
      const net = mustFindNetwork(ref, all);
      removeNetwork(net, attachedNames(net));
      out(`${ref}\n`);
    }, (e) => log.error(e.message)));
  },
});
