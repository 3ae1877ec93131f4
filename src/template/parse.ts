// Go's text/template language (the subset Docker's --format users write), parsed into a tree:
//   text {{pipeline}} text
//   {{if P}} {{else if P}} {{else}} {{end}}     {{with P}} {{else with P}} {{else}} {{end}}
//   {{range P}} {{else}} {{end}}   {{range $i, $e := P}}   {{break}} {{continue}}
//   {{$x := P}}  {{$x = P}}   {{/* comment */}}   {{- trim left}}  {{trim right -}}
// A pipeline is commands joined by |, each command a function and its arguments or one operand;
// operands are . .Field.Chain $ $x $x.Field (pipeline).Field "string" `raw` 'c' 12 1.5 0x1f
// true false nil. {{define}}, {{template}} and {{block}} are refused: Docker's formats are one
// template each.

export class TemplateError extends Error {
  override name = "TemplateError";
}

export type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Pipeline; pos: number }
  | { kind: "if" | "with"; pipe: Pipeline; list: Node[]; elseList: Node[]; pos: number }
  | { kind: "range"; pipe: Pipeline; list: Node[]; elseList: Node[]; pos: number }
  | { kind: "break" | "continue"; pos: number };

export interface Pipeline {
  /** Variables declared (:=) or assigned (=) with the result. */
  decl: string[];
  assign: boolean;
  cmds: Command[];
  pos: number;
}

export interface Command {
  args: Operand[];
  pos: number;
}

export type Operand =
  | { kind: "dot" }
  | { kind: "nil" }
  | { kind: "bool"; value: boolean }
  | { kind: "number"; value: number; text: string }
  | { kind: "string"; value: string }
  | { kind: "field"; names: string[]; text: string }
  | { kind: "variable"; name: string; names: string[]; text: string }
  | { kind: "identifier"; name: string }
  | { kind: "chain"; node: Operand; names: string[]; text: string }
  | { kind: "pipeline"; pipe: Pipeline };

// ---- lexer -------------------------------------------------------------------------------

type TokKind =
  | "text" | "left" | "right" | "space" | "pipe" | "lparen" | "rparen" | "comma" | "declare" | "assign"
  | "string" | "raw" | "char" | "number" | "bool" | "nil" | "dot" | "field" | "variable" | "identifier"
  | "keyword" | "eof";

interface Token {
  kind: TokKind;
  text: string;
  pos: number;
}

const KEYWORDS = new Set(["if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"]);

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\r" || c === "\n";
}

function isAlnum(c: string | undefined): boolean {
  return c !== undefined && /[\p{L}\p{N}_]/u.test(c);
}

