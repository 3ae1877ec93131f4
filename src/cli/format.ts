// --format as Docker reads it:
//   json                 one JSON document per object
//   table                the command's own table
//   table TEMPLATE       a Go template per row under a header, columns split at tabs and aligned
//   TEMPLATE             a Go template per object, each followed by a newline
// In a listing's format (ps, network ls) the two characters \t and \n stand for a tab and a
// newline, so that 'table {{.ID}}\t{{.Names}}' works from any shell. An inspect template is read
// as written, as Docker reads it: there `{{"\n"}}` and `{{printf "%s\t%s" ...}}` are Go's own
// escapes inside a string, which a replacement would break.
import { UsageError } from "../errors/errors.ts";
import { compile, TemplateError, type MissingField, type Template } from "../template/exec.ts";

export type Format =
  | { kind: "default" }
  | { kind: "json" }
  | { kind: "template"; template: Template; table: boolean };

/** Reads --format; a template that does not parse is a usage error naming where it breaks. */
export function parseFormat(command: string, format: string | undefined, missing: MissingField, listing = true): Format {
  if (format === undefined || format === "" || (listing && format.trim() === "table")) return { kind: "default" };
  if (format.trim() === "json") return { kind: "json" };
  let src = format;
  const table = listing && (src.startsWith("table ") || src.startsWith("table\t"));
  if (table) src = src.slice("table".length);
  if (listing) src = src.replace(/^ +| +$/g, "").replaceAll("\\t", "\t").replaceAll("\\n", "\n");
  try {
    return { kind: "template", template: compile(src, missing), table };
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(`invalid --format template for tsnet ${command}: ${e.message}`);
    throw e;
  }
}

/** Runs a template; a failure at run time (a field that does not exist) is a usage error too. */
export function execute(command: string, t: Template, data: unknown): string {
  try {
    return t.execute(data);
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(`--format of tsnet ${command}: ${e.message}`);
    throw e;
  }
}

/**
 * Go's text/tabwriter as Docker configures it for tables (min width 10, padding 3, spaces):
 * cells end at tabs, each column as wide as its widest cell plus 3 in every run of lines that
 * have it; the last cell of a line is not aligned.
 */
export function tabwrite(text: string): string {
  const lines = text.split("\n").map((l) => l.split("\t"));
  const len = (s: string) => [...s].length;
  const widths = lines.map((cells) => new Array<number>(Math.max(0, cells.length - 1)).fill(0));
  const maxCols = Math.max(0, ...lines.map((c) => c.length - 1));
  for (let col = 0; col < maxCols; col++) {
    let i = 0;
    while (i < lines.length) {
      if (lines[i]!.length - 1 <= col) {
        i++;
        continue;
      }
      let j = i;
      let w = 10;
      while (j < lines.length && lines[j]!.length - 1 > col) {
        w = Math.max(w, len(lines[j]![col]!) + 3);
        j++;
      }
      for (let k = i; k < j; k++) widths[k]![col] = w;
      i = j;
    }
  }
  return lines
    .map((cells, li) => cells.map((c, ci) => (ci < cells.length - 1 ? c + " ".repeat(widths[li]![ci]! - len(c)) : c)).join(""))
    .join("\n");
}

/**
 * Rows through a template: with `table`, a header first (the template run over `headers`, which
 * maps each field to its column title, as Docker does), then aligned.
 */
export function templateRows(command: string, f: Extract<Format, { kind: "template" }>, rows: unknown[], headers: Record<string, string>): string {
  const lines = rows.map((r) => `${execute(command, f.template, r)}\n`);
  if (!f.table) return lines.join("");
  const header = `${execute(command, f.template, headers)}\n`;
  return tabwrite(header + lines.join(""));
}
