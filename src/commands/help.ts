// `tsnet help [COMMAND...]`: the same text as `tsnet COMMAND --help`.
import { defineCommand, isGroup } from "../cli/command.ts";
import { resolveCommand, unknownCommand } from "../cli/dispatch.ts";
import { commandHelp, groupHelp, topHelp } from "../cli/help.ts";
import { out } from "../cli/output.ts";

export default defineCommand({
  name: "help",
  args: [{ name: "COMMAND", what: "a command", description: "The command to explain; without one, the list of commands", required: false, repeat: true, complete: "subcommand" }],
  options: {},
  examples: ["tsnet help run", "tsnet help"],
  async run({ args }) {
    if (args.length === 0) {
      out(topHelp());
      return 0;
    }
    const { path, entry, def, rest } = await resolveCommand(args, false);
    if (rest.length) {
      if (isGroup(def)) throw unknownCommand(rest[0]!, def.subcommands, path);
      throw unknownCommand(rest[0]!, {}, path);
    }
    out(isGroup(def) ? groupHelp(path, entry.description, def) : commandHelp(path, entry.description, def));
    return 0;
  },
});
