import { defineCommand } from "../cli/command.ts";
import { combineFilters, filterRegexp, labelTest, splitFilter } from "../cli/filter.ts";
import { execute, parseFormat, templateRows } from "../cli/format.ts";
import { out } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { isRunning } from "../container/control.ts";
import { UsageError } from "../errors/errors.ts";
import { sameIp } from "../ip/addr.ts";
import { LOOPBACK_V6, describePort, sameHostSide, type AimedPort, type PublishedPort } from "../ip/port.ts";
import { parsePortRange } from "../network/ports.ts";
import { listRecords, type ContainerRecord } from "../state/containers.ts";
import { mark } from "../errors/trace.ts";
import { recover } from "../supervisor/client.ts";

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
  if (r.status === "restarting") return `Restarting (${r.exitCode}) ${ago(r.finishedAt)} ago`;
  return `Exited (${r.exitCode}) ${ago(r.finishedAt)} ago`;
}

/**
 * The published ports of running containers as the kernel's maps hold them, by short id: one
 * dump of each map for all rows. A port whose element is gone (a firewall reload nobody has
 * mended yet) does not work, so it is not listed.
 */
async function kernelPorts(rows: readonly ContainerRecord[]): Promise<Map<string, AimedPort[]>> {
  if (!rows.some((r) => isRunning(r) && r.ports?.length)) return new Map();
  // Loaded only when some container publishes ports: nf_tables code is not ps's usual cost.
  const { publishedPortsByOwner } = await import("../nat/portmap.ts");
  return publishedPortsByOwner();
}

/**
 * The record's ports that work, in the record's order: those the kernel's maps hold, and [::1]
 * ones, which the container's manager relays (no element serves them).
 */
function portsOf(r: ContainerRecord, kernel: ReadonlyMap<string, AimedPort[]>): PublishedPort[] {
  const held = kernel.get(r.id.slice(0, 12)) ?? [];
  return (r.ports ?? []).filter((m) => sameIp(m.hostIp, LOOPBACK_V6) || held.some((k) => sameHostSide(k, m) && k.containerPort === m.containerPort));
}

/** Exposed ports without a host side, as Docker lists them: "9000/tcp". */
function exposedOnly(r: ContainerRecord): string[] {
  return (r.exposed ?? []).filter((e) => !(r.ports ?? []).some((p) => `${p.containerPort}/${p.proto}` === e));
}

function row(r: ContainerRecord, kernel: ReadonlyMap<string, AimedPort[]>) {
  return {
    ID: r.id.slice(0, 12),
    Names: r.name,
    Command: r.command.join(" "),
    Status: status(r),
    State: r.status,
    Address: isRunning(r) ? (r.endpoints ?? []).map((e) => e.ips[0]?.address ?? "").join(",") : "",
    Ports: isRunning(r) ? [...portsOf(r, kernel).map(describePort), ...exposedOnly(r)].join(", ") : "",
    Networks: r.mode === "container" ? `container:${r.joined?.id.slice(0, 12)}` : r.mode === "bridge" ? networksOf(r).map((n) => n.name).join(",") : r.mode,
    CreatedAt: r.created,
    Labels: Object.entries(r.config?.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(","),
  };
}

/** Column titles for `--format 'table ...'`, as Docker names them. */
type Row = ReturnType<typeof row>;
const HEADERS: Record<keyof Row, string> = {
  ID: "CONTAINER ID", Names: "NAMES", Command: "COMMAND", Status: "STATUS", State: "STATE",
  Address: "ADDRESS", Ports: "PORTS", Networks: "NETWORKS", CreatedAt: "CREATED AT", Labels: "LABELS",
};

/** --filter keys, as Docker's ps has them. */
const FILTERS = ["id", "name", "status", "label", "network", "publish", "expose"] as const;
type FilterKey = (typeof FILTERS)[number];
/** Docker's container states (tsnet's containers are never paused, removing or dead). */
const STATES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];

type Test = (r: ContainerRecord) => boolean;

/** A container's networks as `--filter network=` matches them: names and ids. */
function networksOf(r: ContainerRecord): { name: string; id?: string }[] {
  if (r.mode === "host" || r.mode === "none") return [{ name: r.mode }];
  // An exited container has no endpoints left: the network it was started on, as Docker shows it.
  if (!r.endpoints?.length) return r.network ? [r.network] : [];
  return r.endpoints.map((e) => ({ name: e.network, id: e.networkId }));
}

