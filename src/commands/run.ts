import { defineCommand, renderUsage } from "citty";
import { constants } from "node:os";
import { scanOptions, type OptionSpec } from "../cli/argv.ts";
import { log } from "../cli/log.ts";
import { requireRoot } from "../cli/root.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { inNetns } from "../netns/netns.ts";
import { setupSandbox, teardownSandbox, type Sandbox } from "../network/sandbox.ts";
import { deleteRecord, newId, reserveName, saveRecord, type ContainerRecord, type NetworkMode } from "../state/containers.ts";

const OPTIONS: OptionSpec[] = [
  { names: ["--network", "--net"], key: "network", takesValue: true, example: "bridge" },
  { names: ["--name"], key: "name", takesValue: true, example: "web" },
  { names: ["--rm"], key: "rm", takesValue: false },
  // stdin and the terminal always pass straight through; accepted so Docker habits work.
  { names: ["-i", "--interactive"], key: "interactive", takesValue: false },
  { names: ["-t", "--tty"], key: "tty", takesValue: false },
  { names: ["-h", "--help"], key: "help", takesValue: false },
];

const MODES: NetworkMode[] = ["bridge", "host", "none"];

export interface RunOptions {
  mode: NetworkMode;
  name?: string;
  rm: boolean;
  help: boolean;
  command: string[];
}

export function parseRunArgs(argv: string[]): RunOptions {
  const { values, rest } = scanOptions("run", argv, OPTIONS);
  const network = (values.network as string | undefined) ?? "bridge";
  if (!MODES.includes(network as NetworkMode)) {
    throw new UsageError(`unknown network "${network}": use --network bridge (the default), host or none`);
  }
  const opts: RunOptions = {
    mode: network as NetworkMode,
    name: values.name as string | undefined,
    rm: values.rm === true,
    help: values.help === true,
    command: rest,
  };
  if (!opts.help && opts.command.length === 0) {
    throw new UsageError(`tsnet run needs a command to run, e.g. tsnet run -- ip addr`);
  }
  return opts;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;

function signalNumber(name: string): number {
  return (constants.signals as Record<string, number>)[name] ?? 0;
}

/** Runs the command in its sandbox in the foreground; resolves to tsnet's exit code. */
export async function runForeground(opts: RunOptions): Promise<number> {
  if (opts.mode !== "host") requireRoot(`tsnet run --network ${opts.mode}`);
  const id = newId();
  const rec: ContainerRecord = {
    id,
    name: reserveName(opts.name, id),
    command: opts.command,
    created: new Date().toISOString(),
    mode: opts.mode,
    status: "created",
    autoRemove: opts.rm,
  };

  // Handlers go in before anything is made: a signal during setup must not kill tsnet with
  // objects half-made. It is remembered and delivered once the command exists.
  let child: Bun.Subprocess | undefined;
  let pending: NodeJS.Signals | undefined;
  const forward = (sig: NodeJS.Signals) => {
    if (child) child.kill(sig);
    else pending ??= sig;
  };
  for (const s of FORWARDED) process.on(s, forward);

  let sandbox: Sandbox | undefined;
  try {
    saveRecord(rec);
    if (opts.mode !== "host") sandbox = setupSandbox(rec);
  } catch (e) {
    deleteRecord(rec);
    throw e;
  }

  let code: number;
  try {
    child = spawnIn(sandbox, opts.command);
    if (pending) child.kill(pending);
    rec.pid = child.pid;
    rec.status = "running";
    rec.startedAt = new Date().toISOString();
    saveRecord(rec);
    await child.exited;
    code = child.exitCode ?? 128 + signalNumber(String(child.signalCode ?? ""));
  } catch (e) {
    code = e instanceof TsnetError ? e.exitCode : 125;
    log.error(e);
  }

  rec.status = "exited";
  rec.exitCode = code;
  rec.finishedAt = new Date().toISOString();
  try {
    teardownSandbox(rec, sandbox);
  } finally {
    for (const s of FORWARDED) process.off(s, forward);
    if (rec.autoRemove) deleteRecord(rec);
    else saveRecord(rec);
  }
  return code;
}

/** Starts the command with stdio passed through, inside the sandbox's namespace when it has one. */
function spawnIn(sandbox: Sandbox | undefined, command: string[]): Bun.Subprocess {
  const start = () => Bun.spawn(command, { stdio: ["inherit", "inherit", "inherit"] });
  try {
    // Bun.spawn forks on the calling thread, so the child is born in that thread's namespace.
    return sandbox ? inNetns(sandbox.ns.fd, start) : start();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new TsnetError(`cannot run "${command[0]}": executable file not found in $PATH`, 127);
    if (code === "EACCES" || code === "EISDIR" || code === "ENOEXEC") {
      throw new TsnetError(`cannot run "${command[0]}": permission denied (not an executable file)`, 126);
    }
    throw e;
  }
}

const run = defineCommand({
  meta: {
    name: "run",
    description: "Run a command in a new network namespace wired like a Docker container",
  },
  args: {
    network: { type: "string", description: "bridge (default: veth on tsnet0 with an address), host (no new namespace) or none (only lo)", valueHint: "MODE" },
    name: { type: "string", description: "Name of the container (unique; generated if not given)", valueHint: "NAME" },
    rm: { type: "boolean", description: "Forget the container's record when it exits" },
    command: { type: "positional", description: "The command and its arguments; options end at -- or at the first word that is not an option", required: false },
  },
  async run({ rawArgs }) {
    const opts = parseRunArgs(rawArgs);
    if (opts.help) {
      process.stdout.write(`${await renderUsage(run)}\n`);
      return 0;
    }
    return runForeground(opts);
  },
});

export default run;
