// Template values are JSON-shaped (string, number, boolean, null, list, map), plus undefined
// for a value that is not there. They print as Go's fmt prints the same values.

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

/** fmt's %v. */
export function formatValue(v: unknown): string {
  if (v === undefined) return NO_VALUE;
  if (v === null) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : goFloat(v);
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => formatValue(x)).join(" ")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${formatValue(o[k])}`).join(" ")}]`;
  }
  return String(v);
}

/** %v of a float64: shortest digits, exponent form past 1e21 or below 1e-4 (as strconv 'g'). */
function goFloat(v: number): string {
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e21)) return v.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  return String(v);
}
