import { defineCommand } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { actOnAll, out } from "../cli/output.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, eachRef, isRunning, mustFind, signalContainer, stopsForGood } from "../container/control.ts";
import { TsnetError } from "../errors/errors.ts";
import { SIGNAL_NAMES, parseSignal } from "../process/signals.ts";
import { wakeManager, recover } from "../supervisor/client.ts";

export default defineCommand({
  name: "kill",
  details: [
    "The signal goes to every process of the container (its cgroup), daemons included, as tsnet stop sends its TERM; KILL ends them all at once. Each name is printed once its container is signalled; tsnet does not wait for it to end (tsnet wait does).",
    "KILL and TERM stop the container for good: its restart policy does not start it again. Any other signal (HUP to reload, USR1...) leaves the policy in place.",
  ],
  args: [{ name: "CONTAINER", what: "at least one container", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "running" }],
  options: {
    signal: {
      type: "string", alias: "s", valueHint: "SIGNAL", complete: SIGNAL_NAMES,
      description: "The signal to send, by name (KILL, SIGHUP, usr1) or number (default KILL)",
      example: "tsnet kill -s HUP web",
    },
  },
  examples: ["tsnet kill web", "tsnet kill -s SIGUSR1 web worker"],
  async run({ opts, args }) {
    const sig = parseSignal(opts.signal ?? "KILL");
    requireRoot("tsnet kill", "it signals containers' processes");
    await recover();
    return actOnAll(() => eachRef(args, async (ref) => {
      const rec = mustFind(ref);
      const notRunning = () => new TsnetError(`cannot kill container ${rec.name}: it is not running`, OBJECT_ERROR);
      if (!isRunning(rec)) throw notRunning();
      if (rec.status === "restarting" && !stopsForGood(sig)) {
        throw new TsnetError(`cannot kill container ${rec.name}: it is waiting to restart and has no process to signal`, OBJECT_ERROR);
      }
      const now = signalContainer(rec, sig);
      if (!now || !isRunning(now)) throw notRunning();
      // Waiting to restart: it was marked stopped, and its manager ends it now.
      if (now.status === "restarting") await wakeManager(now);
      out(`${ref}\n`);
    }, (e) => log.error(e.message)));
  },
});
