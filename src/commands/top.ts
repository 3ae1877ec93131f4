import { defineCommand } from "citty";
import { scanOptions } from "../cli/argv.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, containerPids, mustFind } from "../container/control.ts";
import { containerAlive, recoverOrphans } from "../container/lifecycle.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { processRows } from "../process/table.ts";

export default defineCommand({
  meta: { name: "top", description: "List a running container's processes (every process of its cgroup), as docker top does" },
  args: { container: { type: "positional", description: "Name or id", required: false } },
  run({ rawArgs }) {
    const { rest } = scanOptions("top", rawArgs, []);
    if (rest.length !== 1) throw new UsageError("tsnet top needs one container, e.g. tsnet top web");
    requireRoot("tsnet top");
    recoverOrphans();
    const rec = mustFind(rest[0]!);
    if (!containerAlive(rec)) throw new TsnetError(`container ${rec.name} is not running`, OBJECT_ERROR);
    const rows = processRows(containerPids(rec));
    const cells = [["PID", "USER", "TIME", "COMMAND"], ...rows.map((r) => [String(r.pid), r.user, r.time, r.command])];
    const widths = [0, 1, 2].map((i) => Math.max(...cells.map((c) => c[i]!.length)));
    const out = cells.map((c) => c.map((v, i) => (i < 3 ? v.padEnd(widths[i]! + 3) : v)).join("")).join("\n");
    process.stdout.write(`${out}\n`);
    return 0;
  },
});
