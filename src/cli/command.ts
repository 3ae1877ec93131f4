// The shape of a command: one declarative table that drives parsing (src/cli/argv.ts), --help
// (src/cli/help.ts) and shell completion (src/cli/complete.ts), so the three cannot disagree.
// The vocabulary follows citty (args, alias, valueHint) so a citty reader recognises it;
// citty itself is not used (see ARCHITECTURE.md, "Why not citty").

/** Where the values of an option or argument come from when completing a word. */
export type Completion =
  /** Names of all containers. */
  | "container"
  /** Names of running containers. */
  | "running"
  /** Values of --network: every network and container:NAME. */
  | "network"
  /** Names of networks (tsnet network rm NAME). */
  | "network-name"
  /** A file name: left to the shell. */
  | "file"
  /** A command to run: left to the shell. */
  | "command"
  /** A tsnet command (`tsnet help COMMAND`). */
  | "subcommand"
  /** A fixed list. */
  | readonly string[];

export interface OptionDef {
  /** "boolean": a flag (`-d`, `--rm`, `--rm=false`); "string": takes a value (`-p 80`, `-p80`, `--name=web`). */
  type: "boolean" | "string";
  /** One-letter short form: "p" for -p. */
  alias?: string;
  /** Other long spellings accepted, e.g. ["net"] for --net; not shown in help. */
  aliases?: readonly string[];
  /** Placeholder for the value in help, e.g. "SPEC". */
  valueHint?: string;
  /** A value option given several times collects every value (`-p 80 -p 443`). */
  repeat?: boolean;
  description: string;
  /** A complete command line using the option, shown in help. */
  example: string;
  complete?: Completion;
}

export interface ArgDef {
  /** Placeholder in the usage line, e.g. "CONTAINER". */
  name: string;
  /** What is missing, for the error line: "at least one container". */
  what: string;
  description: string;
  /** Defaults to true. */
  required?: boolean;
  /** Takes every remaining word. */
  repeat?: boolean;
  complete?: Completion;
}

export type OptionsDef = Record<string, OptionDef>;

/** The parsed value of one option: flags are booleans, repeatable options arrays. */
type ValueOf<O extends OptionDef> = O["type"] extends "boolean" ? boolean : O["repeat"] extends true ? string[] : string | undefined;
export type Values<T extends OptionsDef> = { -readonly [K in keyof T]: ValueOf<T[K]> };

export interface Parsed<T extends OptionsDef> {
  opts: Values<T>;
  /** The positional words; for commands whose options end at the first argument, everything after it too. */
  args: string[];
}

export interface CommandDef<T extends OptionsDef = OptionsDef> {
  /** As typed: "run", "network ls". Its one-line description lives with its CommandEntry. */
  name: string;
  /** Paragraphs of help after the usage line. */
  details?: readonly string[];
  args: readonly ArgDef[];
  options: T;
  /**
   * As `docker run` and `docker exec`: options end at the first word that is not an option, so
   * `tsnet run ls -l` passes -l to ls. Other commands take options anywhere (`tsnet rm web -f`).
   */
  optionsEndAtFirstArg?: boolean;
  /** false: `-h` is not short for --help (run keeps it for --hostname, as Docker does). */
  helpShort?: boolean;
  /** Whole command lines, shown under "Examples". */
  examples: readonly string[];
  /** Returns the exit code. */
  run(parsed: Parsed<T>): number | Promise<number>;
}

/** A family of commands under one word (`tsnet network ls`): each member is loaded on its own. */
export interface GroupDef {
  name: string;
  subcommands: Record<string, CommandEntry>;
}

/** What the entry point knows about a command without loading it. */
export interface CommandEntry {
  /** One line, shown in the list of commands and at the top of the command's help. */
  description: string;
  /** tsnet's own helpers: not listed, no help, never suggested. */
  hidden?: boolean;
  load: () => Promise<{ default: CommandDef<any> | GroupDef }>;
}

export function defineCommand<T extends OptionsDef>(def: CommandDef<T>): CommandDef<T> {
  return def;
}

export function defineGroup(def: GroupDef): GroupDef {
  return def;
}

export function isGroup(def: CommandDef<any> | GroupDef): def is GroupDef {
  return "subcommands" in def;
}

/** Whether `-h` means --help for this command: unless it says otherwise or an option claims it. */
export function helpIsShort(def: CommandDef<any>): boolean {
  return def.helpShort !== false && !Object.values(def.options as OptionsDef).some((o) => o.alias === "h");
}
