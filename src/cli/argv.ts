// Docker-style option scanning for commands that end in a command line of their own
// (`tsnet run [OPTIONS] CMD [ARG...]`): options stop at `--` or at the first word that is not an
// option, so everything after belongs to the command, untouched (`tsnet run ls -l` works).
import { UsageError } from "../errors/errors.ts";

export interface OptionSpec {
  /** Spellings, e.g. ["-p", "--publish"]. */
  names: string[];
  key: string;
  takesValue: boolean;
  /** A value option given twice collects both (like -p). */
  repeatable?: boolean;
  example?: string;
}

export interface Scanned {
  values: Record<string, string | string[] | boolean>;
  rest: string[];
}

export function scanOptions(command: string, argv: string[], specs: OptionSpec[]): Scanned {
  const byName = new Map<string, OptionSpec>();
  for (const s of specs) for (const n of s.names) byName.set(n, s);
  const values: Scanned["values"] = {};
  const set = (s: OptionSpec, v: string | boolean) => {
    if (s.repeatable) ((values[s.key] ??= []) as string[]).push(v as string);
    else values[s.key] = v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") return { values, rest: argv.slice(i + 1) };
    if (!arg.startsWith("-") || arg === "-") return { values, rest: argv.slice(i) };
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(name);
    if (spec) {
      if (!spec.takesValue) {
        if (eq > 0) throw new UsageError(`tsnet ${command}: option ${name} takes no value (got "${arg}")`);
        set(spec, true);
        continue;
      }
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === "") {
        throw new UsageError(`tsnet ${command}: option ${name} needs a value${spec.example ? `, e.g. ${name} ${spec.example}` : ""}`);
      }
      set(spec, value);
      continue;
    }
    // Bundled short flags such as -it.
    if (/^-[a-zA-Z]{2,}$/.test(arg)) {
      const flags = [...arg.slice(1)].map((c) => byName.get(`-${c}`));
      if (flags.every((f) => f && !f.takesValue)) {
        for (const f of flags) set(f!, true);
        continue;
      }
    }
    throw new UsageError(`unknown option "${arg}" for tsnet ${command}: see tsnet ${command} --help`);
  }
  return { values, rest: [] };
}
