import { defineCommand, renderUsage } from "citty";
import { scanOptions, type OptionSpec } from "../cli/argv.ts";
import { log } from "../cli/log.ts";
import { requireRoot } from "../cli/root.ts";
import { createContainer, finishContainer, recoverOrphans, spawnIn, started, type CreateOptions } from "../container/lifecycle.ts";
import { exitStatus, forwardSignals } from "../container/proc.ts";
import { runDetached } from "../supervisor/client.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { describeMapping, parsePublishAll } from "../network/ports.ts";
import type { NetworkMode } from "../state/containers.ts";
import { parseIp } from "../ip/addr.ts";
import { parseMac } from "../network/bridge.ts";

/**
 * A hostname, alias or search domain: DNS labels of letters, digits and inner hyphens, joined by
 * dots, at most 63 characters (the kernel's hostname limit is 64).
 */
function checkDnsName(name: string, flag: string): void {
  const label = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
  if (name.length > 63 || !name.split(".").every((l) => label.test(l))) {
    throw new UsageError(`invalid ${flag} "${name}": use DNS labels (letters, digits and inner '-', joined by '.'), at most 63 characters`);
  }
}

const OPTIONS: OptionSpec[] = [
  { names: ["--network", "--net"], key: "network", takesValue: true, example: "bridge" },
  { names: ["--name"], key: "name", takesValue: true, example: "web" },
  { names: ["-p", "--publish"], key: "publish", takesValue: true, repeatable: true, example: "8080:80" },
  { names: ["--rm"], key: "rm", takesValue: false },
  { names: ["-d", "--detach"], key: "detach", takesValue: false },
  // stdin and the terminal always pass straight through; accepted so Docker habits work.
  { names: ["-i", "--interactive"], key: "interactive", takesValue: false },
  { names: ["-t", "--tty"], key: "tty", takesValue: false },
  { names: ["--ip"], key: "ip", takesValue: true, example: "10.78.0.10" },
  { names: ["--mac-address"], key: "mac", takesValue: true, example: "02:42:0a:4e:00:0a" },
  { names: ["--network-alias", "--alias"], key: "alias", takesValue: true, repeatable: true, example: "db" },
  { names: ["-h", "--hostname"], key: "hostname", takesValue: true, example: "web" },
  { names: ["--dns"], key: "dns", takesValue: true, repeatable: true, example: "192.0.2.53" },
  { names: ["--dns-search"], key: "dnsSearch", takesValue: true, repeatable: true, example: "example.com" },
  { names: ["--add-host"], key: "addHost", takesValue: true, repeatable: true, example: "db.local:192.0.2.10" },
  { names: ["--help"], key: "help", takesValue: false },
];

export interface RunOptions extends CreateOptions {
  help: boolean;
}

