import { defineCommand } from "../cli/command.ts";
import { out } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, containerPids, mustFind } from "../container/control.ts";
import { containerAlive } from "../container/lifecycle.ts";
import { TsnetError } from "../errors/errors.ts";
import { processRows } from "../process/table.ts";
import { recover } from "../supervisor/client.ts";

export default defineCommand({
  name: "top",
  details: ["Every process of the container's cgroup, daemons included, read from /proc: PID, USER, TIME (CPU time) and COMMAND."],
  args: [{ name: "CONTAINER", what: "one container", description: "Name or id (a unique prefix is enough)", complete: "running" }],
  options: {},
  examples: ["tsnet top web"],
  async run({ args }) {
    requireRoot("tsnet top", STATE_IS_ROOTS);
    await recover();
    const rec = mustFind(args[0]!);
    if (!containerAlive(rec)) throw new TsnetError(`container ${rec.name} is not running`, OBJECT_ERROR);
    const rows = processRows(containerPids(rec));
    const cells = [["PID", "USER", "TIME", "COMMAND"], ...rows.map((r) => [String(r.pid), r.user, r.time, r.command])];
    const widths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => c[i]!.length)));
    out(cells.map((c) => `${c.map((v, i) => (i < 3 ? v.padEnd(widths[i]! + 3) : v)).join("")}\n`).join(""));
    return 0;
  },
});
