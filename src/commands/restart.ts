import { defineCommand } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { actOnAll, out } from "../cli/output.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, eachRef, isRunning, mustFind, signalContainer } from "../container/control.ts";
import { SIGKILL, SIGTERM } from "../container/proc.ts";
import { TsnetError } from "../errors/errors.ts";
import { loadRecord, saveRecord, withRecordLock, type ContainerRecord } from "../state/containers.ts";
import { readRunSpec, runDetached, wakeManager, recover } from "../supervisor/client.ts";
import { stopSeconds, timeOption } from "./stop.ts";

/** Polls the record until the container runs again (a new start) or has ended; false on timeout. */
async function startedAgain(before: ContainerRecord, ms: number): Promise<ContainerRecord | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const now = loadRecord(before.id);
    if (!now || now.status === "exited" || (now.status === "running" && now.startedAt !== before.startedAt)) return now;
    if (Date.now() >= deadline) return undefined;
    await Bun.sleep(20);
    await recover();
  }
}

/**
 * A container that runs: its manager is asked (through its record) to start the command again
 * once it has ended, then every process gets TERM, and KILL after `seconds`. The container stays:
 * the same namespace, address, ports and record; only its processes are new.
 */
async function restartInPlace(found: ContainerRecord, seconds: number): Promise<void> {
  const rec = withRecordLock(found.id, () => {
    const now = loadRecord(found.id);
    if (now && isRunning(now)) {
      now.restartRequested = true;
      now.stopped = undefined;
      saveRecord(now);
    }
    return now;
  });
  if (!rec || !isRunning(rec)) return startAgain(rec ?? found);
  let now: ContainerRecord | undefined;
  if (rec.status === "restarting") {
    await wakeManager(rec);
    now = await startedAgain(rec, 10_000);
  } else {
    // Both signals for the run that is ending only: its manager may start the next one at any
    // moment (and KILL after -t seconds would end that one, under load, with the container).
    signalContainer(rec, SIGTERM, false, rec.startedAt);
    now = await startedAgain(rec, seconds * 1000);
    if (!now) {
      signalContainer(rec, SIGKILL, false, rec.startedAt);
      now = await startedAgain(rec, 10_000);
    }
  }
  if (!now) throw new TsnetError(`container ${rec.name} did not start again`, OBJECT_ERROR);
  if (now.status !== "running") {
    throw new TsnetError(`container ${rec.name} could not be started again: it exited with ${now.exitCode ?? 0} (see tsnet logs ${rec.name})`, OBJECT_ERROR);
  }
}

/** An exited detached container: made again under the same id and name, with what it was started with. */
async function startAgain(rec: ContainerRecord): Promise<void> {
  if (!rec.detached) {
    throw new TsnetError(`container ${rec.name} ran in the foreground and has ended: start it again with tsnet run`, OBJECT_ERROR);
  }
  const spec = readRunSpec(rec.id);
  if (!spec) throw new TsnetError(`container ${rec.name} cannot be started again: what it was started with is not kept (it predates this tsnet)`, OBJECT_ERROR);
  const { warnings } = await runDetached({ ...spec, opts: { ...spec.opts, id: rec.id, name: rec.name } });
  for (const w of warnings) log.warn(w);
}

export default defineCommand({
  name: "restart",
  details: [
    "A running container's processes get TERM, and KILL after -t seconds, and its command starts again in the same container: the same id, name, address, MAC and published ports. A detached container's supervisor starts it; a foreground one's tsnet run does, in its terminal, and goes on. An exited detached container is made again with the options, environment and directory it was started with (its address and chosen ports may differ). Each name is printed once its container runs again.",
  ],
  args: [{ name: "CONTAINER", what: "at least one container", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "container" }],
  options: {
    time: timeOption("tsnet restart -t 2 web"),
  },
  examples: ["tsnet restart web", "tsnet restart -t 0 $(tsnet ps -q --filter label=tier=web)"],
  async run({ opts, args }) {
    const seconds = stopSeconds("restart", opts.time);
    requireRoot("tsnet restart", "it signals containers' processes and starts them again");
    await recover();
    return actOnAll(() => eachRef(args, async (ref) => {
      const rec = mustFind(ref);
      if (isRunning(rec)) await restartInPlace(rec, seconds);
      else await startAgain(rec);
      out(`${ref}\n`);
    }, (e) => log.error(e.message)));
  },
});
