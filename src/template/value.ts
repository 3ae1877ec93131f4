// Template values are JSON-shaped (string, number, boolean, null, list, map), plus undefined
// for a value that is not there. They print as Go's fmt prints the same values.
import { formatFloat } from "./float.ts";

export const NO_VALUE = "<no value>";

export function typeName(v: unknown): string {
  if (v === null) return "nil";
  if (v === undefined) return "no value";
  if (Array.isArray(v)) return "list";
  if (typeof v === "object") return "map";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  return typeof v === "boolean" ? "bool" : typeof v;
}

/** Go's notion of true: not false, 0, nil, an empty string, list or map. */
export function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/** What an action prints: fmt's %v, except that nothing (or nil) prints as "<no value>". */
export function printValue(v: unknown): string {
  return v === undefined || v === null ? NO_VALUE : formatValue(v);
}

/** fmt's %v, as print, printf and the elements of lists and maps use it. */
export function formatValue(v: unknown): string {
  if (v === undefined || v === null) return "<nil>";
  if (typeof v === "string") return v;
  // Whole numbers print as Go prints the ints they are in Docker's structs; others as float64.
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : `${v < 0 ? "-" : ""}${formatFloat(Math.abs(v), "g", -1)}`;
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => formatValue(x)).join(" ")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${formatValue(o[k])}`).join(" ")}]`;
  }
  return String(v);
}
