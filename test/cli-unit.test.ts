// The command-line layer's pure parts: Docker-style option scanning, suggestions, help text,
// completion, tab alignment, and the consistency of every command's table.
import { describe, expect, test } from "bun:test";
import { parseArgv } from "../src/cli/argv.ts";
import { defineCommand, defineGroup, isGroup, type CommandDef, type OptionDef } from "../src/cli/command.ts";
import { resolveCommand } from "../src/cli/dispatch.ts";
import { bashTrim, complete, splitLine } from "../src/cli/complete.ts";
import { execute, parseFormat, tabwrite, templateRows } from "../src/cli/format.ts";
import { commandHelp, groupHelp, topHelp, usageLine } from "../src/cli/help.ts";
import { COMMANDS } from "../src/cli/registry.ts";
import { UsageError } from "../src/errors/errors.ts";
import { editDistance, nearest } from "../src/errors/suggest.ts";

const fixture = (endAtFirstArg: boolean) =>
  defineCommand({
    name: "run",
    args: [
      { name: "COMMAND", what: "a command to run", description: "what to run" },
      { name: "ARG", what: "arguments", description: "its arguments", required: false, repeat: true },
    ],
    options: {
      detach: { type: "boolean", alias: "d", description: "d", example: "tsnet run -d -- x" },
      interactive: { type: "boolean", alias: "i", description: "i", example: "tsnet run -i -- x" },
      tty: { type: "boolean", alias: "t", description: "t", example: "tsnet run -t -- x" },
      publish: { type: "string", alias: "p", repeat: true, description: "p", example: "tsnet run -p 8080:80 -- x" },
      name: { type: "string", description: "n", example: "tsnet run --name web -- x" },
      network: { type: "string", aliases: ["net"], description: "net", example: "tsnet run --network none -- x" },
    },
    optionsEndAtFirstArg: endAtFirstArg,
    helpShort: endAtFirstArg ? false : undefined,
    examples: ["tsnet run -- x"],
    run: () => 0,
  });
const run = fixture(true);

function parsed(argv: string[], def: CommandDef<any> = run) {
  const r = parseArgv(def, argv);
  if ("help" in r) throw new Error("help");
  return r;
}

