// Entry point. Only the version is imported up front: everything else, down to node:fs, is
// loaded when needed, and a command's module (and the kernel layers under it) when that
// command runs, so `tsnet --version` and `tsnet ps` pay only for what they use.
import { versionLine } from "./version.ts";
import { flushTrace, mark } from "../errors/trace.ts";

/** Docker's code for "the runtime itself failed", also used for a wrong command line. */
const EXIT_TSNET = 125;

function isVersion(word: string | undefined): boolean {
  return word === "--version" || word === "-v" || word === "version";
}

async function main(argv: string[]): Promise<number> {
  mark("main");
  const first = argv[0];
  const [{ out }, { UsageError }, { resolveCommand }, { isGroup }, { parseArgv }] = await Promise.all([
    import("./output.ts"), import("../errors/errors.ts"), import("./dispatch.ts"), import("./command.ts"), import("./argv.ts"),
  ]);
  // Help text only when asked for: its module loads node:tty, a millisecond of every run.
  const help = () => import("./help.ts");
  if (first === undefined || first === "--help" || first === "-h") {
    out((await help()).topHelp());
    return 0;
  }
  if (first.startsWith("-")) {
    const { nearest } = await import("../errors/suggest.ts");
    const guess = nearest(first, ["--help", "--version"]);
    throw new UsageError(`unknown option "${first}" for tsnet: ${guess ? `did you mean "${guess}"? (see tsnet --help)` : "see tsnet --help"}`);
  }
  const { path, entry, def, rest } = await resolveCommand(argv, true);
  if (isGroup(def)) {
    if (rest.length === 0 || rest[0] === "--help" || rest[0] === "-h") {
      out((await help()).groupHelp(path, entry.description, def));
      return 0;
    }
    throw new UsageError(`unknown option "${rest[0]}" for tsnet ${path}: see tsnet ${path} --help`);
  }
  const parsed = parseArgv(def, rest);
  if ("help" in parsed) {
    if (entry.hidden) throw new UsageError(`tsnet ${path} is one of tsnet's own helpers and has no help: see tsnet --help`);
    out((await help()).commandHelp(path, entry.description, def));
    return 0;
  }
  return await def.run(parsed);
}

/** Messages are one line; a stray newline in one (from a library, say) would break that. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}

/**
 * The last resort: whatever escapes a command becomes one line and exit 125. tsnet's own errors
 * carry their message and code; anything else is a bug, shown with its stack only when
 * TSNET_DEBUG is set.
 */
async function report(e: unknown): Promise<number> {
  const [{ TsnetError }, { err, printable }] = await Promise.all([import("../errors/errors.ts"), import("./output.ts")]);
  if (e instanceof TsnetError) {
    // tsnet's own messages are one line by construction: a control character in one came from
    // the user's input (a name with a newline), and is shown escaped.
    err(`tsnet: ${printable(e.message)}\n`);
    if (process.env.TSNET_DEBUG && e.stack) err(`${e.stack}\n`);
    return e.exitCode;
  }
  if (process.env.TSNET_DEBUG) {
    err(`tsnet: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  } else {
    const what = e instanceof Error ? `${e.name === "Error" ? "" : `${e.name}: `}${e.message}` : String(e);
    err(`tsnet: internal error: ${printable(oneLine(what))} (run with TSNET_DEBUG=1 for details)\n`);
  }
  return EXIT_TSNET;
}

// In a process that manages running containers, an uncaught error is contained (logged and
// counted: src/errors/contain.ts); anywhere else it ends the command.
const failCommand = (e: unknown) => report(e).then((code) => process.exit(code));
const fail = (e: unknown) => {
  const contain = require("../errors/contain.ts") as typeof import("../errors/contain.ts");
  if (contain.faultsContained()) return contain.noteFault(e);
  return failCommand(e);
};

// No top-level await: the compiled, bytecode-cached executable is a CommonJS bundle.
if (process.env.CNI_COMMAND !== undefined) {
  // A container runtime runs tsnet as a CNI plugin (src/cni/): the environment and stdin are
  // the request, and argv means nothing.
  import("../cni/main.ts").then((m) => m.cniMain()).then((code) => process.exit(code));
} else if (isVersion(process.argv[2])) {
  // console.log is Bun's own synchronous write, cheaper than loading node:fs for one line
  // (into a closed pipe it writes nothing and tsnet still exits 0).
  console.log(versionLine());
} else {
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);
  main(process.argv.slice(2)).then((code) => {
    mark("exit");
    flushTrace();
    process.exit(code);
  }, failCommand);
}
