import { defineCommand, type Values } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { out } from "../cli/output.ts";
import { requireRoot } from "../cli/root.ts";
import { createContainer, finishContainer, type CreateOptions } from "../container/lifecycle.ts";
import { Managed, type Launch } from "../container/manage.ts";
import { commandEnv, explicitEnv, parseLabels, resolveUser, resolveWorkdir } from "../container/config.ts";
import { parseRestart } from "../container/restart.ts";
import { forwardSignals, type SignalRoute } from "../container/proc.ts";
import { adoptOrphans, reapOrphans, subreaperWarning } from "../process/children.ts";
import { TtyRelay } from "../process/terminal.ts";
import { runDetached, recover } from "../supervisor/client.ts";
import { retireManager } from "../state/managers.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { containFaults, faultPoint, stopContainingFaults } from "../errors/contain.ts";
import { parsePortRange, parsePublishAll } from "../network/ports.ts";
import { describePort } from "../ip/port.ts";
import type { NetworkMode, RunConfig } from "../state/containers.ts";
import { parseIp } from "../ip/addr.ts";
import { parseMac } from "../network/bridge.ts";
import { staticAddress } from "../network/sandbox.ts";
import { mark } from "../errors/trace.ts";

export const OPTIONS = {
  detach: {
    type: "boolean", alias: "d",
    description: "Run in the background under tsnet's supervisor and print the container's id",
    example: "tsnet run -d --name web -p 8080:80 -- nginx -g 'daemon off;'",
  },
  interactive: {
    type: "boolean", alias: "i",
    description: "Attach stdin: without it the command reads /dev/null, as in Docker (a pipe passes byte for byte; with -t, keys go to its terminal)",
    example: "printf 'a\\nb\\n' | tsnet run -i -- wc -l",
  },
  name: {
    type: "string", valueHint: "NAME",
    description: "Name of the container (unique; one is made up if not given)",
    example: "tsnet run --name web -- python3 -m http.server 80",
  },
  network: {
    type: "string", aliases: ["net"], valueHint: "NETWORK", complete: "network",
    description: "bridge (the default: eth0 on tsnet0 with an address), a network made with tsnet network create, none (only lo), host (no namespace of its own) or container:NAME (share that container's namespace)",
    example: "tsnet run --network backend -- ip addr",
  },
  ip: {
    type: "string", valueHint: "ADDRESS",
    description: "The container's address on its (user-defined) network, instead of the next free one",
    example: "tsnet run --network backend --ip 10.78.0.10 -- ip addr",
  },
  ip6: {
    type: "string", valueHint: "ADDRESS",
    description: "The container's IPv6 address on its (user-defined, dual-stack) network, instead of the next free one",
    example: "tsnet run --network web6 --ip6 fd00:80::10 -- ip addr",
  },
  "mac-address": {
    type: "string", valueHint: "MAC",
    description: "eth0's MAC address (unicast), instead of one derived from its address",
    example: "tsnet run --mac-address 02:42:0a:4e:00:0a -- ip link",
  },
  "network-alias": {
    type: "string", aliases: ["alias"], repeat: true, valueHint: "NAME",
    description: "Another name the container answers to on its (user-defined) network",
    example: "tsnet run --network backend --network-alias db -- redis-server",
  },
  hostname: {
    type: "string", alias: "h", valueHint: "NAME",
    description: "The container's hostname (its own UTS namespace); the first 12 hex digits of its id when not given",
    example: "tsnet run -h web01 -- hostname",
  },
  dns: {
    type: "string", repeat: true, valueHint: "ADDRESS",
    description: "A nameserver the container's resolver forwards to, instead of the host's",
    example: "tsnet run --dns 192.0.2.53 -- getent hosts example.com",
  },
  "dns-search": {
    type: "string", repeat: true, valueHint: "DOMAIN",
    description: "A search domain in the container's /etc/resolv.conf, instead of the host's",
    example: "tsnet run --dns-search corp.example -- getent hosts intranet",
  },
  "add-host": {
    type: "string", repeat: true, valueHint: "NAME:ADDRESS",
    description: "A line of the container's /etc/hosts; ADDRESS host-gateway is its network's gateway (the host)",
    example: "tsnet run --add-host db.local:192.0.2.10 --add-host host:host-gateway -- cat /etc/hosts",
  },
  publish: {
    type: "string", alias: "p", repeat: true, valueHint: "SPEC",
    description: "Publish a container port on the host: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp], an IPv6 HOST_IP in brackets ([::1]:8080:80); ranges as 8080-8081:80-81; HOST_PORT left out picks a free one; without HOST_IP on 0.0.0.0, and [::] too on a network with IPv6",
    example: "tsnet run -p 8080:80 -p 127.0.0.1:5353:53/udp -p [::1]:8081:80 -- nginx",
  },
  "publish-all": {
    type: "boolean", alias: "P",
    description: "Publish every exposed port (--expose) on a free host port of every host address",
    example: "tsnet run -P --expose 80 --expose 9000-9001/udp -- nginx",
  },
  expose: {
    type: "string", repeat: true, valueHint: "PORT[/PROTO]",
    description: "Expose a container port or range (80, 53/udp, 9000-9010): listed by ps, published by -P",
    example: "tsnet run --expose 80 -P -- nginx",
  },
  rm: {
    type: "boolean",
    description: "Forget the container as soon as its command exits",
    example: "tsnet run --rm -- ip addr",
  },
  tty: {
    type: "boolean", alias: "t",
    description: "Give the command a terminal of its own (a pseudo-terminal, its controlling terminal: job control works); output is relayed, keys too with -i (the caller's terminal in raw mode meanwhile); the container ends when its first process does",
    example: "tsnet run -it -- bash",
  },
  env: {
    type: "string", alias: "e", repeat: true, valueHint: "NAME=VALUE",
    description: "Set an environment variable for the command (added to the caller's environment, which it gets whole); a bare NAME passes the caller's value, and is left out if the caller has none",
    example: "tsnet run -e PORT=8080 -e HOME -- env",
  },
  "env-file": {
    type: "string", repeat: true, valueHint: "FILE", complete: "file",
    description: "Read environment variables from a file in Docker's format: NAME=VALUE per line, taken as is (no quotes removed), a bare NAME from the caller, # comments; -e comes after",
    example: "tsnet run --env-file ./app.env -- ./server",
  },
  workdir: {
    type: "string", alias: "w", valueHint: "DIR", complete: "file",
    description: "The command's working directory (an existing one; relative to the caller's), instead of the caller's",
    example: "tsnet run -w /srv/www -- python3 -m http.server 80",
  },
  user: {
    type: "string", alias: "u", valueHint: "USER[:GROUP]",
    description: "Run the command as this user and group: names from /etc/passwd and /etc/group, or numbers; the group defaults to the user's; HOME, USER and LOGNAME follow the user",
    example: "tsnet run -u www-data -p 8080:8080 -- python3 -m http.server 8080",
  },
  restart: {
    type: "string", valueHint: "POLICY", complete: ["no", "on-failure", "always", "unless-stopped"],
    description: "With -d: start the command again when it ends: no (the default), on-failure[:N] (on a non-zero exit, at most N times), always, unless-stopped; in the same container (address and ports kept), after 100 ms doubling to a minute; never after tsnet stop",
    example: "tsnet run -d --restart on-failure:5 --name worker -- ./worker",
  },
  label: {
    type: "string", alias: "l", repeat: true, valueHint: "KEY=VALUE",
    description: "Set a label on the container, shown by tsnet inspect (Config.Labels) and matched by tsnet ps --filter label=KEY[=VALUE]",
    example: "tsnet run -d --label tier=web --label owner=ops -- nginx -g 'daemon off;'",
  },
} as const;

