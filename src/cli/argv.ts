// Docker's command-line rules (spf13/pflag as docker/cli configures it), driven by a command's
// option table:
//   --name web   --name=web   -p 8080:80   -p8080:80   -p=8080:80
//   -it          -dp 8080:80  -dp8080:80   (flags combined; a value option ends the group)
//   --rm=false   (flags take an optional =true|false)
//   --           ends options; `-` alone is an argument
// Commands marked optionsEndAtFirstArg (run, exec) stop at the first word that is not an option,
// so everything after belongs to the container's command untouched (`tsnet run ls -l`); the
// others take options anywhere (`tsnet rm web -f`).
// `--help` (and `-h` where the command leaves it free) asks for help.
import { UsageError } from "../errors/errors.ts";
import { helpIsShort, type CommandDef, type OptionDef, type OptionsDef, type Parsed } from "./command.ts";
import { nearest } from "../errors/suggest.ts";

export type ParseResult<T extends OptionsDef> = Parsed<T> | { help: true };

interface Lookup {
  long: Map<string, [string, OptionDef]>;
  short: Map<string, [string, OptionDef]>;
  helpShort: boolean;
}

function lookup(def: CommandDef<any>): Lookup {
  const long = new Map<string, [string, OptionDef]>();
  const short = new Map<string, [string, OptionDef]>();
  for (const [key, o] of Object.entries(def.options as OptionsDef)) {
    long.set(key, [key, o]);
    for (const a of o.aliases ?? []) long.set(a, [key, o]);
    if (o.alias) short.set(o.alias, [key, o]);
  }
  return { long, short, helpShort: helpIsShort(def) };
}

/** Go's strconv.ParseBool, which pflag uses for `--flag=value`. */
function parseBool(v: string): boolean | undefined {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return false;
  return undefined;
}

export function parseArgv<T extends OptionsDef>(def: CommandDef<T>, argv: readonly string[]): ParseResult<T> {
  const cmd = `tsnet ${def.name}`;
  const see = `see ${cmd} --help`;
  const { long, short, helpShort } = lookup(def);
  const opts: Record<string, string | string[] | boolean | undefined> = {};
  for (const [key, o] of Object.entries(def.options as OptionsDef)) opts[key] = o.type === "boolean" ? false : o.repeat ? [] : undefined;
  const args: string[] = [];

  const needsValue = (spelled: string, o: OptionDef) =>
    new UsageError(`option ${spelled} needs a value, e.g. ${o.example}`);
  const setValue = (key: string, o: OptionDef, v: string, spelled: string) => {
    if (v === "") throw needsValue(spelled, o);
    if (o.repeat) (opts[key] as string[]).push(v);
    else opts[key] = v;
  };
  const unknown = (word: string, within?: string) => {
    const candidates = [...[...long.keys()].map((k) => `--${k}`), "--help"];
    // `-name` is a common slip for `--name`; pflag would read it as -n -a -m -e.
    const single = within ?? word;
    const guess = word.startsWith("--") ? nearest(word, candidates) : long.has(single.slice(1)) ? `-${single}` : undefined;
    const where = within ? ` in "${within}"` : "";
    return new UsageError(`unknown option "${word}"${where} for ${cmd}: ${guess ? `did you mean "${guess}"? (${see})` : see}`);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (def.optionsEndAtFirstArg) {
        args.push(...argv.slice(i));
        break;
      }
      args.push(arg);
      continue;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      const spelled = `--${name}`;
      if (name === "help") return { help: true };
      const hit = long.get(name);
      if (!hit) throw unknown(spelled);
      const [key, o] = hit;
      if (o.type === "boolean") {
        if (eq < 0) opts[key] = true;
        else {
          const b = parseBool(arg.slice(eq + 1));
          if (b === undefined) throw new UsageError(`option ${spelled} takes true or false (got "${arg}")`);
          opts[key] = b;
        }
        continue;
      }
      if (eq > 0) setValue(key, o, arg.slice(eq + 1), spelled);
      else if (i + 1 < argv.length) setValue(key, o, argv[++i]!, spelled);
      else throw needsValue(spelled, o);
      continue;
    }
    // One or more short options: -d, -it, -dp 8080:80, -p8080:80, -p=8080:80, -d=false.
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j]!;
      const hit = short.get(c);
      if (!hit) {
        if (c === "h" && helpShort) return { help: true };
        throw arg.length === 2 ? unknown(arg) : unknown(`-${c}`, arg);
      }
      const [key, o] = hit;
      const spelled = `-${c}`;
      let rest = arg.slice(j + 1);
      if (o.type === "boolean") {
        if (rest.startsWith("=")) {
          const b = parseBool(rest.slice(1));
          if (b === undefined) throw new UsageError(`option ${spelled} takes true or false (got "${arg}")`);
          opts[key] = b;
          break;
        }
        opts[key] = true;
        continue;
      }
      // A value option takes the rest of the group, or else the next word.
      if (rest.startsWith("=")) rest = rest.slice(1);
      if (j + 1 < arg.length) setValue(key, o, rest, spelled);
      else if (i + 1 < argv.length) setValue(key, o, argv[++i]!, spelled);
      else throw needsValue(spelled, o);
      break;
    }
  }
  checkArgs(def, args);
  return { opts: opts as Parsed<T>["opts"], args };
}

/** Required arguments present; no word left over that no argument takes. */
function checkArgs(def: CommandDef<any>, args: string[]): void {
  const cmd = `tsnet ${def.name}`;
  let taken = 0;
  for (const a of def.args) {
    const required = a.required !== false;
    if (taken >= args.length) {
      if (required) throw new UsageError(`"${cmd}" needs ${a.what}, e.g. ${def.examples[0]}`);
      continue;
    }
    taken = a.repeat ? args.length : taken + 1;
  }
  if (taken < args.length) {
    const extra = args[taken]!;
    const takes = def.args.length === 0 ? "takes no arguments" : `takes ${def.args.map((a) => a.name + (a.repeat ? "..." : "")).join(" ")}`;
    throw new UsageError(`"${cmd}" ${takes} (got "${extra}"): see ${cmd} --help`);
  }
}
