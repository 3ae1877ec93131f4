import { defineCommand } from "../../cli/command.ts";
import { execute, parseFormat, templateRows } from "../../cli/format.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { allNetworks } from "../../network/networks.ts";
import type { NetworkRecord } from "../../state/networks.ts";

function row(n: NetworkRecord, full: boolean) {
  return {
    ID: full ? n.id : n.id.slice(0, 12),
    Name: n.name,
    Driver: n.driver,
    Scope: "local",
    Subnet: n.subnets.map((s) => s.subnet).join(","),
    Internal: n.internal,
    IPv6: n.enableIPv6 === true,
    Labels: n.labels,
    CreatedAt: n.created,
  };
}

/** Column titles for `--format 'table ...'`, as Docker names them. */
const HEADERS: Record<keyof ReturnType<typeof row>, string> = {
  ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE", Subnet: "SUBNET", Internal: "INTERNAL", IPv6: "IPV6", Labels: "LABELS", CreatedAt: "CREATED AT",
};

export default defineCommand({
  name: "network ls",
  details: [`Template fields: ${Object.keys(HEADERS).map((k) => `.${k}`).join(" ")}.`],
  args: [],
  options: {
    format: {
      type: "string", valueHint: "FORMAT", complete: ["json", "table"],
      description: "json (one JSON object per line), table, a Go template such as '{{.Name}}', or 'table TEMPLATE'",
      example: "tsnet network ls --format '{{.Name}} {{.Subnet}}'",
    },
    quiet: { type: "boolean", alias: "q", description: "Only the short ids", example: "tsnet network ls -q" },
    "no-trunc": { type: "boolean", description: "Full 64-hex ids", example: "tsnet network ls --no-trunc" },
  },
  examples: ["tsnet network ls", "tsnet network ls --format json"],
  run({ opts }) {
    const format = parseFormat("network ls", opts.format, "error");
    if (format.kind === "template") execute("network ls", format.template, HEADERS);
    requireRoot("tsnet network ls", "the built-in networks are written to /var/lib/tsnet on first use");
    const rows = allNetworks().sort((a, b) => a.name.localeCompare(b.name)).map((n) => row(n, opts["no-trunc"]));
    let text: string;
    if (opts.quiet) text = rows.map((r) => `${r.ID}\n`).join("");
    else if (format.kind === "json") text = rows.map((r) => `${JSON.stringify(r)}\n`).join("");
    else if (format.kind === "template") text = templateRows("network ls", format, rows, HEADERS);
    else {
      const cols: (keyof ReturnType<typeof row>)[] = ["ID", "Name", "Driver", "Subnet"];
      const widths = cols.map((k) => Math.max(HEADERS[k].length, ...rows.map((r) => String(r[k]).length)));
      const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]! + 3))).join("").trimEnd();
      text = [line(cols.map((k) => HEADERS[k])), ...rows.map((r) => line(cols.map((k) => String(r[k]))))].map((l) => `${l}\n`).join("");
    }
    if (text) out(text);
    return 0;
  },
});
