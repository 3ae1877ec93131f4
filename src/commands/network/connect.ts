import { defineCommand } from "../../cli/command.ts";
import { requireRoot } from "../../cli/root.ts";
import { connectContainer } from "../../container/attach.ts";
import { mustFindNetwork } from "../../network/networks.ts";
import { recover } from "../../supervisor/client.ts";

export default defineCommand({
  name: "network connect",
  details: ["The container gets another interface (eth1, ...) with an address on the network, and its names answer there."],
  args: [
    { name: "NETWORK", what: "a network and a container", description: "Name or id of the network", complete: "network-name" },
    { name: "CONTAINER", what: "a container", description: "Name or id of a running container", complete: "running" },
  ],
  options: {
    ip: { type: "string", valueHint: "ADDRESS", description: "Its address on the network (user-defined networks only)", example: "tsnet network connect --ip 10.78.0.10 backend web" },
    ip6: { type: "string", valueHint: "ADDRESS", description: "Its IPv6 address on a dual-stack network (user-defined networks only)", example: "tsnet network connect --ip6 fd00:80::10 backend web" },
    alias: { type: "string", repeat: true, valueHint: "NAME", description: "Another name it answers to on the network", example: "tsnet network connect --alias db backend web" },
  },
  examples: ["tsnet network connect backend web"],
  async run({ opts, args }) {
    requireRoot("tsnet network connect");
    await recover();
    connectContainer(args[1]!, mustFindNetwork(args[0]!), { ip: opts.ip, ip6: opts.ip6, aliases: opts.alias });
    return 0;
  },
});
