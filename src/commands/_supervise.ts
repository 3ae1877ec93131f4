// Hidden: the supervisor of detached containers (src/supervisor/server.ts).
import { defineCommand } from "../cli/command.ts";
import { supervise } from "../supervisor/server.ts";

export default defineCommand({
  name: "_supervise",
  args: [],
  options: {},
  examples: ["tsnet _supervise"],
  run: () => supervise(),
});
