import { defineCommand } from "citty";
import { scanOptions } from "../cli/argv.ts";
import { requireRoot } from "../cli/root.ts";
import { isRunning } from "../container/control.ts";
import { recoverOrphans } from "../container/lifecycle.ts";
import { UsageError } from "../errors/errors.ts";
import { describeMapping } from "../network/ports.ts";
import { listRecords, type ContainerRecord } from "../state/containers.ts";

function ago(iso: string | undefined): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso ?? "")) / 1000));
  if (!Number.isFinite(s)) return "";
  if (s < 60) return `${s} second${s === 1 ? "" : "s"}`;
  if (s < 3600) return `${Math.round(s / 60)} minutes`;
  if (s < 86400) return `${Math.round(s / 3600)} hours`;
  return `${Math.round(s / 86400)} days`;
}

function status(r: ContainerRecord): string {
  if (r.status === "running") return `Up ${ago(r.startedAt)}`;
  if (r.status === "created") return "Created";
  return `Exited (${r.exitCode}) ${ago(r.finishedAt)} ago`;
}

function row(r: ContainerRecord) {
  return {
    ID: r.id.slice(0, 12),
    Names: r.name,
    Command: r.command.join(" "),
    Status: status(r),
    State: r.status,
    Address: isRunning(r) ? (r.endpoints ?? []).map((e) => e.ips[0]?.address ?? "").join(",") : "",
    Ports: isRunning(r) ? (r.ports ?? []).map(describeMapping).join(", ") : "",
    Networks: r.mode === "container" ? `container:${r.joined?.id.slice(0, 12)}` : r.mode === "bridge" ? (r.endpoints ?? []).map((e) => e.network).join(",") : r.mode,
    CreatedAt: r.created,
  };
}

export default defineCommand({
  meta: { name: "ps", description: "List containers (running ones; all with -a)" },
  args: {
    all: { type: "boolean", alias: "a", description: "Include exited containers" },
    quiet: { type: "boolean", alias: "q", description: "Only ids" },
    format: { type: "string", description: "json: one JSON object per line", valueHint: "json" },
  },
  run({ rawArgs }) {
    const { values, rest } = scanOptions("ps", rawArgs, [
      { names: ["-a", "--all"], key: "all", takesValue: false },
      { names: ["-q", "--quiet"], key: "quiet", takesValue: false },
      { names: ["--format"], key: "format", takesValue: true, example: "json" },
    ]);
    if (rest.length) throw new UsageError(`tsnet ps takes no arguments (got "${rest[0]}"): see tsnet ps --help`);
    if (values.format !== undefined && values.format !== "json") throw new UsageError(`tsnet ps: unknown --format "${values.format}": use --format json`);
    requireRoot("tsnet ps");
    recoverOrphans();
    const rows = listRecords()
      .filter((r) => values.all === true || isRunning(r))
      .sort((a, b) => b.created.localeCompare(a.created))
      .map(row);
    let out: string;
    if (values.quiet === true) out = rows.map((r) => r.ID).join("\n");
    else if (values.format === "json") out = rows.map((r) => JSON.stringify(r)).join("\n");
    else out = table(rows);
    if (out) process.stdout.write(`${out}\n`);
    return 0;
  },
});

function table(rows: ReturnType<typeof row>[]): string {
  const cols: [string, keyof ReturnType<typeof row>][] = [
    ["CONTAINER ID", "ID"], ["NAME", "Names"], ["COMMAND", "Command"], ["STATUS", "Status"], ["ADDRESS", "Address"], ["PORTS", "Ports"],
  ];
  const cell = (r: ReturnType<typeof row>, k: keyof ReturnType<typeof row>) => {
    const v = String(r[k]);
    return k === "Command" ? JSON.stringify(v.length > 20 ? `${v.slice(0, 19)}…` : v) : v;
  };
  const widths = cols.map(([h, k]) => Math.max(h.length, ...rows.map((r) => cell(r, k).length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]! + 3))).join("").trimEnd();
  return [line(cols.map(([h]) => h)), ...rows.map((r) => line(cols.map(([, k]) => cell(r, k))))].join("\n");
}
