import { defineCommand } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { out } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, mustFind } from "../container/control.ts";
import { TsnetError } from "../errors/errors.ts";
import { loadRecord, type ContainerRecord } from "../state/containers.ts";
import { waitDetached, recover } from "../supervisor/client.ts";

/**
 * The exit status of the container's current run, once it has ended. A detached container's is
 * told by its supervisor when it happens (kept for --rm too): if that supervisor dies meanwhile,
 * the container is adopted by another (recover), which is asked again. A foreground container's
 * is read from its record, looked at less and less often (50 ms to half a second).
 */
async function exitCodeOf(rec: ContainerRecord): Promise<number> {
  if (rec.status === "exited") return rec.exitCode ?? 0;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    if (rec.detached) {
      const code = await waitDetached(rec.id);
      if (code !== undefined) return code;
    }
    await recover(); // a manager that died meanwhile: its containers are adopted, or recorded as exited
    const now = loadRecord(rec.id);
    if (!now || now.id !== rec.id) {
      throw new TsnetError(`container ${rec.name} was removed when it ended (--rm), and its exit status with it`, OBJECT_ERROR);
    }
    if (now.status === "exited") return now.exitCode ?? 0;
    await Bun.sleep(delay);
  }
}

export default defineCommand({
  name: "wait",
  details: [
    "Blocks until each container has ended, and prints its exit status, one line each, in the order given. The exit status is the last container's; 1 if a container was unknown. A container with a restart policy is waited for until its current run ends.",
  ],
  args: [{ name: "CONTAINER", what: "at least one container", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "container" }],
  options: {},
  examples: ["tsnet wait web", "id=$(tsnet run -d -- ./job) && tsnet wait $id && tsnet logs $id"],
  async run({ args }) {
    requireRoot("tsnet wait", STATE_IS_ROOTS);
    await recover();
    let last = 0;
    let failed = false;
    for (const ref of args) {
      try {
        last = await exitCodeOf(mustFind(ref));
        out(`${last}\n`);
      } catch (e) {
        if (!(e instanceof TsnetError)) throw e;
        log.error(e.message);
        failed = true;
      }
    }
    return failed ? OBJECT_ERROR : last;
  },
});
