import { defineCommand, type Values } from "../cli/command.ts";
import { log } from "../cli/log.ts";
import { out } from "../cli/output.ts";
import { requireRoot } from "../cli/root.ts";
import { createContainer, finishContainer, recoverOrphans, spawnIn, started, type CreateOptions } from "../container/lifecycle.ts";
import { exitStatus, forwardSignals } from "../container/proc.ts";
import { runDetached } from "../supervisor/client.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { describeMapping, parsePublishAll } from "../network/ports.ts";
import type { NetworkMode } from "../state/containers.ts";

const OPTIONS = {
  detach: {
    type: "boolean", alias: "d",
    description: "Run in the background under tsnet's supervisor and print the container's id",
    example: "tsnet run -d --name web -p 8080:80 -- nginx -g 'daemon off;'",
  },
  interactive: {
    type: "boolean", alias: "i",
    description: "Accepted for Docker habits: stdin always passes straight through",
    example: "printf 'a\\nb\\n' | tsnet run -i -- wc -l",
  },
  name: {
    type: "string", valueHint: "NAME",
    description: "Name of the container (unique; one is made up if not given)",
    example: "tsnet run --name web -- python3 -m http.server 80",
  },
  network: {
    type: "string", aliases: ["net"], valueHint: "NETWORK", complete: "network",
    description: "bridge (the default: eth0 on tsnet0 with an address), none (only lo), host (no namespace of its own) or container:NAME (share that container's namespace)",
    example: "tsnet run --network none -- ip link",
  },
  publish: {
    type: "string", alias: "p", repeat: true, valueHint: "SPEC",
    description: "Publish a container port on the host: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp]; ranges as 8080-8081:80-81; HOST_PORT left out picks a free one",
    example: "tsnet run -p 8080:80 -p 127.0.0.1:5353:53/udp -- nginx",
  },
  rm: {
    type: "boolean",
    description: "Forget the container as soon as its command exits",
    example: "tsnet run --rm -- ip addr",
  },
  tty: {
    type: "boolean", alias: "t",
    description: "Accepted for Docker habits: the terminal always passes straight through",
    example: "tsnet run -it -- bash",
  },
} as const;

export type RunOptions = CreateOptions;

/** The parsed command line as the options a container is created with. */
export function runOptions(values: Values<typeof OPTIONS>, command: string[]): RunOptions {
  const network = values.network ?? "bridge";
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
  const publish = parsePublishAll(values.publish);
  if (publish.length && (mode === "none" || mode === "container")) {
    throw new UsageError(`-p cannot be used with --network ${network}: ports are published on the bridge network only`);
  }
  const opts: RunOptions = {
    mode,
    join,
    name: values.name,
    rm: values.rm,
    detached: values.detach,
    command,
    publish,
  };
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

export default defineCommand({
  name: "run",
  details: [
    "Options end at -- or at the first word that is not an option: tsnet run ls -l passes -l to ls. stdin, stdout and stderr pass straight through; the exit status is the command's.",
    "-h is not --help here: as in Docker, it is kept for --hostname.",
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
    "tsnet run -d --name web -p 8080:80 -- nginx -g 'daemon off;'",
    "tsnet run --rm --network container:web -- curl -s localhost",
  ],
  async run({ opts: values, args }) {
    const opts = runOptions(values, args);
    requireRoot(`tsnet run --network ${opts.mode}`, opts.mode === "host" ? "it records the container under /run/tsnet, which is root's" : undefined);
    if (opts.detached) {
      // Only the id goes to stdout, so `id=$(tsnet run -d ...)` works.
      const id = await runDetached({ op: "run", opts, env: process.env, cwd: process.cwd() });
      out(`${id}\n`);
      return 0;
    }
    recoverOrphans();
    return runForeground(opts);
  },
});
