import { defineCommand } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { actOnAll, out } from "../cli/output.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, eachRef, findContainerRef, isRunning, mustFind, stopContainer } from "../container/control.ts";
import { TsnetError } from "../errors/errors.ts";
import { forgetContainer, loadRecord } from "../state/containers.ts";
import { wakeManager, recover } from "../supervisor/client.ts";

export default defineCommand({
  name: "rm",
  details: [
    "Each name is printed once its container is gone; its log goes with it. With -f, a name that is no container (any more) is not an error: nothing is printed for it and the exit status stays 0, as rm -f does with a missing file, so parallel or repeated rm -f of one container all succeed.",
  ],
  args: [{ name: "CONTAINER", what: "at least one container", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "container" }],
  options: {
    force: {
      type: "boolean", alias: "f",
      description: "Kill a running container (SIGKILL), then remove it",
      example: "tsnet rm -f web",
    },
    volumes: {
      type: "boolean", alias: "v",
      description: "Accepted for Docker habits: a container of tsnet's has no volumes (its log goes with it anyway)",
      example: "tsnet rm -fv web",
    },
  },
  examples: ["tsnet rm web", "tsnet rm -f $(tsnet ps -aq)"],
  async run({ opts: values, args: rest }) {
    requireRoot("tsnet rm", "it kills containers' commands and releases their networks");
    await recover();
    return actOnAll(() => eachRef(rest, async (ref) => {
      const rec = values.force ? findContainerRef(ref) : mustFind(ref);
      if (!rec) return;
      if (isRunning(rec)) {
        if (!values.force) {
          throw new TsnetError(`cannot remove running container ${rec.name}: stop it first, or use tsnet rm -f`, OBJECT_ERROR);
        }
        await stopContainer(rec, 0, 9, wakeManager);
      }
      // Its manager may have forgotten it already (--rm).
      forgetContainer(loadRecord(rec.id) ?? rec);
      out(`${ref}\n`);
    }, (e) => log.error(e.message)));
  },
});