export type RunOptions = CreateOptions;

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

/** The parsed command line as the options a container is created with. */
export function runOptions(values: Values<typeof OPTIONS>, command: string[]): RunOptions {
  const network = values.network ?? "bridge";
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
  const publish = parsePublishAll(values.publish);
  // --expose: container ports; -P publishes each on a free host port (Docker's semantics).
  const expose: string[] = [];
  for (const e of values.expose) {
    const { proto, lo, hi } = parsePortRange(e, "--expose");
    for (let p = lo; p <= hi; p++) if (!expose.includes(`${p}/${proto}`)) expose.push(`${p}/${proto}`);
  }
  if (values["publish-all"]) {
    for (const e of expose) {
      const [port, proto] = e.split("/") as [string, "tcp" | "udp"];
      // A port -p publishes already is not published twice.
      if (!publish.some((p) => p.containerPort === Number(port) && p.proto === proto)) publish.push({ proto, hostPort: 0, containerPort: Number(port) });
    }
  }
  if (publish.length && (mode === "none" || mode === "container")) {
    throw new UsageError(`-p cannot be used with --network ${network}: ports are published on the bridge network only`);
  }
  const ownNamespaces = mode === "bridge" || mode === "none";
  const refuseWith = (flag: string, what: string): never => {
    throw new UsageError(`${flag} cannot be used with --network ${network}: ${what}`);
  };
  if (values.ip !== undefined) {
    if (mode !== "bridge") refuseWith("--ip", "an address is leased on a bridge network only");
    staticAddress(values.ip, 4);
  }
  if (values.ip6 !== undefined) {
    if (mode !== "bridge") refuseWith("--ip6", "an address is leased on a bridge network only");
    staticAddress(values.ip6, 6);
  }
  if (values["mac-address"] !== undefined) {
    if (mode !== "bridge") refuseWith("--mac-address", "only a bridge network gives the container an interface of its own");
    const mac = parseMac(values["mac-address"]);
    // Multicast (the first octet's low bit) and all-zero addresses are no interface's.
    if (!mac || mac[0]! & 1 || mac.every((b) => b === 0)) throw new UsageError(`invalid --mac-address "${values["mac-address"]}": give a unicast MAC, e.g. --mac-address 02:42:0a:4e:00:0a`);
  }
  if (values["network-alias"].length && mode !== "bridge") refuseWith("--network-alias", "aliases are names on a user network");
  for (const a of values["network-alias"]) checkDnsName(a, "--network-alias");
  if (values.hostname !== undefined) {
    if (!ownNamespaces) refuseWith("--hostname", "the container shares another namespace's hostname");
    checkDnsName(values.hostname, "--hostname");
  }
  for (const d of values.dns) {
    if (mode !== "bridge") refuseWith("--dns", "DNS servers are set for containers on a bridge network");
    if (!parseIp(d)) throw new UsageError(`invalid --dns "${d}": give the address of a nameserver, e.g. --dns 192.0.2.53`);
  }
  for (const d of values["dns-search"]) {
    if (mode !== "bridge") refuseWith("--dns-search", "DNS is set for containers on a bridge network");
    checkDnsName(d, "--dns-search");
  }
  const extraHosts = values["add-host"].map((spec) => {
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
    ip: values.ip,
    ip6: values.ip6,
    mac: values["mac-address"],
    aliases: values["network-alias"],
    hostname: values.hostname,
    dns: values.dns,
    dnsSearch: values["dns-search"],
    extraHosts,
    join,
    name: values.name,
    rm: values.rm,
    detached: values.detach,
    command,
    publish,
    ...(expose.length && { expose }),
  };
  if (mode === "host" && publish.length) {
    // As Docker: the command already listens on the host's own ports.
    log.warn("published ports are discarded with --network host");
    opts.publish = [];
  }
  return opts;
}

/** Everything `run` needs besides the network: what the command runs with, and what the record keeps. */
export interface RunPlan {
  opts: RunOptions;
  launch: Launch;
  config: RunConfig;
}

/** The parsed command line, read and checked in full before anything is made. */
export function runPlan(values: Values<typeof OPTIONS>, command: string[], caller: Record<string, string | undefined>, cwd: string): RunPlan {
  const opts = runOptions(values, command);
  let restart: RunConfig["restart"];
  if (values.restart !== undefined) {
    restart = parseRestart(values.restart);
    if (restart.name !== "no" && !opts.detached) {
      throw new UsageError(`--restart ${values.restart} needs -d: only the supervisor starts a command again (a foreground run ends with its command)`);
    }
    if (restart.name !== "no" && opts.rm) throw new UsageError(`--restart ${values.restart} and --rm conflict: a container that is removed when it ends cannot be started again`);
  }
  const explicit = explicitEnv(values["env-file"], values.env, caller);
  const user = values.user === undefined ? undefined : resolveUser(values.user);
  const workdir = values.workdir === undefined ? undefined : resolveWorkdir(values.workdir, cwd);
  const labels = parseLabels(values.label);
  const config: RunConfig = {
    ...(Object.keys(labels).length && { labels }),
    ...(explicit.length && { env: explicit }),
    ...(workdir !== undefined && { workdir }),
    ...(values.user !== undefined && { user: values.user }),
    ...(restart && restart.name !== "no" && { restart }),
    ...(values.tty && { tty: true }),
    ...(values.interactive && { interactive: true }),
  };
  const launch: Launch = { command, env: commandEnv(caller, explicit, user), cwd: workdir, uid: user?.uid, gid: user?.gid };
  return { opts, launch, config };
}

/** How long the last output of a -t session may take once its processes have ended (a process
 * outside the container that was handed the terminal could hold it open for ever). */
const TTY_DRAIN_MS = 2000;

/**
 * Runs the command in its container in the foreground, until the last of its processes has ended;
 * resolves to tsnet's exit code. `tsnet restart` starts the command again in place: this process
 * stays its manager, with the same terminal.
 */
export async function runForeground({ opts, launch, config }: RunPlan): Promise<number> {
  // Handlers go in before anything is made: a signal during setup must not kill tsnet with
  // objects half-made. It is held and delivered once the command exists.
  let route: SignalRoute | undefined;
  // -t: the command's terminal, relayed to and from the caller's.
  const tty = config.tty ? new TtyRelay({ out: 1, input: config.interactive === true }) : undefined;
  const signals = forwardSignals(() => route, tty && { stopping: () => tty.suspend(), resumed: () => tty.resume() });
  // The container's daemons are re-parented to tsnet when their parent exits, and reaped here.
  adoptOrphans();
  if (subreaperWarning) log.warn(subreaperWarning);
  try {
    const live = createContainer(opts);
    if (live.warning) log.warn(live.warning);
    for (const m of live.rec.ports ?? []) {
      if (!opts.publish.some((p) => p.hostPort === m.hostPort && p.proto === m.proto)) log.info(`published ${describePort(m)}`);
    }
    if (Object.keys(config).length) live.rec.config = config;
    const managed = new Managed(live, launch, {
      // Without -i the command reads /dev/null, as Docker's does: a `while read` loop around
      // tsnet run keeps its lines.
      stdio: () => ({ stdio: [config.interactive ? "inherit" : "ignore", "inherit", "inherit"], done() {}, terminal: tty?.spawnOptions() }),
      started(running) {
        route = running.route;
        tty?.attach(running.terminal);
        signals.flush();
      },
    });
    let ended: Promise<number>;
    try {
      ended = managed.start();
    } catch (e) {
      // The command could not be started (its /etc files not written, the command not found):
      // the container is undone, record and name included, as a failed setup is.
      const code = e instanceof TsnetError ? e.exitCode : 125;
      log.error(e);
      finishContainer(live, code, true);
      reapOrphans();
      return code;
    }
    // The command runs: a fault now (this process also serves its resolver, its firewall
    // watch) is logged, not the end of the container (src/errors/contain.ts).
    containFaults("container's manager");
    faultPoint("manager-started-container");
    let code: number;
    try {
      code = await ended;
    } catch (e) {
      // Following it failed: Managed has ended and released the container already.
      stopContainingFaults();
      log.error(e);
      reapOrphans();
      return 125;
    }
    stopContainingFaults();
    mark("ended");
    // Every process of the container has ended: the pty's last bytes are on their way.
    await tty?.drain(TTY_DRAIN_MS);
    reapOrphans();
    return code;
  } finally {
    tty?.detach();
    // Done managing (or never got to it): this process's manager lock file goes.
    retireManager();
    signals.stop();
    mark("retired");
  }
}

export default defineCommand({
  name: "run",
  details: [
    "Options end at -- or at the first word that is not an option: tsnet run ls -l passes -l to ls. stdout and stderr pass straight through, stdin only with -i (else the command reads /dev/null); the exit status is the command's.",
    "Without -t the container lives while any of its processes does (a daemonizing command keeps it). With -t it ends with its first process, as a terminal session ends with its shell: what is left gets SIGTERM, then SIGKILL after 10 s.",
    "-h is not --help here: as in Docker, it is -h/--hostname.",
  ],
  args: [
    { name: "COMMAND", what: "a command to run", description: "The program to run in the container", complete: "command" },
    { name: "ARG", what: "its arguments", description: "Its arguments, passed untouched", required: false, repeat: true, complete: "file" },
  ],
  options: OPTIONS,
  optionsEndAtFirstArg: true,
  helpShort: false,
  examples: [
    "tsnet run --rm -- ip addr",
    "tsnet run -it --rm -- bash",
    "tsnet run -d --name web -p 8080:80 -- nginx -g 'daemon off;'",
    "tsnet run --rm --network container:web -- curl -s localhost",
  ],
  async run({ opts: values, args }) {
    mark("command");
    const plan = runPlan(values, args, process.env, process.cwd());
    const { opts, launch, config } = plan;
    requireRoot(`tsnet run --network ${opts.mode}`, opts.mode === "host" ? "it records the container under /run/tsnet, which is root's" : undefined);
    if (opts.detached) {
      // Only the id goes to stdout, so `id=$(tsnet run -d ...)` works.
      const { id, warnings } = await runDetached({
        op: "run", opts, env: launch.env ?? process.env, cwd: launch.cwd ?? process.cwd(), uid: launch.uid, gid: launch.gid, config,
      });
      for (const w of warnings) log.warn(w);
      out(`${id}\n`);
      return 0;
    }
    await recover();
    return runForeground(plan);
  },
});
