import { defineCommand } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { actOnAll, out } from "../cli/output.ts";
import { requireRoot } from "../cli/root.ts";
import { eachRefAtOnce, mustFind, stopContainer } from "../container/control.ts";
import { UsageError } from "../errors/errors.ts";
import { wakeManager, recover } from "../supervisor/client.ts";

/** -t/--timeout, as stop and restart take it. */
export function timeOption(example: string) {
  return {
    type: "string", alias: "t", aliases: ["timeout"], valueHint: "SECONDS",
    description: "Seconds to wait after SIGTERM before SIGKILL (default 10)",
    example,
  } as const;
}

/** The -t value in whole seconds (10 when not given). */
export function stopSeconds(command: string, raw: string | undefined): number {
  const seconds = raw === undefined ? 10 : Number(raw);
  if (!Number.isInteger(seconds) || seconds < 0) throw new UsageError(`option -t of tsnet ${command} wants whole seconds, e.g. tsnet ${command} -t 10 web (got "${raw}")`);
  return seconds;
}

export default defineCommand({
  name: "stop",
  details: ["Each name is printed once its container has ended, as Docker does. A stopped container stays stopped: its restart policy does not start it again (tsnet restart does)."],
  args: [{ name: "CONTAINER", what: "at least one container", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "running" }],
  options: {
    time: timeOption("tsnet stop -t 1 web"),
  },
  examples: ["tsnet stop web", "tsnet stop $(tsnet ps -q)"],
  async run({ opts: values, args: rest }) {
    const seconds = stopSeconds("stop", values.time);
    requireRoot("tsnet stop", "it signals containers' commands and releases their networks");
    await recover();
    return actOnAll(() => eachRefAtOnce(rest, async (ref) => {
      await stopContainer(mustFind(ref), seconds, undefined, wakeManager);
      out(`${ref}\n`);
    }, (e) => log.error(e.message)));
  },
});
