// Shell completion, computed by tsnet itself: the scripts of `tsnet completion SHELL` only hand
// the words typed so far to the hidden `tsnet _complete`, which walks the same command tables
// as the parser. A command, option or family of commands added to a table is completed with no
// change here or in the scripts.
import { helpIsShort, isGroup, type ArgDef, type CommandDef, type CommandEntry, type Completion, type OptionDef } from "./command.ts";
import { COMMANDS } from "./registry.ts";

export interface Candidate {
  word: string;
  description?: string;
}

/** Names of containers from their records (unreadable without root: then none). */
async function containerNames(runningOnly: boolean): Promise<string[]> {
  const { listRecords } = await import("../state/containers.ts");
  let recs;
  try {
    recs = listRecords();
  } catch {
    return [];
  }
  return recs.filter((r) => !runningOnly || r.status === "running").map((r) => r.name).filter(Boolean).sort();
}

/** Names of networks, from their records (the built-in ones even before they are written). */
async function networkNames(): Promise<string[]> {
  const { listNetworks } = await import("../state/networks.ts");
  const names = new Set(["bridge", "host", "none"]);
  try {
    for (const n of listNetworks()) names.add(n.name);
  } catch {}
  return [...names].sort();
}

/** --network values: every network, and container:NAME for running containers. */
async function networkValues(): Promise<Candidate[]> {
  const joined = (await containerNames(true)).map((n) => ({ word: `container:${n}`, description: "share this container's network" }));
  return [...(await networkNames()).map((word) => ({ word })), ...joined];
}

async function valuesOf(kind: Completion | undefined): Promise<Candidate[]> {
  if (kind === undefined || kind === "file" || kind === "command") return [];
  if (typeof kind !== "string") return kind.map((word) => ({ word }));
  switch (kind) {
    case "container":
      return (await containerNames(false)).map((word) => ({ word }));
    case "running":
      return (await containerNames(true)).map((word) => ({ word }));
    case "network":
      return networkValues();
    case "network-name":
      return (await networkNames()).map((word) => ({ word }));
    case "subcommand":
      return commandWords(COMMANDS);
  }
  return [];
}

function commandWords(table: Record<string, CommandEntry>): Candidate[] {
  return Object.entries(table).filter(([, c]) => !c.hidden).map(([word, c]) => ({ word, description: c.description }));
}

function optionWords(def: CommandDef<any>, partial: string): Candidate[] {
  const out: Candidate[] = [];
  for (const [key, o] of Object.entries(def.options as Record<string, OptionDef>)) {
    out.push({ word: `--${key}`, description: o.description });
    // Short forms only when nothing but "-" has been typed, as Docker's scripts do.
    if (o.alias && partial === "-") out.push({ word: `-${o.alias}`, description: o.description });
  }
  const helpShort = helpIsShort(def);
  out.push({ word: "--help", description: "Print help" });
  if (helpShort && partial === "-") out.push({ word: "-h", description: "Print help" });
  return out;
}

/**
 * Candidates for the last word of `words` (the words after "tsnet"; the last one is what is
 * being typed, "" for a new word), each starting with that word.
 */
export async function complete(words: string[]): Promise<Candidate[]> {
  const partial = words.at(-1) ?? "";
  const found = await candidatesFor(words.slice(0, -1), partial);
  return found.filter((c) => c.word.startsWith(partial));
}

async function candidatesFor(before: string[], partial: string): Promise<Candidate[]> {
  let table = COMMANDS;
  let i = 0;
  // The command, and inside a family the member.
  for (;;) {
    if (i === before.length) {
      if (partial.startsWith("-")) return table === COMMANDS ? [{ word: "--help" }, { word: "--version" }] : [{ word: "--help" }];
      return commandWords(table);
    }
    const entry = table[before[i]!];
    if (!entry || entry.hidden) return [];
    i++;
    const def = (await entry.load()).default;
    if (!isGroup(def)) return inCommand(def, before.slice(i), partial);
    table = def.subcommands;
  }
}

async function inCommand(def: CommandDef<any>, words: string[], partial: string): Promise<Candidate[]> {
  const options = def.options as Record<string, OptionDef>;
  const long = new Map<string, OptionDef>();
  const short = new Map<string, OptionDef>();
  for (const [k, o] of Object.entries(options)) {
    long.set(k, o);
    for (const a of o.aliases ?? []) long.set(a, o);
    if (o.alias) short.set(o.alias, o);
  }
  // Replay the words as the parser would: which option wants a value, how many arguments so far.
  let wantsValue: OptionDef | undefined;
  let optionsOver = false;
  let positional = 0;
  for (const w of words) {
    if (wantsValue) {
      wantsValue = undefined;
      continue;
    }
    if (!optionsOver && w === "--") {
      optionsOver = true;
      continue;
    }
    if (!optionsOver && w.startsWith("--")) {
      const o = long.get(w.slice(2));
      if (o?.type === "string") wantsValue = o; // not for --name=web: the value is in the word
      continue;
    }
    if (!optionsOver && w.startsWith("-") && w.length > 1 && !w.startsWith("--")) {
      // The last letter of a group like -dp may want the next word.
      for (let j = 1; j < w.length; j++) {
        const o = short.get(w[j]!);
        if (o?.type === "string") {
          if (j === w.length - 1) wantsValue = o;
          break;
        }
      }
      continue;
    }
    positional++;
    if (def.optionsEndAtFirstArg) optionsOver = true;
  }
  if (wantsValue) return valuesOf(wantsValue.complete);
  if (!optionsOver && partial.startsWith("--") && partial.includes("=")) {
    const name = partial.slice(2, partial.indexOf("="));
    const o = long.get(name);
    if (o?.type !== "string") return [];
    return (await valuesOf(o.complete)).map((c) => ({ ...c, word: `--${name}=${c.word}` }));
  }
  if (!optionsOver && partial.startsWith("-")) return optionWords(def, partial);
  const arg = argAt(def.args, positional);
  if (!arg) return [];
  if (arg.complete === "subcommand") return helpTopics(words.filter((w) => !w.startsWith("-")));
  return valuesOf(arg.complete);
}

function argAt(args: readonly ArgDef[], n: number): ArgDef | undefined {
  if (n < args.length) return args[n];
  const last = args.at(-1);
  return last?.repeat ? last : undefined;
}

/** `tsnet help network <TAB>`: the members of the family named so far. */
async function helpTopics(named: string[]): Promise<Candidate[]> {
  let table = COMMANDS;
  for (const w of named) {
    const entry = table[w];
    if (!entry || entry.hidden) return [];
    const def = (await entry.load()).default;
    if (!isGroup(def)) return [];
    table = def.subcommands;
  }
  return commandWords(table);
}

/** Splits a shell command line into words (quotes and backslashes as the shell reads them). */
export function splitLine(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  // The word being typed: "" when the line ends in a space.
  words.push(inWord ? word : "");
  return words;
}

/** For bash: the part of a candidate after the last word-break character typed (`:`, `=`). */
export function bashTrim(candidate: string, partial: string, wordbreaks: string): string {
  let cut = -1;
  for (let i = 0; i < partial.length; i++) if (wordbreaks.includes(partial[i]!)) cut = i;
  return candidate.slice(cut + 1);
}
