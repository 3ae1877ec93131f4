// The Go text/template engine behind --format (src/template/). The expected outputs of the
// cases that use Go's own language and functions are what Go's text/template prints for the
// same template over the same data (checked with Go 1.19, whole numbers as Go ints); Docker's
// functions (json, join, split, lower, upper, title, pad, truncate) follow docker/cli's code.
import { describe, expect, test } from "bun:test";
import { compile, type MissingField } from "../src/template/exec.ts";
import { sprintf } from "../src/template/printf.ts";

const data = {
  ID: "f1b8c2afc581",
  Names: "web",
  Num: 16,
  Half: 0.5,
  Yes: true,
  No: false,
  Nil: null,
  Empty: "",
  List: ["a", "b", "c"],
  NetworkSettings: {
    IPAddress: "10.77.0.2",
    Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }], "53/udp": [{ HostIp: "127.0.0.1", HostPort: "5353" }] },
    Networks: { bridge: { IPAddress: "10.77.0.2", Gateway: "10.77.0.1" } },
  },
};

function run(src: string, missing: MissingField = "zero", d: unknown = data): string {
  return compile(src, missing).execute(d);
}

function fails(src: string, missing: MissingField = "zero"): string {
  try {
    run(src, missing);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`no error for ${src}`);
}

describe("fields and values", () => {
  const cases: [string, string][] = [
    ["{{.Names}}", "web"],
    ["{{.ID}} {{.Names}}", "f1b8c2afc581 web"],
    ["{{.NetworkSettings.IPAddress}}", "10.77.0.2"],
    ["{{.NetworkSettings.Networks.bridge.Gateway}}", "10.77.0.1"],
    ["{{.Num}} {{.Half}} {{.Yes}} {{.No}}", "16 0.5 true false"],
    ["{{.Nil}}", "<no value>"],
    ["{{print .Nil .Missing}}", "<nil> <nil>"],
    ["{{.Missing}}", "<no value>"],
    ["{{.Missing.Deeper}}", "<no value>"],
    ["{{.List}}", "[a b c]"],
    ["{{.NetworkSettings.Networks}}", "map[bridge:map[Gateway:10.77.0.1 IPAddress:10.77.0.2]]"],
    ["{{.}}", "map[Empty: Half:0.5 ID:f1b8c2afc581 List:[a b c] Names:web NetworkSettings:map[IPAddress:10.77.0.2 Networks:map[bridge:map[Gateway:10.77.0.1 IPAddress:10.77.0.2]] Ports:map[53/udp:[map[HostIp:127.0.0.1 HostPort:5353]] 80/tcp:[map[HostIp:0.0.0.0 HostPort:8080]]]] Nil:<nil> No:false Num:16 Yes:true]"],
    ["{{$.Names}}", "web"],
    ["plain text", "plain text"],
    ["{{`raw {{x}}`}} {{\"q\\t\\\"\"}} {{'a'}} {{0x1F}} {{1e3}} {{-7}} {{true}}", 'raw {{x}} q\t" 97 31 1000 -7 true'],
  ];
  for (const [src, want] of cases) test(src, () => expect(run(src)).toBe(want));
});

describe("actions", () => {
  const cases: [string, string][] = [
    ["{{if .Yes}}y{{else}}n{{end}}", "y"],
    ["{{if .Empty}}y{{else if .Num}}num{{else}}n{{end}}", "num"],
    ["{{if .List}}has{{end}}{{if .Nil}}nil{{end}}{{if .Missing}}m{{end}}", "has"],
    ["{{with .NetworkSettings}}{{.IPAddress}}{{end}}", "10.77.0.2"],
    ["{{with .Empty}}x{{else with .Names}}{{.}}{{else}}none{{end}}", "web"],
    ["{{range .List}}<{{.}}>{{end}}", "<a><b><c>"],
    ["{{range $i, $e := .List}}{{$i}}={{$e}};{{end}}", "0=a;1=b;2=c;"],
    ["{{range $p, $b := .NetworkSettings.Ports}}{{$p}}->{{(index $b 0).HostPort}} {{end}}", "53/udp->5353 80/tcp->8080 "],
    ["{{range .Nil}}x{{else}}empty{{end}}", "empty"],
    ["{{range .List}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}", "ac"],
    ["{{range .List}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}", "a"],
    ["{{range 3}}{{.}}{{end}}", "012"],
    ["{{range .List}}{{$.Names}}{{end}}", "webwebweb"],
    ["{{$x := .Names}}{{$x}}{{$x = \"db\"}}{{$x}}", "webdb"],
    ["{{if .Yes}}{{$y := 1}}{{$y}}{{end}}", "1"],
    ["a {{- /* a comment */ -}} b", "ab"],
    ["{{/* only a comment */}}", ""],
    ["x  {{- .Names -}}  \n y", "xweby"],
    ["{{.Names | printf \"%s!\"}}", "web!"],
    ["{{.List | len | printf \"%d items\"}}", "3 items"],
  ];
  for (const [src, want] of cases) test(src, () => expect(run(src)).toBe(want));
});

