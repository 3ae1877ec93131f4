// `tsnet network SUBCOMMAND`: Docker's network commands, one file each under network/, each
// loaded only when used; dispatch, help and completion walk into the group from its table.
import { defineGroup } from "../cli/command.ts";

export default defineGroup({
  name: "network",
  subcommands: {
    ls: { description: "List networks: bridge, host, none and user networks", load: () => import("./network/ls.ts") },
    create: { description: "Create a network: a bridge of its own with a subnet", load: () => import("./network/create.ts") },
    inspect: { description: "Show networks as Docker-shaped JSON, with the containers on them", load: () => import("./network/inspect.ts") },
    rm: { description: "Remove networks no container uses", load: () => import("./network/rm.ts") },
    connect: { description: "Connect a running container to a network (another interface)", load: () => import("./network/connect.ts") },
    disconnect: { description: "Disconnect a running container from a network", load: () => import("./network/disconnect.ts") },
    prune: { description: "Remove every user network that no container uses", load: () => import("./network/prune.ts") },
  },
});
