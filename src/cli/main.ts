// Entry point. Commands load lazily: what a command imports at start-up is most of its latency,
// so `tsnet run` never pays for the others.
import { runCommand, type CommandDef } from "citty";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { log } from "./log.ts";

const VERSION = "0.1.0";

const COMMANDS: Record<string, { about: string; load: () => Promise<CommandDef<any>> }> = {
  run: { about: "Run a command in its own network namespace", load: () => import("../commands/run.ts").then((m) => m.default) },
  ps: { about: "List containers", load: () => import("../commands/ps.ts").then((m) => m.default) },
  inspect: { about: "Docker-shaped JSON about containers, read from the kernel", load: () => import("../commands/inspect.ts").then((m) => m.default) },
  exec: { about: "Run a command in a running container's namespace", load: () => import("../commands/exec.ts").then((m) => m.default) },
  logs: { about: "Print a detached container's output", load: () => import("../commands/logs.ts").then((m) => m.default) },
  stop: { about: "Stop running containers (TERM, then KILL)", load: () => import("../commands/stop.ts").then((m) => m.default) },
  top: { about: "List a container's processes", load: () => import("../commands/top.ts").then((m) => m.default) },
  rm: { about: "Remove containers", load: () => import("../commands/rm.ts").then((m) => m.default) },
};

// Internal commands that tsnet starts itself; not listed in the usage.
const HIDDEN: typeof COMMANDS = {
  _dellink: { about: "", load: () => import("../commands/_dellink.ts").then((m) => m.default) },
  _supervise: { about: "", load: () => import("../commands/_supervise.ts").then((m) => m.default) },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)}${c.about}`);
  return [
    "Usage: tsnet COMMAND [OPTIONS]",
    "",
    "Docker-style container networking for any host command.",
    "",
    "Commands:",
    ...rows,
    "",
    "Run 'tsnet COMMAND --help' for more on a command.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  if (name === "--version" || name === "-v" || name === "version") {
    process.stdout.write(`tsnet ${VERSION}\n`);
    return 0;
  }
  const entry = COMMANDS[name] ?? HIDDEN[name];
  if (!entry) throw new UsageError(`unknown command "${name}": see tsnet --help`);
  const { result } = await runCommand(await entry.load(), { rawArgs: rest });
  return typeof result === "number" ? result : 0;
}

function report(e: unknown): number {
  if (e instanceof TsnetError) {
    log.error(e.message);
    return e.exitCode;
  }
  log.error(`internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return 125;
}

// No top-level await: the compiled, bytecode-cached executable is a CommonJS bundle.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => process.exit(report(e)),
);