describe("functions", () => {
  const cases: [string, string][] = [
    // Docker's
    ["{{json .List}}", '["a","b","c"]'],
    ["{{json .NetworkSettings.Networks}}", '{"bridge":{"IPAddress":"10.77.0.2","Gateway":"10.77.0.1"}}'],
    ['{{json "<&>"}}', '"<&>"'],
    ['{{join .List ", "}}', "a, b, c"],
    ['{{split "a:b:c" ":"}}', "[a b c]"],
    ['{{lower "MiXed"}} {{upper .Names}} {{title "hello wide world"}}', "mixed WEB Hello Wide World"],
    ["{{pad .Names 2 1}}|", "  web |"],
    ["{{truncate .ID 4}} {{truncate .Names 10}}", "f1b8 web"],
    // Go's
    ["{{index .List 1}} {{index .NetworkSettings.Ports \"80/tcp\" 0 \"HostPort\"}}", "b 8080"],
    ['{{index .NetworkSettings.Networks "none"}}', "<no value>"],
    ["{{len .List}} {{len .Names}} {{len .NetworkSettings.Ports}}", "3 3 2"],
    ["{{slice .List 1}} {{slice .Names 0 2}}", "[b c] we"],
    ['{{eq .Names "db" "web"}} {{ne .Num 16}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}', "true false true true true false"],
    ["{{and .Yes .Num}} {{and .Empty .Num}} {{or .Empty .Nil .Names}} {{not .Yes}}", "16  web false"],
    ['{{print "a" 1 2 "b"}}|{{println "x" 1}}|', "a1 2b|x 1\n|"],
    ['{{printf "%-6s|%5s|%05d|%x|%X|%o|%q|%t|%v|%c|%%" "ab" "cd" 42 255 255 8 "q" true .List 65}}', "ab    |   cd|00042|ff|FF|10|\"q\"|true|[a b c]|A|%"],
    ['{{printf "%.2f %e %g %+d" 3.14159 1234.5 0.5 7}}', "3.14 1.234500e+03 0.5 +7"],
    ['{{printf "%d %s"  "x"}}', "%!d(string=x) %!s(MISSING)"],
    ['{{printf "%v %s" .NetworkSettings.Networks .Nil}}', "map[bridge:map[Gateway:10.77.0.1 IPAddress:10.77.0.2]] %!s(<nil>)"],
    ['{{printf "%6.2f|%-8.3e|%G|%g|%v|%.1f|%.1f" 3.14159 1234.5 1e-7 1e6 0.000012 2.25 2.35}}', "  3.14|1.234e+03|1E-07|1e+06|1.2e-05|2.2|2.4"],
    ['{{html "<a href=\'x\'>"}} {{urlquery "a b&c"}}', "&lt;a href=&#39;x&#39;&gt; a+b%26c"],
    // and/or do not evaluate what they do not need
    ["{{or .Names (index .List 99)}}", "web"],
  ];
  for (const [src, want] of cases) test(src, () => expect(run(src)).toBe(want));
});

describe("errors name the problem", () => {
  test("parse errors", () => {
    expect(fails("{{.Names")).toBe('unclosed action at column 1: a "}}" is missing');
    expect(fails("{{if .Yes}}x")).toBe("unexpected end of template: {{if}} at column 3 has no {{end}} at column 13");
    expect(fails("{{end}}")).toMatch(/^unexpected \{\{end\}\}/);
    expect(fails("{{template \"x\"}}")).toBe("{{template}} is not supported (a --format is a single template) at column 3");
    expect(fails("{{break}}")).toBe("{{break}} outside {{range}} at column 3");
    expect(fails('{{"abc}}')).toBe("unterminated quoted string at column 3");
    expect(fails("{{.Names |}}")).toBe("missing command after | at column 10");
  });
  test("run-time errors", () => {
    expect(fails("{{nope .Names}}")).toBe('function "nope" not defined');
    expect(fails("{{jsno .}}")).toBe('function "jsno" not defined; did you mean "json"?');
    expect(fails("{{index .List 7}}")).toBe("index: index out of range: 7");
    expect(fails('{{eq .Num "16"}}')).toBe("eq: incompatible types for comparison: int and string");
    expect(fails("{{$nope}}")).toBe("undefined variable: $nope");
    expect(fails("{{nil}}")).toBe("nil is not a command");
    expect(fails("{{.Names 1}}")).toBe("at <.Names>: .Names is not a function and takes no arguments");
  });
  test("with a fixed set of fields, a missing one is an error with the nearest field", () => {
    expect(fails("{{.Nmaes}}", "error")).toBe('at <.Nmaes>: no field "Nmaes"; did you mean "Names"? (fields: ID, Names, Num, Half, Yes, No, Nil, Empty, List, NetworkSettings)');
    expect(fails("{{.Names.X}}", "error")).toBe("at <.Names.X>: can't evaluate field X in type string");
  });
});

describe("printf alone", () => {
  test("widths, flags and bad verbs", () => {
    expect(sprintf("%3d|%-3d|%+.1f|%08.3f|%s", [5, 5, 2.25, -3.14159, "x"])).toBe("  5|5  |+2.2|-003.142|x");
    expect(sprintf("%d", [1, 2])).toBe("1%!(EXTRA int=2)");
    expect(sprintf("%z", ["a"])).toBe("%!z(string=a)");
  });
});