function refused(argv: string[], def: CommandDef<any> = run): string {
  try {
    parseArgv(def, argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${argv.join(" ")}`);
}

describe("option scanning, Docker's rules", () => {
  test("combined short flags, and a value option ending the group", () => {
    expect(parsed(["-dp", "8080:80", "x"]).opts).toMatchObject({ detach: true, publish: ["8080:80"] });
    expect(parsed(["-it", "x"]).opts).toMatchObject({ interactive: true, tty: true, detach: false });
    expect(parsed(["-dp8080:80", "x"]).opts).toMatchObject({ detach: true, publish: ["8080:80"] });
  });
  test("attached values", () => {
    expect(parsed(["-p8080:80", "-p=9090:90", "x"]).opts.publish).toEqual(["8080:80", "9090:90"]);
    expect(parsed(["--name=web", "--net=none", "x"]).opts).toMatchObject({ name: "web", network: "none" });
    expect(parsed(["--name", "web", "x"]).opts.name).toBe("web");
    // a value option takes the next word whatever it looks like, as pflag does
    expect(parsed(["--name", "-x", "y"]).opts.name).toBe("-x");
  });
  test("flags take =true/=false", () => {
    expect(parsed(["--detach=false", "x"]).opts.detach).toBe(false);
    expect(parsed(["-d=true", "x"]).opts.detach).toBe(true);
    expect(refused(["--detach=yes", "x"])).toBe('option --detach takes true or false (got "--detach=yes")');
  });
  test("-- ends options; in run, so does the first word that is not an option", () => {
    expect(parsed(["-d", "--", "-x", "--name"]).args).toEqual(["-x", "--name"]);
    expect(parsed(["-d", "ls", "-l", "--name", "n"])).toEqual({ opts: expect.objectContaining({ detach: true, name: undefined }), args: ["ls", "-l", "--name", "n"] });
    expect(parsed(["-", "x"]).args).toEqual(["-", "x"]);
  });
  test("other commands take options after arguments (tsnet rm web -f)", () => {
    const rm = fixture(false);
    expect(parsed(["x", "-d", "y", "--name=n"], rm)).toEqual({ opts: expect.objectContaining({ detach: true, name: "n" }), args: ["x", "y"] });
    expect(parsed(["x", "--", "-d"], rm).args).toEqual(["x", "-d"]);
  });
  test("--help anywhere among the options; -h only where it is free", () => {
    expect(parseArgv(run, ["-d", "--help"])).toEqual({ help: true });
    expect(refused(["-h"])).toBe('unknown option "-h" for tsnet run: see tsnet run --help');
    expect(parseArgv(fixture(false), ["-dh"])).toEqual({ help: true });
    // after the command's first word --help is the command's
    expect(parsed(["ls", "--help"]).args).toEqual(["ls", "--help"]);
  });
  test("errors are one line that names the problem and suggests the nearest option", () => {
    expect(refused(["--nmae", "web", "x"])).toBe('unknown option "--nmae" for tsnet run: did you mean "--name"? (see tsnet run --help)');
    expect(refused(["--publsh", "80", "x"])).toBe('unknown option "--publsh" for tsnet run: did you mean "--publish"? (see tsnet run --help)');
    expect(refused(["--frobnicate", "x"])).toBe('unknown option "--frobnicate" for tsnet run: see tsnet run --help');
    expect(refused(["-name", "web", "x"])).toBe('unknown option "-n" in "-name" for tsnet run: did you mean "--name"? (see tsnet run --help)');
    expect(refused(["-dx", "x"])).toBe('unknown option "-x" in "-dx" for tsnet run: see tsnet run --help');
    expect(refused(["--name"])).toBe("option --name needs a value, e.g. tsnet run --name web -- x");
    expect(refused(["-dp"])).toBe("option -p needs a value, e.g. tsnet run -p 8080:80 -- x");
    expect(refused(["--name="])).toBe("option --name needs a value, e.g. tsnet run --name web -- x");
    expect(refused(["-d"])).toBe('"tsnet run" needs a command to run, e.g. tsnet run -- x');
  });
  test("argument counts", () => {
    const ps = defineCommand({ name: "ps", args: [], options: {}, examples: ["tsnet ps"], run: () => 0 });
    expect(refused(["x"], ps)).toBe('"tsnet ps" takes no arguments (got "x"): see tsnet ps --help');
    const logs = defineCommand({ name: "logs", args: [{ name: "CONTAINER", what: "a container", description: "" }], options: {}, examples: ["tsnet logs web"], run: () => 0 });
    expect(refused(["a", "b"], logs)).toBe('"tsnet logs" takes CONTAINER (got "b"): see tsnet logs --help');
    expect(refused([], logs)).toBe('"tsnet logs" needs a container, e.g. tsnet logs web');
  });
});

describe("suggestions", () => {
  test("edit distance counts a swap of neighbours as one", () => {
    expect(editDistance("nmae", "name")).toBe(1);
    expect(editDistance("rum", "run")).toBe(1);
    expect(editDistance("", "ps")).toBe(2);
  });
  test("near enough to be a typo, or a unique prefix", () => {
    const cmds = ["run", "exec", "ps", "inspect", "logs", "stop", "rm"];
    expect(nearest("rum", cmds)).toBe("run");
    expect(nearest("stpo", cmds)).toBe("stop");
    expect(nearest("insp", cmds)).toBe("inspect");
    expect(nearest("x", cmds)).toBeUndefined();
    expect(nearest("frobnicate", cmds)).toBeUndefined();
  });
});

describe("every command's table", () => {
  test("loads under its name; every option has a description and an example naming the command", async () => {
    const all: [string, CommandDef<any>][] = [];
    for (const [name, entry] of Object.entries(COMMANDS)) {
      const def = (await entry.load()).default;
      if (!isGroup(def)) {
        all.push([name, def]);
        continue;
      }
      // A family (tsnet network ...): each member under "family member".
      for (const [sub, e] of Object.entries(def.subcommands)) {
        const member = (await e.load()).default;
        expect(isGroup(member)).toBe(false);
        all.push([`${name} ${sub}`, member as CommandDef<any>]);
      }
    }
    expect(all.map(([n]) => n)).toContain("network create");
    for (const [name, c] of all) {
      expect(c.name).toBe(name);
      expect(c.examples.length).toBeGreaterThan(0);
      for (const [key, o] of Object.entries(c.options as Record<string, OptionDef>)) {
        expect(o.description.length).toBeGreaterThan(0);
        expect(o.example).toContain(`tsnet ${name}`);
        expect(key).toMatch(/^[a-z][a-z0-9-]*$/);
      }
      // no two options claim one spelling
      const spellings = Object.entries(c.options as Record<string, OptionDef>).flatMap(([k, o]) => [k, ...(o.aliases ?? []), ...(o.alias ? [`-${o.alias}`] : [])]);
      expect(new Set(spellings).size).toBe(spellings.length);
    }
  });
  test("in run -h is --hostname, as in Docker; the others take -h as --help", async () => {
    const runDef = (await COMMANDS.run!.load()).default as CommandDef<any>;
    expect(parseArgv(runDef, ["--help"])).toEqual({ help: true });
    expect(parseArgv(runDef, ["-h", "web01", "true"])).toMatchObject({ opts: { hostname: "web01" }, args: ["true"] });
    for (const name of ["ps", "inspect", "exec", "logs", "stop", "rm"]) {
      const def = (await COMMANDS[name]!.load()).default as CommandDef<any>;
      expect(parseArgv(def, ["-h"])).toEqual({ help: true });
    }
  });
});

describe("help text", () => {
  test("usage line from the arguments", () => {
    expect(usageLine("run", run)).toBe("tsnet run [OPTIONS] [--] COMMAND [ARG...]");
    const rm = defineCommand({ name: "rm", args: [{ name: "CONTAINER", what: "", description: "", repeat: true }], options: { force: { type: "boolean", alias: "f", description: "", example: "" } }, examples: [""], run: () => 0 });
    expect(usageLine("rm", rm)).toBe("tsnet rm [OPTIONS] CONTAINER [CONTAINER...]");
  });
  test("plain, or with ANSI colour when asked", () => {
    const plain = commandHelp("run", "Run it", run, false);
    expect(plain).not.toContain("\x1b");
    expect(plain).toContain("  -p, --publish VALUE   p (repeatable)\n                        e.g. tsnet run -p 8080:80 -- x\n");
    expect(plain).toContain("      --network VALUE   net (also --net)\n");
    expect(plain).toContain("      --help            Print this help\n");
    const color = commandHelp("run", "Run it", run, true);
    expect(color).toContain("\x1b[1mUsage:\x1b[22m");
    expect(color.replace(/\x1b\[[0-9;]*m/g, "")).toBe(plain);
  });
});

describe("completion", () => {
  test("commands, options of a command, values of options", async () => {
    const words = async (w: string[]) => (await complete(w)).map((c) => c.word);
    expect(await words(["r"])).toEqual(["run", "restart", "rm"]);
    expect(await words(["ps", "--"])).toEqual(["--all", "--format", "--quiet", "--filter", "--last", "--latest", "--help"]);
    expect(await words(["ps", "-"])).toEqual(["--all", "-a", "--format", "--quiet", "-q", "--filter", "-f", "--last", "-n", "--latest", "-l", "--help", "-h"]);
    expect(await words(["ps", "--format", ""])).toEqual(["json", "table"]);
    expect(await words(["ps", "--format=j"])).toEqual(["--format=json"]);
    expect(await words(["run", "--network", "n"])).toEqual(["none"]);
    expect(await words(["run", "-dp", "80", "--net"])).toEqual(["--network", "--network-alias"]);
    expect(await words(["completion", ""])).toEqual(["bash", "zsh", "fish"]);
    expect(await words(["help", "ins"])).toEqual(["inspect"]);
    // after run's command, the words are the command's: nothing from tsnet
    expect(await words(["run", "ls", "--"])).toEqual([]);
    // hidden helpers are never offered
    expect(await words(["_"])).toEqual([]);
  });
  test("shell words and bash's word breaks", () => {
    expect(splitLine("tsnet run --name 'a b' x\\ y ")).toEqual(["tsnet", "run", "--name", "a b", "x y", ""]);
    expect(splitLine("tsnet ps --fo")).toEqual(["tsnet", "ps", "--fo"]);
    expect(bashTrim("--network=container:web", "--network=container:w", "\"'><=;|&(:")).toBe("web");
    expect(bashTrim("--network=bridge", "--network=b", "=:")).toBe("bridge");
    expect(bashTrim("--format", "--fo", "=:")).toBe("--format");
  });
});

describe("--format", () => {
  test("json, table and templates; \\t and \\n as in Docker", () => {
    expect(parseFormat("ps", undefined, "error")).toEqual({ kind: "default" });
    expect(parseFormat("ps", "table", "error")).toEqual({ kind: "default" });
    expect(parseFormat("ps", "json", "error")).toEqual({ kind: "json" });
    const f = parseFormat("ps", "table {{.Names}}\\t{{.State}}", "error");
    if (f.kind !== "template") throw new Error("not a template");
    expect(f.table).toBe(true);
    const rows = [{ Names: "web", State: "running" }, { Names: "a-much-longer-name", State: "exited" }];
    expect(templateRows("ps", f, rows, { Names: "NAMES", State: "STATE" })).toBe(
      "NAMES                STATE\nweb                  running\na-much-longer-name   exited\n",
    );
    const g = parseFormat("ps", "{{.Names}}\\n", "error");
    if (g.kind !== "template") throw new Error("not a template");
    expect(templateRows("ps", g, rows, {})).toBe("web\n\na-much-longer-name\n\n");
  });
  test("an inspect template is read as written: Go's own escapes inside strings work", () => {
    const run = (src: string, data: unknown) => {
      const f = parseFormat("inspect", src, "zero", false);
      if (f.kind !== "template") throw new Error("not a template");
      return execute("inspect", f.template, data);
    };
    expect(run('{{.Name}}{{"\\n"}}', { Name: "/a" })).toBe("/a\n");
    expect(run('{{printf "%s\\t%s" .Name .Id}}', { Name: "/a", Id: "b" })).toBe("/a\tb");
    expect(run('{{range $k, $v := .L}}{{$k}}={{$v}}{{"\\n"}}{{end}}', { L: { x: "1", y: "2" } })).toBe("x=1\ny=2\n");
    // "table" means nothing to inspect: it is text of the template.
    expect(run("table {{.Name}}", { Name: "/a" })).toBe("table /a");
  });
  test("a bad template is a usage error naming where it breaks", () => {
    expect(() => parseFormat("ps", "{{.Names", "error")).toThrow('invalid --format template for tsnet ps: unclosed action at column 1: a "}}" is missing');
    expect(() => parseFormat("ps", "{{range .X}}", "error")).toThrow(UsageError);
  });
  test("tabwriter: minimum width 10, padding 3, the last cell unaligned", () => {
    expect(tabwrite("a\tb\tc\nlonger-cell\tx\ty")).toBe("a             b         c\nlonger-cell   x         y");
    expect(tabwrite("no tabs\nat all")).toBe("no tabs\nat all");
  });
});

describe("a family of commands (as `tsnet network ...` will be)", () => {
  // Registered for this test only, the way a real family is: one entry whose module is a group.
  const ls = defineCommand({
    name: "network ls",
    args: [],
    options: { quiet: { type: "boolean", alias: "q", description: "Only names", example: "tsnet network ls -q" } },
    examples: ["tsnet network ls"],
    run: () => 0,
  });
  const rmNet = defineCommand({
    name: "network rm",
    args: [{ name: "NETWORK", what: "a network", description: "Name", repeat: true, complete: ["front", "back"] }],
    options: {},
    examples: ["tsnet network rm front"],
    run: () => 0,
  });
  const group = defineGroup({
    name: "network",
    subcommands: {
      ls: { description: "List networks", load: async () => ({ default: ls }) },
      rm: { description: "Remove networks", load: async () => ({ default: rmNet }) },
    },
  });
  // The registry is shared by every test file of the run: the real entry is put back after.
  const withFamily = async (fn: () => Promise<void>) => {
    const real = COMMANDS.network;
    COMMANDS.network = { description: "Manage networks", load: async () => ({ default: group }) };
    try {
      await fn();
    } finally {
      if (real) COMMANDS.network = real;
      else delete COMMANDS.network;
    }
  };

  test("dispatch, help and completion walk into it with no change to them", () =>
    withFamily(async () => {
      const r = await resolveCommand(["network", "ls", "-q"], false);
      expect({ path: r.path, rest: r.rest, def: r.def }).toEqual({ path: "network ls", rest: ["-q"], def: ls });
      expect(parseArgv(ls, ["-q"])).toEqual({ opts: { quiet: true }, args: [] });
      expect(groupHelp("network", "Manage networks", group, false)).toBe(
        "Usage:  tsnet network COMMAND\n\nManage networks\n\nCommands:\n  ls   List networks\n  rm   Remove networks\n\nRun 'tsnet network COMMAND --help' for more on a command.\n",
      );
      // The column is as wide as the longest command name (firewall-reload).
      expect(topHelp(false)).toMatch(/\n  network +Manage networks\n/);
      const words = async (w: string[]) => (await complete(w)).map((c) => c.word);
      expect(await words(["netw"])).toEqual(["network"]);
      expect(await words(["network", ""])).toEqual(["ls", "rm"]);
      expect(await words(["network", "ls", "--"])).toEqual(["--quiet", "--help"]);
      expect(await words(["network", "rm", "f"])).toEqual(["front"]);
      expect(await words(["help", "network", ""])).toEqual(["ls", "rm"]);
      await expect(resolveCommand(["network", "sl"], false)).rejects.toThrow('unknown command "sl" for tsnet network: did you mean "ls"? (see tsnet network --help)');
    }));
});