/** One --filter KEY=VALUE as a test; a bad one is refused before anything is read. */
function filterTest(spec: string): [FilterKey, Test] {
  const { key, value } = splitFilter(spec, FILTERS, "tsnet ps", (k) => (k === undefined || k === "status" ? "status=exited" : k === "label" ? "label=tier=web" : `${k}=web`));
  switch (key) {
    case "id":
      return ["id", (r) => r.id.startsWith(value)];
    case "name": {
      const re = filterRegexp(spec, value);
      return ["name", (r) => re.test(r.name) || re.test(`/${r.name}`)];
    }
    case "status":
      if (!STATES.includes(value)) throw new UsageError(`invalid --filter "${spec}": a status is one of ${STATES.join(", ")}`);
      return ["status", (r) => r.status === value];
    case "label": {
      const has = labelTest(value);
      return ["label", (r) => has(r.config?.labels ?? {})];
    }
    case "network":
      return ["network", (r) => networksOf(r).some((n) => n.name === value || (/^[0-9a-f]+$/.test(value) && n.id?.startsWith(value)))];
    case "publish":
    case "expose": {
      // Container ports, as Docker's: publish=80 is a container whose port 80 is published
      // (on whatever host port), expose=80 one that exposes it (every published port is).
      const { proto, lo, hi } = parsePortRange(value, `--filter ${key}=`);
      const inRange = (port: number, p: string) => p === proto && port >= lo && port <= hi;
      if (key === "publish") return ["publish", (r) => (r.ports ?? []).some((p) => inRange(p.containerPort, p.proto))];
      return ["expose", (r) =>
        (r.ports ?? []).some((p) => inRange(p.containerPort, p.proto)) ||
        (r.exposed ?? []).some((e) => {
          const [n, p] = e.split("/");
          return inRange(Number(n), p!);
        })];
    }
  }
}

/** The --filter values as one test, by Docker's rule (src/cli/filter.ts). */
function filterOf(specs: string[]): Test {
  return combineFilters(specs, filterTest);
}

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
    filter: {
      type: "string", alias: "f", repeat: true, valueHint: "KEY=VALUE", complete: ["name=", "status=", "label=", "network=", "id=", "publish=", "expose="],
      description: "Only containers that match: name=REGEXP, status=created|restarting|running|exited, label=KEY or label=KEY=VALUE, network=NAME|ID, id=PREFIX, publish=PORT[-PORT][/PROTO] (a published container port), expose=PORT[-PORT][/PROTO] (an exposed or published one); the same key twice matches either (label filters must all match), different keys must all match; a status filter looks at every container",
      example: "tsnet ps --filter status=exited --filter label=tier=web",
    },
    last: {
      type: "string", alias: "n", valueHint: "N",
      description: "Only the N containers created last, whatever their state",
      example: "tsnet ps -n 3",
    },
    latest: {
      type: "boolean", alias: "l",
      description: "Only the container created last, whatever its state",
      example: "tsnet ps -lq",
    },
  },
  examples: ["tsnet ps", "tsnet ps -a --format '{{.Names}} {{.Status}}'", "tsnet ps --format json", "tsnet rm $(tsnet ps -q --filter status=exited)"],
  async run({ opts }) {
    const format = parseFormat("ps", opts.format, "error");
    if (format.kind === "template") execute("ps", format.template, HEADERS); // an unknown field fails here, before anything is read
    const match = filterOf(opts.filter);
    if (opts.last !== undefined && !/^-?\d{1,9}$/.test(opts.last)) throw new UsageError(`invalid -n "${opts.last}": give a number of containers, e.g. tsnet ps -n 3`);
    // As Docker: -n N (N > 0) and -l look at exited containers too, and so does a status filter.
    const limit = opts.latest && opts.last === undefined ? 1 : Math.max(0, Number(opts.last ?? 0));
    const all = opts.all || limit > 0 || opts.filter.some((f) => f.startsWith("status="));
    requireRoot("tsnet ps", STATE_IS_ROOTS);
    await recover();
    mark("recovered");
    let recs = listRecords()
      .filter((r) => (all || isRunning(r)) && match(r))
      .sort((a, b) => b.created.localeCompare(a.created));
    if (limit > 0) recs = recs.slice(0, limit);
    mark("listed");
    const kernel = opts.quiet ? new Map<string, AimedPort[]>() : await kernelPorts(recs);
    mark("ports");
    const rows = recs.map((r) => row(r, kernel));
    mark("rows");
    let text: string;
    if (opts.quiet) text = lines(rows.map((r) => r.ID));
    else if (format.kind === "json") text = lines(rows.map((r) => JSON.stringify(r)));
    else if (format.kind === "template") text = templateRows("ps", format, rows, HEADERS);
    else text = `${table(rows)}\n`;
    mark("formatted");
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
  // Each cell once: ps of 5,000 containers makes 30,000 of them.
  const cells = rows.map((r) => cols.map(([, k]) => cell(r, k)));
  const widths = cols.map(([h], i) => cells.reduce((w, c) => Math.max(w, c[i]!.length), h.length));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]! + 3))).join("").trimEnd();
  return [line(cols.map(([h]) => h)), ...cells.map(line)].join("\n");
}
