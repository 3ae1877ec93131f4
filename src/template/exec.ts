// Runs a parsed template (src/template/parse.ts) over plain data (JSON-shaped objects), with Go's
// built-in functions and Docker's additions (json, join, split, lower, upper, title, pad,
// truncate). Values print as Go's fmt prints them: a missing value as "<no value>", null as
// "<nil>", arrays as [a b], objects as map[k:v].
import { nearest } from "../errors/suggest.ts";
import { TemplateError, parse, type Command, type Node, type Operand, type Pipeline } from "./parse.ts";
import { sprintf } from "./printf.ts";
import { formatValue, printValue, truth, typeName } from "./value.ts";

export { TemplateError, formatValue, truth };

/**
 * What a field that the data lacks means. "error": the data has a fixed set of fields (a ps row),
 * so `.Nmaes` is a mistake to report. "zero": the data is a JSON document (inspect), where Go's
 * map lookup gives "<no value>", as Docker's inspect does.
 */
export type MissingField = "error" | "zero";

type Func = (args: unknown[]) => unknown;

class Break {}
class Continue {}

function asNumber(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw new TemplateError(`${name}: wants an integer, got ${typeName(v)} ${formatValue(v)}`);
  return v;
}

function comparable(name: string, a: unknown, b: unknown): void {
  const basic = (x: unknown) => x === null || x === undefined || ["string", "number", "boolean"].includes(typeof x);
  if (!basic(a) || !basic(b)) throw new TemplateError(`${name}: cannot compare ${typeName(a)} with ${typeName(b)}`);
  if (a !== null && a !== undefined && b !== null && b !== undefined && typeof a !== typeof b) {
    throw new TemplateError(`${name}: incompatible types for comparison: ${typeName(a)} and ${typeName(b)}`);
  }
}

function ordered(name: string, a: unknown, b: unknown): void {
  if (!((typeof a === "number" && typeof b === "number") || (typeof a === "string" && typeof b === "string"))) {
    throw new TemplateError(`${name}: can only order numbers or strings, got ${typeName(a)} and ${typeName(b)}`);
  }
}

function arity(name: string, args: unknown[], min: number, max = min): void {
  if (args.length < min || args.length > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new TemplateError(`wrong number of arguments for ${name}: want ${want}, got ${args.length}`);
  }
}

function str(name: string, v: unknown): string {
  if (typeof v !== "string") throw new TemplateError(`${name}: wants a string, got ${typeName(v)} ${formatValue(v)}`);
  return v;
}

function indexInto(v: unknown, key: unknown): unknown {
  if (Array.isArray(v) || typeof v === "string") {
    const n = asNumber("index", key);
    if (n < 0 || n >= v.length) throw new TemplateError(`index: index out of range: ${n}`);
    return typeof v === "string" ? Buffer.from(v)[n] : v[n];
  }
  if (v !== null && typeof v === "object") {
    if (typeof key !== "string") throw new TemplateError(`index: a map wants a string key, got ${typeName(key)}`);
    return Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
  }
  if (v === undefined || v === null) throw new TemplateError("index of untyped nil");
  throw new TemplateError(`can't index item of type ${typeName(v)}`);
}

