import { defineCommand } from "../cli/command.ts";
import { execute, parseFormat, templateRows } from "../cli/format.ts";
import { out } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { isRunning } from "../container/control.ts";
import { recoverOrphans } from "../container/lifecycle.ts";
import type { KernelPort } from "../nat/portmap.ts";
import { describeMapping, type PortMapping } from "../network/ports.ts";
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

/**
 * The published ports of running containers as the kernel's maps hold them, by short id: one
 * dump of each map for all rows. A port whose element is gone (a firewall reload nobody has
 * mended yet) does not work, so it is not listed.
 */
async function kernelPorts(rows: readonly ContainerRecord[]): Promise<Map<string, KernelPort[]>> {
  if (!rows.some((r) => isRunning(r) && r.ports?.length)) return new Map();
  // Loaded only when some container publishes ports: nf_tables code is not ps's usual cost.
  const { publishedPortsByOwner } = await import("../nat/portmap.ts");
  return publishedPortsByOwner();
}

/** The record's mappings that the kernel holds, in the record's order. */
function portsOf(r: ContainerRecord, kernel: ReadonlyMap<string, KernelPort[]>): PortMapping[] {
  const held = kernel.get(r.id.slice(0, 12)) ?? [];
  return (r.ports ?? []).filter((m) =>
    held.some((k) => k.proto === m.proto && k.hostIp === m.hostIp && k.hostPort === m.hostPort && k.containerPort === m.containerPort));
}

function row(r: ContainerRecord, kernel: ReadonlyMap<string, KernelPort[]>) {
  return {
    ID: r.id.slice(0, 12),
    Names: r.name,
    Command: r.command.join(" "),
    Status: status(r),
    State: r.status,
    Address: isRunning(r) ? (r.endpoints ?? []).map((e) => e.ips[0]?.address ?? "").join(",") : "",
    Ports: isRunning(r) ? portsOf(r, kernel).map(describeMapping).join(", ") : "",
    Networks: r.mode === "container" ? `container:${r.joined?.id.slice(0, 12)}` : r.mode === "bridge" ? (r.endpoints ?? []).map((e) => e.network).join(",") : r.mode,
    CreatedAt: r.created,
  };
}

/** Column titles for `--format 'table ...'`, as Docker names them. */
type Row = ReturnType<typeof row>;
const HEADERS: Record<keyof Row, string> = {
  ID: "CONTAINER ID", Names: "NAMES", Command: "COMMAND", Status: "STATUS", State: "STATE",
  Address: "ADDRESS", Ports: "PORTS", Networks: "NETWORKS", CreatedAt: "CREATED AT",
};

export default defineCommand({
  name: "ps",
  details: [
    `Template fields: ${Object.keys(HEADERS).map((k) => `.${k}`).join(" ")}.`,
  ],
  args: [],
  options: {
    all: {
      type: "boolean", alias: "a",
      description: "Show every container, the exited ones too (the default shows running ones)",
      example: "tsnet ps -a",
    },
    format: {
      type: "string", valueHint: "FORMAT", complete: ["json", "table"],
      description: "json (one JSON object per line), table, a Go template such as '{{.Names}}' (functions: json, join, upper, lower, printf, index...), or 'table TEMPLATE' for aligned columns under a header",
      example: "tsnet ps --format 'table {{.Names}}\\t{{.Address}}'",
    },
    quiet: {
      type: "boolean", alias: "q",
      description: "Only the short ids",
      example: "tsnet rm -f $(tsnet ps -aq)",
    },
  },
  examples: ["tsnet ps", "tsnet ps -a --format '{{.Names}} {{.Status}}'", "tsnet ps --format json"],
  async run({ opts }) {
    const format = parseFormat("ps", opts.format, "error");
    if (format.kind === "template") execute("ps", format.template, HEADERS); // an unknown field fails here, before anything is read
    requireRoot("tsnet ps", STATE_IS_ROOTS);
    recoverOrphans();
    const recs = listRecords()
      .filter((r) => opts.all || isRunning(r))
      .sort((a, b) => b.created.localeCompare(a.created));
    const kernel = opts.quiet ? new Map<string, KernelPort[]>() : await kernelPorts(recs);
    const rows = recs.map((r) => row(r, kernel));
    let text: string;
    if (opts.quiet) text = lines(rows.map((r) => r.ID));
    else if (format.kind === "json") text = lines(rows.map((r) => JSON.stringify(r)));
    else if (format.kind === "template") text = templateRows("ps", format, rows, HEADERS);
    else text = `${table(rows)}\n`;
    if (text) out(text);
    return 0;
  },
});

function lines(xs: string[]): string {
  return xs.map((x) => `${x}\n`).join("");
}

function table(rows: Row[]): string {
  const cols: [string, keyof Row][] = [
    ["CONTAINER ID", "ID"], ["NAME", "Names"], ["COMMAND", "Command"], ["STATUS", "Status"], ["ADDRESS", "Address"], ["PORTS", "Ports"],
  ];
  const cell = (r: Row, k: keyof Row) => {
    const v = String(r[k]);
    return k === "Command" ? JSON.stringify(v.length > 20 ? `${v.slice(0, 19)}…` : v) : v;
  };
  const widths = cols.map(([h, k]) => Math.max(h.length, ...rows.map((r) => cell(r, k).length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]! + 3))).join("").trimEnd();
  return [line(cols.map(([h]) => h)), ...rows.map((r) => line(cols.map(([, k]) => cell(r, k))))].join("\n");
}
