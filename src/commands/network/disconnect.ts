import { defineCommand } from "../../cli/command.ts";
import { requireRoot } from "../../cli/root.ts";
import { disconnectContainer } from "../../container/attach.ts";
import { mustFindNetwork } from "../../network/networks.ts";
import { recover } from "../../supervisor/client.ts";

export default defineCommand({
  name: "network disconnect",
  details: ["The container's interface on the network is removed and its address released."],
  args: [
    { name: "NETWORK", what: "a network and a container", description: "Name or id of the network", complete: "network-name" },
    { name: "CONTAINER", what: "a container", description: "Name or id of a running container", complete: "running" },
  ],
  options: {
    force: { type: "boolean", alias: "f", description: "Accepted for Docker habits", example: "tsnet network disconnect -f backend web" },
  },
  examples: ["tsnet network disconnect backend web"],
  async run({ args }) {
    requireRoot("tsnet network disconnect");
    await recover();
    disconnectContainer(args[1]!, mustFindNetwork(args[0]!));
    return 0;
  },
});
