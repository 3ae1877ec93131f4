// --help, rendered from the same tables the parser reads. Plain text unless stdout is a
// terminal and NO_COLOR is unset (https://no-color.org), so help piped into a file, a pager or
// grep carries no escape codes.
import { isatty } from "node:tty";
import { helpIsShort, type ArgDef, type CommandDef, type CommandEntry, type GroupDef, type OptionDef } from "./command.ts";
import { COMMANDS } from "./registry.ts";

const WIDTH = 80;

export function useColor(fd = 1): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.TERM === "dumb") return false;
  return isatty(fd);
}

interface Style {
  heading(s: string): string;
  flag(s: string): string;
  example(s: string): string;
}

const PLAIN: Style = { heading: (s) => s, flag: (s) => s, example: (s) => s };
const ANSI: Style = {
  heading: (s) => `\x1b[1m${s}\x1b[22m`,
  flag: (s) => `\x1b[36m${s}\x1b[39m`,
  example: (s) => `\x1b[2m${s}\x1b[22m`,
};

/** Splits text into lines of at most `width` characters at spaces (a longer word stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function usageLine(path: string, def: CommandDef<any>): string {
  const words = [`tsnet ${path}`];
  if (Object.keys(def.options).length) words.push("[OPTIONS]");
  if (def.optionsEndAtFirstArg && def.args[0]?.name === "COMMAND") words.push("[--]");
  for (const a of def.args as ArgDef[]) {
    if (a.repeat && a.required !== false) words.push(`${a.name} [${a.name}...]`);
    else if (a.repeat) words.push(`[${a.name}...]`);
    else words.push(a.required === false ? `[${a.name}]` : a.name);
  }
  return words.join(" ");
}

function spelling(key: string, o: OptionDef): string {
  const long = `--${key}${o.type === "string" ? ` ${o.valueHint ?? "VALUE"}` : ""}`;
  return o.alias ? `-${o.alias}, ${long}` : `    ${long}`;
}

/** Rows of two columns: the left padded to the widest, the right wrapped under itself. */
function columns(rows: { left: string; right: string[]; style: (s: string) => string }[], st: Style): string[] {
  const w = Math.max(...rows.map((r) => r.left.length)) + 3;
  const out: string[] = [];
  for (const r of rows) {
    // The description wraps; an example stays one line, to be copied whole.
    const right = r.right.flatMap((para, i) => (i === 0 ? wrap(para, WIDTH - w - 2) : [st.example(para)]));
    out.push(`  ${r.style(r.left)}${" ".repeat(w - r.left.length)}${right[0] ?? ""}`);
    for (const l of right.slice(1)) out.push(`  ${" ".repeat(w)}${l}`);
  }
  return out;
}

export function commandHelp(path: string, description: string, def: CommandDef<any>, color = useColor()): string {
  const st = color ? ANSI : PLAIN;
  const out = [`${st.heading("Usage:")}  ${usageLine(path, def)}`, "", ...wrap(description, WIDTH)];
  for (const p of def.details ?? []) out.push("", ...wrap(p, WIDTH));
  const args = def.args as ArgDef[];
  if (args.length) {
    out.push("", st.heading("Arguments:"));
    out.push(...columns(args.map((a) => ({ left: a.name, right: [a.description], style: st.flag })), st));
  }
  const entries = Object.entries(def.options as Record<string, OptionDef>).sort(([a], [b]) => a.localeCompare(b));
  out.push("", st.heading("Options:"));
  const rows = entries.map(([k, o]) => {
    const also = o.aliases?.length ? ` (also ${o.aliases.map((a) => `--${a}`).join(", ")})` : "";
    const repeat = o.repeat ? " (repeatable)" : "";
    return { left: spelling(k, o), right: [`${o.description}${repeat}${also}`, `e.g. ${o.example}`], style: st.flag };
  });
  const helpShort = helpIsShort(def);
  const helpFlag = helpShort ? "-h, --help" : "    --help";
  rows.push({ left: helpFlag, right: ["Print this help"], style: st.flag });
  out.push(...columns(rows, st));
  if (def.examples.length) {
    out.push("", st.heading("Examples:"));
    for (const e of def.examples) out.push(`  ${e}`);
  }
  return `${out.join("\n")}\n`;
}

export function listHelp(path: string, description: string, commands: Record<string, CommandEntry>, extra: string[], color = useColor()): string {
  const st = color ? ANSI : PLAIN;
  const prefix = path ? `tsnet ${path}` : "tsnet";
  const visible = Object.entries(commands).filter(([, c]) => !c.hidden);
  const out = [`${st.heading("Usage:")}  ${prefix} COMMAND${path ? "" : " [OPTIONS]"}`, "", ...wrap(description, WIDTH), "", st.heading("Commands:")];
  out.push(...columns(visible.map(([n, c]) => ({ left: n, right: [c.description], style: st.flag })), st));
  out.push(...extra.map((l) => (l.endsWith(":") ? st.heading(l) : l)));
  out.push("", `Run '${prefix} COMMAND --help' for more on a command.`);
  return `${out.join("\n")}\n`;
}

export function groupHelp(path: string, description: string, def: GroupDef, color = useColor()): string {
  return listHelp(path, description, def.subcommands, [], color);
}

/** `tsnet --help`. */
export function topHelp(color = useColor()): string {
  return listHelp("", "Docker-style container networking for any host command: namespaces, veth, bridge, NAT, published ports.", COMMANDS, [
    "",
    "Options:",
    "  -h, --help      Print this help",
    "  -v, --version   Print the version and the commit it was built from",
  ], color);
}
