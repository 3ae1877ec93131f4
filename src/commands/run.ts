import { defineCommand, renderUsage } from "citty";
import { scanOptions, type OptionSpec } from "../cli/argv.ts";
import { log } from "../cli/log.ts";
import { requireRoot } from "../cli/root.ts";
import { createContainer, finishContainer, recoverOrphans, spawnIn, started, track, type CreateOptions } from "../container/lifecycle.ts";
import { forwardSignals, type SignalRoute } from "../container/proc.ts";
import { adoptOrphans, reapOrphans } from "../process/children.ts";
import { runDetached } from "../supervisor/client.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { describeMapping, parsePublishAll } from "../network/ports.ts";
import type { NetworkMode } from "../state/containers.ts";

const OPTIONS: OptionSpec[] = [
  { names: ["--network", "--net"], key: "network", takesValue: true, example: "bridge" },
  { names: ["--name"], key: "name", takesValue: true, example: "web" },
  { names: ["-p", "--publish"], key: "publish", takesValue: true, repeatable: true, example: "8080:80" },
  { names: ["--rm"], key: "rm", takesValue: false },
  { names: ["-d", "--detach"], key: "detach", takesValue: false },
  // stdin and the terminal always pass straight through; accepted so Docker habits work.
  { names: ["-i", "--interactive"], key: "interactive", takesValue: false },
  { names: ["-t", "--tty"], key: "tty", takesValue: false },
  { names: ["-h", "--help"], key: "help", takesValue: false },
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
  } else if (network === "bridge" || network === "host" || network === "none") {
    mode = network;
  } else {
    throw new UsageError(`unknown network "${network}": use --network bridge (the default), host, none or container:NAME`);
  }
  const publish = parsePublishAll((values.publish as string[] | undefined) ?? []);
  if (publish.length && (mode === "none" || mode === "container")) {
    throw new UsageError(`-p cannot be used with --network ${network}: ports are published on the bridge network only`);
  }
  const opts: RunOptions = {
    mode,
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

/**
 * Runs the command in its container in the foreground, until the last of its processes has ended;
 * resolves to tsnet's exit code.
 */
export async function runForeground(opts: RunOptions): Promise<number> {
  // Handlers go in before anything is made: a signal during setup must not kill tsnet with
  // objects half-made. It is held and delivered once the command exists.
  let route: SignalRoute | undefined;
  const signals = forwardSignals(() => route);
  // The container's daemons are re-parented to tsnet when their parent exits, and reaped here.
  adoptOrphans();
  try {
    const live = createContainer(opts);
    if (live.warning) log.warn(live.warning);
    for (const m of live.rec.ports ?? []) {
      if (!opts.publish.some((p) => p.hostPort === m.hostPort && p.proto === m.proto)) log.info(`published ${describeMapping(m)}`);
    }
    let code: number;
    try {
      const child = spawnIn(live, opts.command, ["inherit", "inherit", "inherit"]);
      const running = track(live, child);
      route = running.route;
      signals.flush();
      started(live, child);
      code = await running.ended;
    } catch (e) {
      code = e instanceof TsnetError ? e.exitCode : 125;
      log.error(e);
    }
    finishContainer(live, code);
    reapOrphans();
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
      const { id, warning } = await runDetached({ op: "run", opts, env: process.env, cwd: process.cwd() });
      if (warning) log.warn(warning);
      process.stdout.write(`${id}\n`);
      return 0;
    }
    recoverOrphans();
    return runForeground(opts);
  },
});

export default run;
