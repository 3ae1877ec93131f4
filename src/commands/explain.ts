// `tsnet explain COMMAND ...`: the plan the command would commit, as the ip, tc, sysctl and nft
// commands a person would type (src/plan/render.ts), each step under a comment saying what it is
// for. It reads the current state and changes nothing: no record, no lease, no namespace. The
// command's words are parsed by that command's own option table (the same parse, errors and
// --help), so explain can never accept a line the command itself would refuse, or the reverse.
import { defineCommand, isGroup, type CommandDef, type Parsed } from "../cli/command.ts";
import { resolveCommand } from "../cli/dispatch.ts";
import { parseArgv } from "../cli/argv.ts";
import { out } from "../cli/output.ts";
import { requireRoot } from "../cli/root.ts";
import { UsageError, TsnetError } from "../errors/errors.ts";
import type { Op } from "../plan/ops.ts";

/** A plan to show: its operations, and lines saying what the script leaves out or chose. */
export interface ExplainedPlan {
  ops: Op[];
  notes: string[];
}

/** What explain knows how to plan, by the command's words, and the planner for each. */
type Explainer = (parsed: Parsed<any>) => ExplainedPlan | Promise<ExplainedPlan>;

/** Plans of several objects (rm a b, network rm a b), one after the other. */
function joined(plans: readonly ExplainedPlan[]): ExplainedPlan {
  return { ops: plans.flatMap((p) => p.ops), notes: plans.flatMap((p) => p.notes) };
}

/**
 * The commands whose plan can be shown; each reads the current state through the command's own
 * checks and planners (src/container/explain.ts, src/network/, src/cni/explain.ts), writing nothing.
 */
export const EXPLAINABLE: Record<string, Explainer> = {
  async run({ opts, args }) {
    const [{ runOptions }, { planRun }] = await Promise.all([import("./run.ts"), import("../container/explain.ts")]);
    return planRun(runOptions(opts, args));
  },
  async "network create"({ opts, args }) {
    const [{ createOptions }, { planCreateNetwork }] = await Promise.all([import("./network/create.ts"), import("../network/networks.ts")]);
    const { rec, ops } = planCreateNetwork(createOptions(opts, args));
    return { ops, notes: [`network ${rec.name}: id ${rec.id.slice(0, 12)} (a new one each time), bridge ${rec.bridge}, ${rec.subnets.map((x) => `subnet ${x.subnet} gateway ${x.gateway}`).join(", ")}`, "not in the script: its record in /var/lib/tsnet"] };
  },
  async "network connect"({ opts, args }) {
    const [{ planConnect }, { knownNetworks, mustFindNetwork }] = await Promise.all([import("../container/attach.ts"), import("../network/networks.ts")]);
    const ops = planConnect(args[1]!, mustFindNetwork(args[0]!, knownNetworks()), { ip: opts.ip as string | undefined, ip6: opts.ip6 as string | undefined, aliases: opts.alias as string[] });
    return { ops, notes: ["not in the script: the container's record, its lease, and its /etc/hosts refreshed"] };
  },
  async "network rm"({ args }) {
    const [{ attachedNames }, { knownNetworks, mustFindNetwork, planRemoveNetwork }] = await Promise.all([import("../container/attach.ts"), import("../network/networks.ts")]);
    const all = knownNetworks();
    return joined(args.map((ref) => {
      const net = mustFindNetwork(ref, all);
      return { ops: planRemoveNetwork(net, attachedNames(net)), notes: [`not in the script: network ${net.name}'s record and leases`] };
    }));
  },
  async rm({ opts, args }) {
    const { planRemove } = await import("../container/explain.ts");
    return joined(args.map((ref) => planRemove(ref, opts.force === true)));
  },
};

/** CNI ADD: the configuration on stdin and the CNI_ variables, read as the plugin reads them. */
async function explainCniAdd(rest: readonly string[]): Promise<ExplainedPlan | { help: string }> {
  if (rest[0] === "--help" || rest[0] === "-h") {
    return { help: "Usage: tsnet explain cni-add < CONFIG.json\n\nCNI ADD as tsnet the plugin would do it, shown as commands, nothing changed: the network configuration on stdin, and CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_ARGS from the environment, as a runtime gives them (CNI_COMMAND, if set, must be ADD).\n" };
  }
  if (rest.length) throw new UsageError(`tsnet explain cni-add takes no arguments (got "${rest[0]}"): the configuration comes on stdin, the rest in CNI_ variables`);
  requireRoot("tsnet explain cni-add", READS_ROOTS);
  const [{ planCniAddRequest }, { readFileSync }, { CniError }] = await Promise.all([import("../cni/explain.ts"), import("../../ffi/fs.ts"), import("../cni/spec.ts")]);
  let stdin = "";
  try {
    stdin = readFileSync(0, "utf8");
  } catch {}
  try {
    return planCniAddRequest(process.env, stdin);
  } catch (e) {
    // The plugin's error, as one line (its JSON is for a runtime).
    if (e instanceof CniError) throw new TsnetError(`tsnet explain cni-add: ${e.message}${e.details ? ` (${e.details})` : ""}`, 1);
    throw e;
  }
}

/** Why explain needs root though it changes nothing. */
const READS_ROOTS = "it reads what the command would read: tsnet's records, which are root's, nf_tables and namespaces";

/** The explained command's table, named `explain CMD` so its errors and help say how it was called. */
function asExplained<T extends CommandDef<any>>(def: T): T {
  return { ...def, name: `explain ${def.name}` };
}

async function explain(words: readonly string[]): Promise<{ path: string; plan: ExplainedPlan } | { help: string }> {
  const names = [...Object.keys(EXPLAINABLE), "cni-add"].join(", ");
  if (words[0] === "cni-add") {
    const r = await explainCniAdd(words.slice(1));
    return "help" in r ? r : { path: "cni-add", plan: r };
  }
  const { path, entry, def, rest } = await resolveCommand(words, false);
  if (isGroup(def)) {
    throw new UsageError(`tsnet explain ${path} needs one of its commands: ${names} (see tsnet explain --help)`);
  }
  const planner = EXPLAINABLE[path];
  if (!planner) throw new UsageError(`tsnet explain cannot show ${path}: it explains ${names}`);
  const explained = asExplained(def);
  const parsed = parseArgv(explained, rest);
  if ("help" in parsed) {
    const { commandHelp } = await import("../cli/help.ts");
    return { help: commandHelp(`explain ${path}`, `${entry.description}: shown as commands, nothing changed`, explained) };
  }
  requireRoot(`tsnet explain ${path}`, READS_ROOTS);
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
      header: [`tsnet explain ${r.path}: what it would do, as commands (nothing was changed)`, ...r.plan.notes],
    }));
    return 0;
  },
});