/** Go's fmt.Sprint: a space between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let out = "";
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== "string" && typeof args[i - 1] !== "string") out += " ";
    out += formatValue(a);
  });
  return out;
}

const FUNCS: Record<string, Func> = {
  // and, or: evaluated lazily by the executor.
  not: (a) => (arity("not", a, 1), !truth(a[0])),
  len: (a) => {
    arity("len", a, 1);
    const v = a[0];
    if (typeof v === "string") return Buffer.byteLength(v);
    if (Array.isArray(v)) return v.length;
    if (v !== null && typeof v === "object") return Object.keys(v).length;
    throw new TemplateError(`len of type ${typeName(v)}`);
  },
  index: (a) => {
    arity("index", a, 1, Infinity);
    return a.slice(1).reduce((v, k) => indexInto(v, k), a[0]);
  },
  slice: (a) => {
    arity("slice", a, 1, 3);
    const v = a[0];
    if (!Array.isArray(v) && typeof v !== "string") throw new TemplateError(`can't slice item of type ${typeName(v)}`);
    const from = a.length > 1 ? asNumber("slice", a[1]) : 0;
    const to = a.length > 2 ? asNumber("slice", a[2]) : v.length;
    if (from < 0 || to > v.length || from > to) throw new TemplateError(`slice: index out of range: ${from}:${to}`);
    return v.slice(from, to);
  },
  eq: (a) => {
    arity("eq", a, 2, Infinity);
    for (const b of a.slice(1)) {
      comparable("eq", a[0], b);
      if ((a[0] ?? null) === (b ?? null)) return true;
    }
    return false;
  },
  ne: (a) => (arity("ne", a, 2), comparable("ne", a[0], a[1]), (a[0] ?? null) !== (a[1] ?? null)),
  lt: (a) => (arity("lt", a, 2), ordered("lt", a[0], a[1]), (a[0] as number) < (a[1] as number)),
  le: (a) => (arity("le", a, 2), ordered("le", a[0], a[1]), (a[0] as number) <= (a[1] as number)),
  gt: (a) => (arity("gt", a, 2), ordered("gt", a[0], a[1]), (a[0] as number) > (a[1] as number)),
  ge: (a) => (arity("ge", a, 2), ordered("ge", a[0], a[1]), (a[0] as number) >= (a[1] as number)),
  print: (a) => sprint(a),
  println: (a) => `${a.map((x) => formatValue(x)).join(" ")}\n`,
  printf: (a) => (arity("printf", a, 1, Infinity), sprintf(str("printf", a[0]), a.slice(1))),
  html: (a) => sprint(a).replace(/[&'<>"\0]/g, (c) => ({ "&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "\0": "\uFFFD" })[c]!),
  urlquery: (a) => encodeURIComponent(sprint(a)).replace(/%20/g, "+"),
  // Docker's additions (docker/cli templates).
  json: (a) => (arity("json", a, 1), JSON.stringify(a[0] === undefined ? null : a[0])),
  join: (a) => {
    arity("join", a, 2);
    if (!Array.isArray(a[0])) throw new TemplateError(`join: wants a list, got ${typeName(a[0])}`);
    return a[0].map((x) => formatValue(x)).join(str("join", a[1]));
  },
  split: (a) => (arity("split", a, 2), str("split", a[0]).split(str("split", a[1]))),
  lower: (a) => (arity("lower", a, 1), str("lower", a[0]).toLowerCase()),
  upper: (a) => (arity("upper", a, 1), str("upper", a[0]).toUpperCase()),
  title: (a) => (arity("title", a, 1), str("title", a[0]).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_, p, c: string) => p + c.toUpperCase())),
  pad: (a) => (arity("pad", a, 3), `${" ".repeat(asNumber("pad", a[1]))}${str("pad", a[0])}${" ".repeat(asNumber("pad", a[2]))}`),
  truncate: (a) => {
    arity("truncate", a, 2);
    const chars = [...str("truncate", a[0])];
    const n = asNumber("truncate", a[1]);
    return chars.length > n ? chars.slice(0, n).join("") : chars.join("");
  },
};

export const FUNCTION_NAMES = ["and", "or", ...Object.keys(FUNCS)].sort();

interface State {
  vars: { name: string; value: unknown }[];
  missing: MissingField;
  out: string[];
}

function where(text: string): string {
  return `at <${text}>`;
}

function field(st: State, v: unknown, name: string, text: string): unknown {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    if (Object.hasOwn(v, name)) return (v as Record<string, unknown>)[name];
    if (st.missing === "zero") return undefined;
    const keys = Object.keys(v);
    const guess = nearest(name, keys);
    throw new TemplateError(
      `${where(text)}: no field "${name}"${guess ? `; did you mean "${guess}"?` : ""} (fields: ${keys.join(", ")})`,
    );
  }
  if ((v === undefined || v === null) && st.missing === "zero") return undefined;
  if (v === undefined || v === null) throw new TemplateError(`${where(text)}: nil pointer evaluating .${name}`);
  throw new TemplateError(`${where(text)}: can't evaluate field ${name} in type ${typeName(v)}`);
}

function fields(st: State, v: unknown, names: string[], text: string): unknown {
  for (const n of names) v = field(st, v, n, text);
  return v;
}

function variable(st: State, name: string): unknown {
  for (let i = st.vars.length - 1; i >= 0; i--) if (st.vars[i]!.name === name) return st.vars[i]!.value;
  throw new TemplateError(`undefined variable: ${name}`);
}

function evalArg(st: State, dot: unknown, op: Operand): unknown {
  switch (op.kind) {
    case "dot":
      return dot;
    case "nil":
      return null;
    case "bool":
      return op.value;
    case "number":
      return op.value;
    case "string":
      return op.value;
    case "field":
      return fields(st, dot, op.names, op.text);
    case "variable":
      return fields(st, variable(st, op.name), op.names, op.text);
    case "chain":
      return fields(st, evalArg(st, dot, op.node), op.names, op.text);
    case "pipeline":
      return evalPipeline(st, dot, op.pipe);
    case "identifier":
      // A function named as an argument is called with no arguments, as Go does.
      return call(st, dot, op.name, [], undefined, false);
  }
}

function call(st: State, dot: unknown, name: string, argOps: Operand[], final: unknown, hasFinal: boolean): unknown {
  if (name === "and" || name === "or") {
    const thunks: (() => unknown)[] = argOps.map((a) => () => evalArg(st, dot, a));
    if (hasFinal) thunks.push(() => final);
    if (thunks.length === 0) throw new TemplateError(`wrong number of arguments for ${name}: want at least 1, got 0`);
    let v: unknown;
    for (const t of thunks) {
      v = t();
      if (name === "and" ? !truth(v) : truth(v)) return v;
    }
    return v;
  }
  const f = FUNCS[name];
  if (!f) {
    const guess = nearest(name, FUNCTION_NAMES);
    throw new TemplateError(`function "${name}" not defined${guess ? `; did you mean "${guess}"?` : ""}`);
  }
  const args = argOps.map((a) => evalArg(st, dot, a));
  if (hasFinal) args.push(final);
  return f(args);
}

function evalCommand(st: State, dot: unknown, cmd: Command, final: unknown, hasFinal: boolean): unknown {
  const [first, ...rest] = cmd.args as [Operand, ...Operand[]];
  if (first.kind === "identifier") return call(st, dot, first.name, rest, final, hasFinal);
  if (first.kind === "nil") throw new TemplateError("nil is not a command");
  if (rest.length || hasFinal) {
    const what = first.kind === "field" || first.kind === "variable" || first.kind === "chain" ? first.text : first.kind;
    throw new TemplateError(`${where(what)}: ${what} is not a function and takes no arguments`);
  }
  return evalArg(st, dot, first);
}

function evalPipeline(st: State, dot: unknown, pipe: Pipeline): unknown {
  let v: unknown;
  pipe.cmds.forEach((c, i) => {
    v = evalCommand(st, dot, c, v, i > 0);
  });
  if (pipe.decl.length === 1) setVar(st, pipe.decl[0]!, v, pipe.assign);
  return v;
}

function setVar(st: State, name: string, value: unknown, assign: boolean): void {
  if (!assign) {
    st.vars.push({ name, value });
    return;
  }
  for (let i = st.vars.length - 1; i >= 0; i--) {
    if (st.vars[i]!.name === name) {
      st.vars[i]!.value = value;
      return;
    }
  }
  throw new TemplateError(`undefined variable: ${name}`);
}

function walk(st: State, dot: unknown, nodes: Node[]): void {
  for (const n of nodes) {
    switch (n.kind) {
      case "text":
        st.out.push(n.text);
        break;
      case "action": {
        const v = evalPipeline(st, dot, n.pipe);
        if (n.pipe.decl.length === 0) st.out.push(printValue(v));
        break;
      }
      case "if":
      case "with": {
        const mark = st.vars.length;
        const v = evalPipeline(st, dot, n.pipe);
        if (truth(v)) walk(st, n.kind === "with" ? v : dot, n.list);
        else walk(st, dot, n.elseList);
        st.vars.length = mark;
        break;
      }
      case "range":
        range(st, dot, n);
        break;
      case "break":
        throw new Break();
      case "continue":
        throw new Continue();
    }
  }
}

function range(st: State, dot: unknown, n: Extract<Node, { kind: "range" }>): void {
  const mark = st.vars.length;
  const { decl, ...pipe } = n.pipe;
  const v = evalPipeline(st, dot, { ...pipe, decl: [] });
  let items: [unknown, unknown][];
  if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
  else if (typeof v === "number" && Number.isInteger(v)) items = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
  else if (v !== null && typeof v === "object") items = Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]);
  else if (v === undefined || v === null) items = [];
  else throw new TemplateError(`range can't iterate over ${formatValue(v)}`);
  if (items.length === 0) {
    walk(st, dot, n.elseList);
    st.vars.length = mark;
    return;
  }
  for (const [k, x] of items) {
    const inner = st.vars.length;
    if (decl.length === 1) setVar(st, decl[0]!, x, n.pipe.assign);
    if (decl.length === 2) {
      setVar(st, decl[0]!, k, n.pipe.assign);
      setVar(st, decl[1]!, x, n.pipe.assign);
    }
    try {
      walk(st, x, n.list);
    } catch (e) {
      if (e instanceof Break) {
        st.vars.length = inner;
        break;
      }
      if (!(e instanceof Continue)) throw e;
    }
    st.vars.length = inner;
  }
  st.vars.length = mark;
}

export interface Template {
  /** Renders the template over `data` ($ and . at the start). */
  execute(data: unknown): string;
}

/** Parses once; throws TemplateError naming the column for a bad template. */
export function compile(src: string, missing: MissingField = "zero"): Template {
  const tree = parse(src);
  checkBreaks(tree, false);
  return {
    execute(data: unknown): string {
      const st: State = { vars: [{ name: "$", value: data }], missing, out: [] };
      walk(st, data, tree);
      return st.out.join("");
    },
  };
}

/** {{break}} and {{continue}} belong inside {{range}}. */
function checkBreaks(nodes: Node[], inRange: boolean): void {
  for (const n of nodes) {
    if ((n.kind === "break" || n.kind === "continue") && !inRange) throw new TemplateError(`{{${n.kind}}} outside {{range}} at column ${n.pos + 1}`);
    if (n.kind === "if" || n.kind === "with" || n.kind === "range") {
      checkBreaks(n.list, inRange || n.kind === "range");
      checkBreaks(n.elseList, inRange);
    }
  }
}
