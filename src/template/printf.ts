// Go's fmt.Sprintf for the template function printf: verbs v s q d t x X o b c e E f F g G and
// %%, flags - + 0 space #, width and precision. A verb that does not fit its operand prints as
// Go does, e.g. %!d(string=web), so a format never fails half-way through.
import { formatFloat } from "./float.ts";
import { formatValue } from "./value.ts";

function typeName(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (v === null || v === undefined) return "<nil>";
  return Array.isArray(v) ? "[]interface {}" : "map[string]interface {}";
}

function bad(verb: string, v: unknown): string {
  return v === null || v === undefined ? `%!${verb}(<nil>)` : `%!${verb}(${typeName(v)}=${formatValue(v)})`;
}

interface Spec {
  minus: boolean;
  plus: boolean;
  zero: boolean;
  space: boolean;
  sharp: boolean;
  width?: number;
  prec?: number;
}

function pad(s: string, f: Spec, numeric: boolean): string {
  if (f.width === undefined || s.length >= f.width) return s;
  const fill = f.width - s.length;
  if (f.minus) return s + " ".repeat(fill);
  if (f.zero && numeric) {
    const sign = /^[+\- ]/.test(s) ? s[0]! : "";
    return sign + "0".repeat(fill) + s.slice(sign.length);
  }
  return " ".repeat(fill) + s;
}

function signed(s: string, neg: boolean, f: Spec): string {
  if (neg) return `-${s}`;
  if (f.plus) return `+${s}`;
  return f.space ? ` ${s}` : s;
}

function integer(v: number, base: number, f: Spec, upper = false): string {
  let digits = Math.abs(v).toString(base);
  if (upper) digits = digits.toUpperCase();
  if (f.prec !== undefined) digits = digits.padStart(f.prec, "0");
  if (f.sharp) digits = (base === 16 ? (upper ? "0X" : "0x") : base === 8 ? "0" : base === 2 ? "0b" : "") + digits;
  return signed(digits, v < 0, f);
}

function float(v: number, verb: string, f: Spec): string {
  let s = formatFloat(Math.abs(v), verb.toLowerCase() as "e" | "f" | "g", f.prec ?? -1);
  if (verb === "E" || verb === "G") s = s.toUpperCase();
  return signed(s, v < 0 || Object.is(v, -0), f);
}

function one(verb: string, v: unknown, f: Spec): string {
  switch (verb) {
    case "v":
      return pad(formatValue(v), f, false);
    case "s": {
      if (v === null || v === undefined) return bad(verb, v);
      let s = typeof v === "string" ? v : formatValue(v);
      if (f.prec !== undefined) s = [...s].slice(0, f.prec).join("");
      return pad(s, f, false);
    }
    case "q":
      if (typeof v === "string") return pad(JSON.stringify(v), f, false);
      if (typeof v === "number" && Number.isInteger(v)) return pad(`'${String.fromCodePoint(v)}'`, f, false);
      return bad(verb, v);
    case "t":
      return typeof v === "boolean" ? pad(String(v), f, false) : bad(verb, v);
    case "d":
    case "o":
    case "b":
      if (typeof v !== "number" || !Number.isInteger(v)) return bad(verb, v);
      return pad(integer(v, verb === "d" ? 10 : verb === "o" ? 8 : 2, f), f, true);
    case "x":
    case "X":
      if (typeof v === "number" && Number.isInteger(v)) return pad(integer(v, 16, f, verb === "X"), f, true);
      if (typeof v === "string") {
        const hex = Buffer.from(v).toString("hex");
        return pad(verb === "X" ? hex.toUpperCase() : hex, f, false);
      }
      return bad(verb, v);
    case "c":
      return typeof v === "number" && Number.isInteger(v) ? pad(String.fromCodePoint(v), f, false) : bad(verb, v);
    case "e":
    case "E":
    case "f":
    case "F":
    case "g":
    case "G":
      return typeof v === "number" ? pad(float(v, verb, f), f, true) : bad(verb, v);
    default:
      return `%!${verb}(${typeName(v)}=${formatValue(v)})`;
  }
}

export function sprintf(format: string, args: unknown[]): string {
  let out = "";
  let n = 0;
  for (let i = 0; i < format.length; i++) {
    const c = format[i]!;
    if (c !== "%") {
      out += c;
      continue;
    }
    const f: Spec = { minus: false, plus: false, zero: false, space: false, sharp: false };
    let j = i + 1;
    for (; j < format.length; j++) {
      const fl = format[j];
      if (fl === "-") f.minus = true;
      else if (fl === "+") f.plus = true;
      else if (fl === "0") f.zero = true;
      else if (fl === " ") f.space = true;
      else if (fl === "#") f.sharp = true;
      else break;
    }
    const w = format.slice(j).match(/^\d+/);
    if (w) {
      f.width = Number(w[0]);
      j += w[0].length;
    }
    if (format[j] === ".") {
      const p = format.slice(j + 1).match(/^\d*/)![0];
      f.prec = Number(p || "0");
      j += 1 + p.length;
    }
    const verb = format[j];
    i = j;
    if (verb === undefined) {
      out += "%!(NOVERB)";
      break;
    }
    if (verb === "%") {
      out += "%";
      continue;
    }
    if (n >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += one(verb, args[n++], f);
  }
  if (n < args.length) out += `%!(EXTRA ${args.slice(n).map((a) => `${typeName(a)}=${formatValue(a)}`).join(", ")})`;
  return out;
}
