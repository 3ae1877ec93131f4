import { defineCommand } from "citty";
import { scanOptions } from "../cli/argv.ts";
import { log } from "../cli/log.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, eachRef, isRunning, mustFind, stopContainer } from "../container/control.ts";
import { recoverOrphans } from "../container/lifecycle.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { deleteRecord, loadRecord } from "../state/containers.ts";
import { removeFile } from "../state/files.ts";
import { logPath } from "../supervisor/protocol.ts";

export default defineCommand({
  meta: { name: "rm", description: "Remove containers (a running one only with -f, which kills it first)" },
  args: {
    force: { type: "boolean", alias: "f", description: "Kill a running container, then remove it" },
    containers: { type: "positional", description: "Names or ids", required: false },
  },
  async run({ rawArgs }) {
    const { values, rest } = scanOptions("rm", rawArgs, [{ names: ["-f", "--force"], key: "force", takesValue: false }]);
    if (rest.length === 0) throw new UsageError("tsnet rm needs at least one container, e.g. tsnet rm web");
    requireRoot("tsnet rm");
    recoverOrphans();
    return eachRef(rest, async (ref) => {
      const rec = mustFind(ref);
      if (isRunning(rec)) {
        if (values.force !== true) {
          throw new TsnetError(`cannot remove running container ${rec.name}: stop it first, or use tsnet rm -f`, OBJECT_ERROR);
        }
        await stopContainer(rec, 0, 9);
      }
      // Its manager may have forgotten it already (--rm).
      const now = loadRecord(rec.id);
      if (now) deleteRecord(now);
      removeFile(logPath(rec.id));
      process.stdout.write(`${ref}\n`);
    }, (e) => log.error(e.message));
  },
});
