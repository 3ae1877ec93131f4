import { defineCommand } from "citty";
import { scanOptions } from "../../cli/argv.ts";
import { UsageError } from "../../errors/errors.ts";
import { requireRoot } from "../../cli/root.ts";
import { allNetworks } from "../../network/networks.ts";
import type { NetworkRecord } from "../../state/networks.ts";

function row(n: NetworkRecord) {
  return {
    ID: n.id.slice(0, 12),
    Name: n.name,
    Driver: n.driver,
    Scope: "local",
    Subnet: n.subnets.map((s) => s.subnet).join(","),
    Internal: n.internal,
    Labels: n.labels,
    CreatedAt: n.created,
  };
}

export default defineCommand({
  meta: { name: "ls", description: "List networks: bridge, host, none and user networks" },
  run({ rawArgs }) {
    const { values, rest } = scanOptions("network ls", rawArgs, [
      { names: ["-q", "--quiet"], key: "quiet", takesValue: false },
      { names: ["--format"], key: "format", takesValue: true, example: "json" },
      { names: ["--no-trunc"], key: "noTrunc", takesValue: false },
    ]);
    if (rest.length) throw new UsageError(`tsnet network ls takes no arguments (got "${rest[0]}")`);
    if (values.format !== undefined && values.format !== "json") throw new UsageError(`tsnet network ls: unknown --format "${values.format}": use --format json`);
    requireRoot("tsnet network ls");
    const rows = allNetworks()
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((n) => ({ ...row(n), ...(values.noTrunc === true && { ID: n.id }) }));
    let out: string;
    if (values.quiet === true) out = rows.map((r) => r.ID).join("\n");
    else if (values.format === "json") out = rows.map((r) => JSON.stringify(r)).join("\n");
    else {
      const cols: [string, keyof ReturnType<typeof row>][] = [["NETWORK ID", "ID"], ["NAME", "Name"], ["DRIVER", "Driver"], ["SUBNET", "Subnet"]];
      const widths = cols.map(([h, k]) => Math.max(h.length, ...rows.map((r) => String(r[k]).length)));
      const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]! + 3))).join("").trimEnd();
      out = [line(cols.map(([h]) => h)), ...rows.map((r) => line(cols.map(([, k]) => String(r[k]))))].join("\n");
    }
    if (out) process.stdout.write(`${out}\n`);
    return 0;
  },
});
