import { defineCommand } from "../../cli/command.ts";
import { combineFilters, filterRegexp, labelTest, splitFilter } from "../../cli/filter.ts";
import { execute, parseFormat, templateRows } from "../../cli/format.ts";
import { out } from "../../cli/output.ts";
import { requireRoot } from "../../cli/root.ts";
import { attachedContainers } from "../../container/attach.ts";
import { UsageError } from "../../errors/errors.ts";
import { allNetworks } from "../../network/networks.ts";
import { listAttachments } from "../../state/cni.ts";
import { hasLeases } from "../../state/leases.ts";
import type { NetworkRecord } from "../../state/networks.ts";

/** --filter keys, as Docker's network ls has them. */
export const NETWORK_FILTERS = ["dangling", "driver", "id", "label", "name", "scope", "type"] as const;
type FilterKey = (typeof NETWORK_FILTERS)[number];
/** Whether a container (or a CNI attachment) is on the network: asked only by a dangling filter. */
export type InUse = (n: NetworkRecord) => boolean;
type Test = (n: NetworkRecord, inUse: InUse) => boolean;

const EXAMPLE: Record<FilterKey, string> = {
  dangling: "dangling=true", driver: "driver=bridge", id: "id=3f2a", label: "label=team=web", name: "name=back", scope: "scope=local", type: "type=custom",
};

/** One --filter KEY=VALUE as a test; a bad one is refused before anything is read. */
function filterTest(spec: string): [FilterKey, Test] {
  const { key: k, value } = splitFilter(spec, NETWORK_FILTERS, "tsnet network ls", (key) => EXAMPLE[key ?? "type"]);
  switch (k) {
    case "driver":
      return [k, (n) => n.driver === value];
    case "id": {
      const re = filterRegexp(spec, value);
      return [k, (n) => re.test(n.id)];
    }
    case "name": {
      const re = filterRegexp(spec, value);
      return [k, (n) => re.test(n.name)];
    }
    case "label": {
      const has = labelTest(value);
      return [k, (n) => has(n.labels)];
    }
    case "scope":
      // Docker's scopes; every network of tsnet's is local to its host.
      if (!["local", "swarm", "global"].includes(value)) throw new UsageError(`invalid --filter "${spec}": a scope is local, swarm or global`);
      return [k, () => value === "local"];
    case "type":
      if (value !== "custom" && value !== "builtin") throw new UsageError(`invalid --filter "${spec}": a type is custom or builtin`);
      return [k, (n) => n.builtin === (value === "builtin")];
    case "dangling": {
      // As Docker: dangling=true is a user network no container is on; false, a built-in one or one in use.
      const on = value === "true" || value === "1";
      if (!on && value !== "false" && value !== "0") throw new UsageError(`invalid --filter "${spec}": dangling is true or false`);
      return [k, (n, inUse) => (on ? !n.builtin && !inUse(n) : n.builtin || inUse(n))];
    }
  }
}

/** The --filter values as one test, by Docker's rule (src/cli/filter.ts). */
export function networkFilter(specs: readonly string[]): Test {
  return combineFilters(specs, filterTest);
}

/** A container, a CNI attachment or a lease (a run being set up) on the network, as prune counts them. */
const inUse: InUse = (n) => attachedContainers(n).length > 0 || listAttachments(n.name).some((a) => a.networkId === n.id) || hasLeases(n.id);

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
    filter: {
      type: "string", alias: "f", repeat: true, valueHint: "KEY=VALUE", complete: NETWORK_FILTERS.map((k) => `${k}=`),
      description: "Only networks that match: driver=DRIVER, id=REGEXP, name=REGEXP, label=KEY or label=KEY=VALUE, scope=local, type=custom|builtin, dangling=true|false; the same key twice matches either (label filters must all match), different keys must all match",
      example: "tsnet network ls --filter type=custom --filter label=team",
    },
  },
  examples: ["tsnet network ls", "tsnet network ls --format json", "tsnet network rm $(tsnet network ls -q --filter dangling=true)"],
  run({ opts }) {
    const format = parseFormat("network ls", opts.format, "error");
    if (format.kind === "template") execute("network ls", format.template, HEADERS);
    const match = networkFilter(opts.filter);
    requireRoot("tsnet network ls", "the built-in networks are written to /var/lib/tsnet on first use");
    const rows = allNetworks().filter((n) => match(n, inUse)).sort((a, b) => a.name.localeCompare(b.name)).map((n) => row(n, opts["no-trunc"]));
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
