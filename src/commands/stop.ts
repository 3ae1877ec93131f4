import { defineCommand } from "citty";
import { scanOptions } from "../cli/argv.ts";
import { log } from "../cli/log.ts";
import { requireRoot } from "../cli/root.ts";
import { eachRef, mustFind, stopContainer } from "../container/control.ts";
import { recoverOrphans } from "../container/lifecycle.ts";
import { UsageError } from "../errors/errors.ts";

export default defineCommand({
  meta: { name: "stop", description: "Stop running containers: SIGTERM, then SIGKILL after a grace period" },
  args: {
    time: { type: "string", alias: "t", description: "Seconds to wait before SIGKILL (default 10)", valueHint: "SECONDS" },
    containers: { type: "positional", description: "Names or ids", required: false },
  },
  async run({ rawArgs }) {
    const { values, rest } = scanOptions("stop", rawArgs, [
      { names: ["-t", "--time", "--timeout"], key: "time", takesValue: true, example: "10" },
    ]);
    const seconds = values.time === undefined ? 10 : Number(values.time);
    if (!Number.isInteger(seconds) || seconds < 0) throw new UsageError(`tsnet stop: -t wants whole seconds, e.g. -t 10 (got "${values.time}")`);
    if (rest.length === 0) throw new UsageError("tsnet stop needs at least one container, e.g. tsnet stop web");
    requireRoot("tsnet stop");
    recoverOrphans();
    return eachRef(rest, async (ref) => {
      await stopContainer(mustFind(ref), seconds);
      process.stdout.write(`${ref}\n`);
    }, (e) => log.error(e.message));
  },
});
