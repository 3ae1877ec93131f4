// Hidden: the supervisor of detached containers (src/supervisor/server.ts).
import { defineCommand } from "citty";
import { supervise } from "../supervisor/server.ts";

export default defineCommand({
  meta: { name: "_supervise", hidden: true },
  run: () => supervise(),
});
