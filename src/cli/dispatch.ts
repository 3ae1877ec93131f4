// From the words on the command line to the command they name, through families of commands
// (`tsnet network ls`). Shared by the entry point, `tsnet help` and completion.
import { UsageError } from "../errors/errors.ts";
import { isGroup, type CommandDef, type CommandEntry, type GroupDef } from "./command.ts";
import { COMMANDS } from "./registry.ts";
import { nearest } from "../errors/suggest.ts";

export interface Resolved {
  /** The words that named the command: "run", "network ls". */
  path: string;
  entry: CommandEntry;
  def: CommandDef<any> | GroupDef;
  /** The words after them. */
  rest: string[];
}

export function publicNames(table: Record<string, CommandEntry>): string[] {
  return Object.entries(table).filter(([, c]) => !c.hidden).map(([n]) => n);
}

export function unknownCommand(word: string, table: Record<string, CommandEntry>, under = ""): UsageError {
  const prefix = under ? `tsnet ${under}` : "tsnet";
  const guess = nearest(word, publicNames(table));
  const see = `see ${prefix} --help`;
  return new UsageError(`unknown command "${word}" for ${prefix}: ${guess ? `did you mean "${guess}"? (${see})` : see}`);
}

/** Resolves argv[0] (and, inside families, the words after it). Hidden commands only if asked. */
export async function resolveCommand(argv: readonly string[], withHidden: boolean): Promise<Resolved> {
  let table = COMMANDS;
  let path = "";
  let i = 0;
  for (;;) {
    const word = argv[i]!;
    const entry = table[word];
    if (!entry || (entry.hidden && !withHidden)) throw unknownCommand(word, table, path);
    path = path ? `${path} ${word}` : word;
    i++;
    const def = (await entry.load()).default;
    const next = argv[i];
    if (!isGroup(def) || next === undefined || next.startsWith("-")) return { path, entry, def, rest: argv.slice(i) };
    table = def.subcommands;
  }
}
