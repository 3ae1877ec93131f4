// `tsnet explain COMMAND ...`: the plan the command would commit, as the ip, tc, sysctl and nft
// commands a person would type (src/plan/render.ts), each step under a comment saying what it is
// for. It reads the current state and changes nothing: no record, no lease, no namespace. The
// command's words are parsed by that command's own option table (the same parse, errors and
// --help), so explain can never accept a line the command itself would refuse, or the reverse.
import { defineCommand, isGroup, type CommandDef, type Parsed } from "../cli/command.ts";
import { resolveCommand } from "../cli/dispatch.ts";
import { parseArgv } from "../cli/argv.ts";
import { out } from "../cli/output.ts";
import { UsageError, TsnetError } from "../errors/errors.ts";
import type { Plan } from "../plan/ops.ts";

/** What explain knows how to plan, by the command's words, and the planner for each. */
type Explainer = (parsed: Parsed<any>) => Plan | Promise<Plan>;

/** The commands whose plan can be shown; each entry plans from a read of the current state. */
export const EXPLAINABLE: Record<string, Explainer | undefined> = {
  run: undefined,
  "network create": undefined,
  "network connect": undefined,
  "network rm": undefined,
  rm: undefined,
  "cni-add": undefined,
};

/** The explained command's table, named `explain CMD` so its errors and help say how it was called. */
function asExplained<T extends CommandDef<any>>(def: T): T {
  return { ...def, name: `explain ${def.name}` };
}

async function explain(words: readonly string[]): Promise<{ path: string; plan: Plan } | { help: string }> {
  const names = Object.keys(EXPLAINABLE).join(", ");
  if (words[0] === "cni-add") throw new TsnetError(`tsnet explain cni-add: not planned by this build yet`, 125);
  const { path, entry, def, rest } = await resolveCommand(words, false);
  if (isGroup(def)) {
    throw new UsageError(`tsnet explain ${path} needs one of its commands: ${names} (see tsnet explain --help)`);
  }
  if (!(path in EXPLAINABLE)) throw new UsageError(`tsnet explain cannot show ${path}: it explains ${names}`);
  const explained = asExplained(def);
  const parsed = parseArgv(explained, rest);
  if ("help" in parsed) {
    const { commandHelp } = await import("../cli/help.ts");
    return { help: commandHelp(`explain ${path}`, `${entry.description}: shown as commands, nothing changed`, explained) };
  }
  const planner = EXPLAINABLE[path];
  if (!planner) throw new TsnetError(`tsnet explain ${path}: not planned by this build yet`, 125);
  return { path, plan: await planner(parsed) };
}

export default defineCommand({
  name: "explain",
  details: [
    "Prints, on stdout, a bash script of what COMMAND would do to the kernel: the namespace, links, addresses, routes, sysctls, the loopback guard (tc) and nf_tables changes, as ip, tc, sysctl and nft commands, each under a comment line saying what it is for. It reads the current state and changes nothing. COMMAND takes its own options and arguments, parsed exactly as COMMAND parses them: tsnet explain run --help lists run's.",
    "Run on a fresh host, the script builds what tsnet would (test/explain.test.ts compares them). Where no command does exactly what tsnet does (tsnet keeps a container's namespace by a symbolic link to its manager's fd; ip netns add bind-mounts it), the closest command is written and its comment says so. The command a container runs, its resolver (127.0.0.11) and its cgroup are not part of the script.",
  ],
  args: [
    { name: "COMMAND", what: "a command to explain", description: "run, network create, network connect, network rm, rm or cni-add", complete: "subcommand" },
    { name: "ARG", what: "its options and arguments", description: "COMMAND's own options and arguments", required: false, repeat: true, complete: "file" },
  ],
  options: {},
  optionsEndAtFirstArg: true,
  examples: [
    "tsnet explain run -d -p 8080:80 --name web -- python3 -m http.server 80",
    "tsnet explain network create --ipv6 backend",
    "tsnet explain run --help",
  ],
  async run({ args }) {
    const r = await explain(args);
    if ("help" in r) {
      out(r.help);
      return 0;
    }
    const [{ renderScript }, { loopbackGuardFilter }, { natTable }, { natNetworks }] = await Promise.all([
      import("../plan/render.ts"), import("../network/guard.ts"), import("../nat/ruleset.ts"), import("../network/networks.ts"),
    ]);
    out(renderScript(r.plan.ops, {
      guard: loopbackGuardFilter(),
      tables: [natTable({ networks: natNetworks() })],
      header: [`tsnet explain ${r.path}: what it would do, as commands (nothing was changed)`],
    }));
    return 0;
  },
});