function lex(src: string): Token[] {
  const toks: Token[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    let open = src.indexOf("{{", i);
    if (open < 0) open = src.length;
    let text = src.slice(i, open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, "");
    trimNext = false;
    const trimLeft = open < src.length && src[open + 2] === "-" && isSpace(src[open + 3]);
    if (trimLeft) text = text.replace(/[ \t\r\n]+$/, "");
    if (text) toks.push({ kind: "text", text, pos: i });
    if (open >= src.length) break;
    i = open + 2 + (trimLeft ? 2 : 0);
    // A comment is a whole action: {{/* ... */}}, trim markers allowed around it.
    if (src.startsWith("/*", i)) {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) throw new TemplateError(`unclosed comment at column ${open + 1}`);
      const j = end + 2;
      if (src.startsWith("}}", j)) i = j + 2;
      else if (isSpace(src[j]) && src[j + 1] === "-" && src.startsWith("}}", j + 2)) {
        trimNext = true;
        i = j + 4;
      } else throw new TemplateError(`comment ends before "}}" at column ${j + 1}`);
      continue;
    }
    toks.push({ kind: "left", text: "{{", pos: open });
    let depth = 0;
    for (;;) {
      if (i >= src.length) throw new TemplateError(`unclosed action at column ${open + 1}: a "}}" is missing`);
      const c = src[i]!;
      const start = i;
      // " -}}" closes with a right trim.
      if (isSpace(c) && src[i + 1] === "-" && src.startsWith("}}", i + 2)) {
        if (depth) throw new TemplateError(`unclosed "(" in action at column ${open + 1}`);
        trimNext = true;
        toks.push({ kind: "right", text: "}}", pos: i + 2 });
        i += 4;
        break;
      }
      if (src.startsWith("}}", i)) {
        if (depth) throw new TemplateError(`unclosed "(" in action at column ${open + 1}`);
        toks.push({ kind: "right", text: "}}", pos: i });
        i += 2;
        break;
      }
      if (isSpace(c)) {
        while (isSpace(src[i])) i++;
        toks.push({ kind: "space", text: " ", pos: start });
        continue;
      }
      if (c === "|") { toks.push({ kind: "pipe", text: c, pos: i++ }); continue; }
      if (c === "(") { depth++; toks.push({ kind: "lparen", text: c, pos: i++ }); continue; }
      if (c === ")") {
        if (!depth) throw new TemplateError(`unexpected ")" at column ${i + 1}`);
        depth--;
        toks.push({ kind: "rparen", text: c, pos: i++ });
        continue;
      }
      if (c === ",") { toks.push({ kind: "comma", text: c, pos: i++ }); continue; }
      if (c === ":" && src[i + 1] === "=") { toks.push({ kind: "declare", text: ":=", pos: i }); i += 2; continue; }
      if (c === "=") { toks.push({ kind: "assign", text: "=", pos: i++ }); continue; }
      if (c === '"') {
        let j = i + 1;
        while (j < src.length && src[j] !== '"') {
          if (src[j] === "\\") j++;
          if (src[j] === "\n") break;
          j++;
        }
        if (src[j] !== '"') throw new TemplateError(`unterminated quoted string at column ${i + 1}`);
        toks.push({ kind: "string", text: src.slice(i, j + 1), pos: i });
        i = j + 1;
        continue;
      }
      if (c === "`") {
        const j = src.indexOf("`", i + 1);
        if (j < 0) throw new TemplateError(`unterminated raw string at column ${i + 1}`);
        toks.push({ kind: "raw", text: src.slice(i, j + 1), pos: i });
        i = j + 1;
        continue;
      }
      if (c === "'") {
        let j = i + 1;
        if (src[j] === "\\") j++;
        j++;
        if (src[j] !== "'") throw new TemplateError(`bad character constant at column ${i + 1}`);
        toks.push({ kind: "char", text: src.slice(i, j + 1), pos: i });
        i = j + 1;
        continue;
      }
      if (c === "$") {
        let j = i + 1;
        while (isAlnum(src[j])) j++;
        toks.push({ kind: "variable", text: src.slice(i, j), pos: i });
        i = j;
        continue;
      }
      if (c === ".") {
        if (/[0-9]/.test(src[i + 1] ?? "")) {
          const m = src.slice(i).match(/^\.[0-9_]+([eE][+-]?[0-9]+)?/)!;
          toks.push({ kind: "number", text: m[0], pos: i });
          i += m[0].length;
          continue;
        }
        let j = i + 1;
        while (isAlnum(src[j])) j++;
        toks.push({ kind: j === i + 1 ? "dot" : "field", text: src.slice(i, j), pos: i });
        i = j;
        continue;
      }
      if (/[0-9+-]/.test(c)) {
        const m = src.slice(i).match(/^[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|([0-9][0-9_]*)?\.?[0-9_]*([eE][+-]?[0-9]+)?)/);
        if (!m || !/[0-9]/.test(m[0])) throw new TemplateError(`bad number syntax at column ${i + 1}`);
        if (isAlnum(src[i + m[0].length])) throw new TemplateError(`bad number syntax "${src.slice(i, i + m[0].length + 1)}" at column ${i + 1}`);
        toks.push({ kind: "number", text: m[0], pos: i });
        i += m[0].length;
        continue;
      }
      if (isAlnum(c)) {
        let j = i;
        while (isAlnum(src[j])) j++;
        const word = src.slice(i, j);
        const kind: TokKind = KEYWORDS.has(word) ? "keyword" : word === "true" || word === "false" ? "bool" : word === "nil" ? "nil" : "identifier";
        toks.push({ kind, text: word, pos: i });
        i = j;
        continue;
      }
      throw new TemplateError(`unexpected "${c}" in action at column ${i + 1}`);
    }
  }
  toks.push({ kind: "eof", text: "", pos: src.length });
  return toks;
}

// ---- parser ------------------------------------------------------------------------------

