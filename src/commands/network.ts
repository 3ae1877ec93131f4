// `tsnet network SUBCOMMAND`: Docker's network commands, one file each under network/, loaded
// only when used.
import { defineCommand } from "citty";
import { UsageError } from "../errors/errors.ts";

export const NETWORK_COMMANDS = {
  ls: { about: "List networks", load: () => import("./network/ls.ts").then((m) => m.default) },
  create: { about: "Create a network", load: () => import("./network/create.ts").then((m) => m.default) },
  inspect: { about: "Docker-shaped JSON about networks", load: () => import("./network/inspect.ts").then((m) => m.default) },
  rm: { about: "Remove networks", load: () => import("./network/rm.ts").then((m) => m.default) },
  connect: { about: "Connect a running container to a network", load: () => import("./network/connect.ts").then((m) => m.default) },
  disconnect: { about: "Disconnect a running container from a network", load: () => import("./network/disconnect.ts").then((m) => m.default) },
  prune: { about: "Remove every network no container uses", load: () => import("./network/prune.ts").then((m) => m.default) },
} as const;

const ALIASES: Record<string, keyof typeof NETWORK_COMMANDS> = { list: "ls", remove: "rm" };

export default defineCommand({
  meta: { name: "network", description: "Manage networks: ls, create, inspect, rm, connect, disconnect, prune" },
  async run({ rawArgs }) {
    const [sub, ...rest] = rawArgs;
    const name = sub === undefined ? undefined : (ALIASES[sub] ?? sub);
    if (name === undefined || name === "--help" || name === "help") {
      const rows = Object.entries(NETWORK_COMMANDS).map(([n, c]) => `  ${n.padEnd(12)}${c.about}`);
      process.stdout.write(["Usage: tsnet network COMMAND", "", "Commands:", ...rows, ""].join("\n"));
      return sub === undefined ? 125 : 0;
    }
    const entry = NETWORK_COMMANDS[name as keyof typeof NETWORK_COMMANDS];
    if (!entry) throw new UsageError(`unknown command "network ${sub}": see tsnet network --help`);
    const cmd = await entry.load();
    return cmd.run!({ rawArgs: rest, args: { _: rest }, cmd } as never);
  },
});