export function parseRunArgs(argv: string[]): RunOptions {
  const { values, rest } = scanOptions("run", argv, OPTIONS);
  const network = (values.network as string | undefined) ?? "bridge";
  let mode: NetworkMode;
  let join: string | undefined;
  if (network.startsWith("container:")) {
    mode = "container";
    join = network.slice("container:".length);
    if (!join) throw new UsageError(`--network container: needs a container, e.g. --network container:web`);
  } else if (network === "host" || network === "none") {
    mode = network;
  } else {
    // "bridge" or a user network; whether it exists is checked when the container is made.
    mode = "bridge";
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(network)) {
      throw new UsageError(`invalid --network "${network}": give bridge, host, none, container:NAME or the name of a network (tsnet network ls)`);
    }
  }
  const publish = parsePublishAll((values.publish as string[] | undefined) ?? []);
  if (publish.length && (mode === "none" || mode === "container")) {
    throw new UsageError(`-p cannot be used with --network ${network}: ports are published on the bridge network only`);
  }
  const many = (k: string) => (values[k] as string[] | undefined) ?? [];
  const one = (k: string) => values[k] as string | undefined;
  const ownNamespaces = mode === "bridge" || mode === "none";
  const refuseWith = (flag: string, what: string) => {
    throw new UsageError(`${flag} cannot be used with --network ${network}: ${what}`);
  };
  if (one("ip") !== undefined) {
    if (mode !== "bridge") refuseWith("--ip", "an address is leased on a bridge network only");
    if (!parseIp(one("ip")!)) throw new UsageError(`invalid --ip "${one("ip")}": give an IPv4 address, e.g. --ip 10.78.0.10`);
  }
  if (one("mac") !== undefined) {
    if (mode !== "bridge") refuseWith("--mac-address", "only a bridge network gives the container an interface of its own");
    const mac = parseMac(one("mac")!);
    if (!mac || mac[0]! & 1) throw new UsageError(`invalid --mac-address "${one("mac")}": give a unicast MAC, e.g. --mac-address 02:42:0a:4e:00:0a`);
  }
  if (many("alias").length && mode !== "bridge") refuseWith("--network-alias", "aliases are names on a user network");
  for (const a of many("alias")) checkDnsName(a, "--network-alias");
  if (one("hostname") !== undefined) {
    if (!ownNamespaces) refuseWith("--hostname", "the container shares another namespace's hostname");
    checkDnsName(one("hostname")!, "--hostname");
  }
  for (const d of many("dns")) {
    if (mode !== "bridge") refuseWith("--dns", "DNS servers are set for containers on a bridge network");
    if (!parseIp(d)) throw new UsageError(`invalid --dns "${d}": give the address of a nameserver, e.g. --dns 192.0.2.53`);
  }
  for (const d of many("dnsSearch")) {
    if (mode !== "bridge") refuseWith("--dns-search", "DNS is set for containers on a bridge network");
    checkDnsName(d, "--dns-search");
  }
  const extraHosts = many("addHost").map((spec) => {
    if (!ownNamespaces) refuseWith("--add-host", "the container shares another namespace's /etc/hosts");
    const m = /^([^:=]+)[:=](.+)$/.exec(spec);
    if (!m) throw new UsageError(`invalid --add-host "${spec}": use NAME:ADDRESS, e.g. --add-host db.local:192.0.2.10 (or NAME:host-gateway)`);
    checkDnsName(m[1]!, "--add-host");
    if (m[2] !== "host-gateway" && !parseIp(m[2]!)) throw new UsageError(`invalid --add-host "${spec}": "${m[2]}" is not an IP address or host-gateway`);
    if (m[2] === "host-gateway" && mode !== "bridge") refuseWith("--add-host NAME:host-gateway", "only a bridge network has a gateway");
    return { name: m[1]!, address: m[2]! };
  });
  const opts: RunOptions = {
    mode,
    network: mode === "bridge" ? network : undefined,
    ip: one("ip"),
    mac: one("mac"),
    aliases: many("alias"),
    hostname: one("hostname"),
    dns: many("dns"),
    dnsSearch: many("dnsSearch"),
    extraHosts,
    join,
    name: values.name as string | undefined,
    rm: values.rm === true,
    detached: values.detach === true,
    help: values.help === true,
    command: rest,
    publish,
  };
  if (!opts.help && opts.command.length === 0) {
    throw new UsageError(`tsnet run needs a command to run, e.g. tsnet run -- ip addr`);
  }
  if (mode === "host" && publish.length) {
    // As Docker: the command already listens on the host's own ports.
    log.warn("published ports are discarded with --network host");
    opts.publish = [];
  }
  return opts;
}

/** Runs the command in its container in the foreground; resolves to tsnet's exit code. */
export async function runForeground(opts: RunOptions): Promise<number> {
  // Handlers go in before anything is made: a signal during setup must not kill tsnet with
  // objects half-made. It is held and delivered once the command exists.
  let child: Bun.Subprocess | undefined;
  const signals = forwardSignals(() => child);
  try {
    const live = createContainer(opts);
    for (const m of live.rec.ports ?? []) {
      if (!opts.publish.some((p) => p.hostPort === m.hostPort && p.proto === m.proto)) log.info(`published ${describeMapping(m)}`);
    }
    let code: number;
    try {
      child = spawnIn(live, opts.command, ["inherit", "inherit", "inherit"]);
      signals.flush();
      started(live, child);
      await child.exited;
      code = exitStatus(child);
    } catch (e) {
      code = e instanceof TsnetError ? e.exitCode : 125;
      log.error(e);
    }
    finishContainer(live, code);
    return code;
  } finally {
    signals.stop();
  }
}

const run = defineCommand({
  meta: {
    name: "run",
    description: "Run a command in a new network namespace wired like a Docker container",
  },
  args: {
    network: { type: "string", description: "bridge (default: veth on tsnet0 with an address), host (no new namespace), none (only lo) or container:NAME (share that container's namespace)", valueHint: "MODE" },
    publish: { type: "string", alias: "p", description: "Publish a container port on the host: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp], ranges as 8080-8081:80-81 (repeatable)", valueHint: "SPEC" },
    name: { type: "string", description: "Name of the container (unique; generated if not given)", valueHint: "NAME" },
    rm: { type: "boolean", description: "Forget the container's record when it exits" },
    detach: { type: "boolean", alias: "d", description: "Run in the background under tsnet's supervisor; print the container id" },
    command: { type: "positional", description: "The command and its arguments; options end at -- or at the first word that is not an option", required: false },
  },
  async run({ rawArgs }) {
    const opts = parseRunArgs(rawArgs);
    if (opts.help) {
      process.stdout.write(`${await renderUsage(run)}\n`);
      return 0;
    }
    if (opts.mode !== "host") requireRoot(`tsnet run --network ${opts.mode}`);
    if (opts.detached) {
      // Only the id goes to stdout, so `id=$(tsnet run -d ...)` works.
      const id = await runDetached({ op: "run", opts, env: process.env, cwd: process.cwd() });
      process.stdout.write(`${id}\n`);
      return 0;
    }
    recoverOrphans();
    return runForeground(opts);
  },
});

export default run;