/** Go's strconv.Unquote for "..." strings. */
function unquote(q: string, pos: number): string {
  try {
    // JSON's escapes are Go's, less \a \v \x \' and octal, which are rare in formats.
    return JSON.parse(q.replace(/\\a/g, "\\u0007").replace(/\\v/g, "\\u000b").replace(/\\x([0-9a-fA-F]{2})/g, "\\u00$1").replace(/\\'/g, "'")) as string;
  } catch {
    throw new TemplateError(`bad string ${q} at column ${pos + 1}`);
  }
}

function parseNumber(text: string, pos: number): number {
  const t = text.replace(/_/g, "");
  const neg = t.startsWith("-");
  const body = t.replace(/^[+-]/, "");
  let v: number;
  if (/^0[xX]/.test(body)) v = parseInt(body.slice(2), 16);
  else if (/^0[bB]/.test(body)) v = parseInt(body.slice(2), 2);
  else if (/^0[oO]/.test(body)) v = parseInt(body.slice(2), 8);
  else if (/^0[0-7]+$/.test(body)) v = parseInt(body.slice(1), 8);
  else v = Number(body);
  if (!Number.isFinite(v)) throw new TemplateError(`bad number "${text}" at column ${pos + 1}`);
  return neg ? -v : v;
}

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(): Token {
    return this.toks[this.i]!;
  }
  private next(): Token {
    const t = this.toks[this.i]!;
    if (t.kind !== "eof") this.i++; // the end stays the end, however often it is read
    return t;
  }
  private skipSpace(): void {
    while (this.peek().kind === "space") this.i++;
  }
  private fail(t: Token, what: string): never {
    throw new TemplateError(`${what} at column ${t.pos + 1}`);
  }
  private describe(t: Token): string {
    return t.kind === "eof" ? "end of template" : t.kind === "right" ? '"}}"' : `"${t.text}"`;
  }

  parse(): Node[] {
    const { list, end } = this.list();
    if (end !== "eof") this.fail(this.toks[this.i - 1]!, `unexpected {{${end}}}`);
    return list;
  }

  /** Nodes up to {{end}}, {{else}} or the end of the template. */
  private list(): { list: Node[]; end: "eof" | "end" | "else" } {
    const list: Node[] = [];
    for (;;) {
      const t = this.next();
      if (t.kind === "eof") return { list, end: "eof" };
      if (t.kind === "text") {
        list.push({ kind: "text", text: t.text });
        continue;
      }
      // t is "{{"
      this.skipSpace();
      const k = this.peek();
      if (k.kind === "keyword") {
        this.next();
        switch (k.text) {
          case "end":
            this.close();
            return { list, end: "end" };
          case "else":
            // {{else}} or {{else if ...}} / {{else with ...}}: the caller reads what follows.
            return { list, end: "else" };
          case "if":
          case "with":
          case "range":
            list.push(this.control(k.text, k.pos));
            continue;
          case "break":
          case "continue":
            this.close();
            list.push({ kind: k.text, pos: k.pos });
            continue;
          default:
            this.fail(k, `{{${k.text}}} is not supported (a --format is a single template)`);
        }
      }
      const pipe = this.pipeline(true);
      this.expectClose();
      list.push({ kind: "action", pipe, pos: t.pos });
    }
  }

  private close(): void {
    this.skipSpace();
    const t = this.next();
    if (t.kind !== "right") this.fail(t, `unexpected ${this.describe(t)}, expected "}}"`);
  }
  private expectClose(): void {
    const t = this.next();
    if (t.kind !== "right") this.fail(t, `unexpected ${this.describe(t)} in action`);
  }

  /** After {{if / {{with / {{range: the pipeline, the body and the else branch. */
  private control(kind: "if" | "with" | "range", pos: number): Node {
    const pipe = this.pipeline(kind === "range" ? "range" : true);
    if (pipe.cmds.length === 0) this.fail(this.peek(), `missing value for ${kind}`);
    this.expectClose();
    const body = this.list();
    if (body.end === "eof") this.fail(this.peek(), `unexpected end of template: {{${kind}}} at column ${pos + 1} has no {{end}}`);
    let elseList: Node[] = [];
    if (body.end === "else") {
      this.skipSpace();
      const k = this.peek();
      if ((kind === "if" && k.kind === "keyword" && k.text === "if") || (kind === "with" && k.kind === "keyword" && k.text === "with")) {
        // {{else if P}} is {{else}}{{if P}}...{{end}} sharing the outer {{end}}.
        this.next();
        elseList = [this.control(kind, k.pos)];
      } else {
        this.close();
        const e = this.list();
        if (e.end !== "end") this.fail(this.peek(), `{{${kind}}} at column ${pos + 1} has no {{end}}`);
        elseList = e.list;
      }
    }
    return { kind, pipe, list: body.list, elseList, pos };
  }

  private pipeline(allowDecl: boolean | "range"): Pipeline {
    this.skipSpace();
    const pos = this.peek().pos;
    const decl: string[] = [];
    let assign = false;
    // $x := / $x = / (range only) $i, $e :=
    if (allowDecl && this.peek().kind === "variable") {
      const save = this.i;
      const v = this.next();
      this.skipSpace();
      const t = this.peek();
      if (t.kind === "declare" || t.kind === "assign") {
        this.next();
        decl.push(v.text);
        assign = t.kind === "assign";
      } else if (t.kind === "comma" && allowDecl === "range") {
        this.next();
        this.skipSpace();
        const v2 = this.next();
        if (v2.kind !== "variable") this.fail(v2, "expected a variable after \",\" in range");
        this.skipSpace();
        const d = this.next();
        if (d.kind !== "declare" && d.kind !== "assign") this.fail(d, 'expected ":=" in range');
        decl.push(v.text, v2.text);
        assign = d.kind === "assign";
      } else this.i = save;
    }
    const cmds: Command[] = [];
    for (;;) {
      this.skipSpace();
      const t = this.peek();
      if (t.kind === "right" || t.kind === "rparen") break;
      cmds.push(this.command());
      this.skipSpace();
      if (this.peek().kind === "pipe") {
        const p = this.next();
        this.skipSpace();
        const after = this.peek();
        if (after.kind === "right" || after.kind === "rparen") this.fail(p, "missing command after |");
        continue;
      }
    }
    if (decl.length && cmds.length === 0) this.fail(this.peek(), "missing value for the variable");
    return { decl, assign, cmds, pos };
  }

  private command(): Command {
    const pos = this.peek().pos;
    const args: Operand[] = [];
    for (;;) {
      this.skipSpace();
      const t = this.peek();
      if (t.kind === "right" || t.kind === "rparen" || t.kind === "pipe") break;
      args.push(this.operand());
      const after = this.peek();
      if (after.kind !== "space" && after.kind !== "right" && after.kind !== "rparen" && after.kind !== "pipe") {
        this.fail(after, `unexpected ${this.describe(after)} in operand`);
      }
    }
    if (args.length === 0) this.fail(this.peek(), "empty command");
    return { args, pos };
  }

  private operand(): Operand {
    const t = this.next();
    let node: Operand;
    switch (t.kind) {
      case "dot":
        node = { kind: "dot" };
        break;
      case "field": {
        const names = [t.text.slice(1)];
        while (this.peek().kind === "field") names.push(this.next().text.slice(1));
        return { kind: "field", names, text: `.${names.join(".")}` };
      }
      case "variable": {
        const names: string[] = [];
        while (this.peek().kind === "field") names.push(this.next().text.slice(1));
        return { kind: "variable", name: t.text, names, text: [t.text, ...names].join(".") };
      }
      case "nil":
        node = { kind: "nil" };
        break;
      case "bool":
        node = { kind: "bool", value: t.text === "true" };
        break;
      case "number":
        node = { kind: "number", value: parseNumber(t.text, t.pos), text: t.text };
        break;
      case "char": {
        const inner = t.text.slice(1, -1);
        const c = inner.startsWith("\\") ? unquote(`"${inner}"`, t.pos) : inner;
        node = { kind: "number", value: c.codePointAt(0)!, text: t.text };
        break;
      }
      case "string":
        node = { kind: "string", value: unquote(t.text, t.pos) };
        break;
      case "raw":
        node = { kind: "string", value: t.text.slice(1, -1) };
        break;
      case "identifier":
        node = { kind: "identifier", name: t.text };
        break;
      case "lparen": {
        const pipe = this.pipeline(false);
        const r = this.next();
        if (r.kind !== "rparen") this.fail(r, 'expected ")"');
        node = { kind: "pipeline", pipe };
        break;
      }
      default:
        this.fail(t, `unexpected ${this.describe(t)} in operand`);
    }
    // (pipeline).Field, "x".Field (an error when run), ...
    if (this.peek().kind === "field") {
      const names: string[] = [];
      while (this.peek().kind === "field") names.push(this.next().text.slice(1));
      if (node.kind === "identifier" || node.kind === "nil" || node.kind === "bool" || node.kind === "number" || node.kind === "string") {
        this.fail(t, `unexpected . after term "${t.text}"`);
      }
      return { kind: "chain", node, names, text: `(…).${names.join(".")}` };
    }
    return node;
  }
}

export function parse(src: string): Node[] {
  return new Parser(lex(src)).parse();
}
