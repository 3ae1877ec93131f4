// The command line as Docker users type it and scripts consume it, through dist/tsnet: help for
// every command, Docker's option forms, suggestions, --format templates, output into closed
// pipes and full disks, one-line errors, root, completion scripts, --version.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { isGroup, type CommandDef, type OptionDef } from "../src/cli/command.ts";
import { COMMANDS } from "../src/cli/registry.ts";
import { TSNET, assertThrowawayHost, ipj, records, sh, tsnet, waitFor, removeAllContainers, runDetached as runD } from "./helpers.ts";
import { NestedHost } from "./nested-host.ts";

beforeAll(() => assertThrowawayHost());

const PUBLIC = Object.entries(COMMANDS).filter(([, c]) => !c.hidden).map(([n]) => n);
const bash = (script: string, env?: Record<string, string>) => sh(["bash", "-c", script], { env: { T: TSNET, ...env } });
const asNobody = (args: string[]) => sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TSNET, ...args]);

afterEach(removeAllContainers);
afterAll(removeAllContainers);

describe("help", () => {
  test("tsnet COMMAND --help and tsnet help COMMAND: exit 0, the same text, every option with an example", async () => {
    // Every command, and every command of a group (tsnet network ls).
    const commands: { words: string[]; def: CommandDef<any> }[] = [];
    for (const name of PUBLIC) {
      const def = (await COMMANDS[name]!.load()).default;
      if (!isGroup(def)) commands.push({ words: [name], def });
      else for (const [sub, e] of Object.entries(def.subcommands)) commands.push({ words: [name, sub], def: (await e.load()).default as CommandDef<any> });
    }
    expect(commands.map((c) => c.words.join(" "))).toContain("network create");
    for (const { words, def } of commands) {
      const name = words.join(" ");
      const a = tsnet([...words, "--help"]);
      const b = tsnet(["help", ...words]);
      expect({ name, code: a.code, stderr: a.stderr }).toEqual({ name, code: 0, stderr: "" });
      expect(b).toEqual(a);
      expect(a.stdout.startsWith(`Usage:  tsnet ${name}`)).toBe(true);
      expect(a.stdout).not.toContain("\x1b"); // piped: plain text
      for (const [key, o] of Object.entries(def.options as Record<string, OptionDef>)) {
        const at = a.stdout.indexOf(`--${key}`);
        expect({ name, key, listed: at >= 0 }).toEqual({ name, key, listed: true });
        // the example follows the option's description
        expect(a.stdout.slice(at)).toContain(`e.g. ${o.example}\n`);
      }
    }
  });

  test("the whole text of tsnet ps --help", () => {
    expect(tsnet(["ps", "--help"]).stdout).toBe(`Usage:  tsnet ps [OPTIONS]

List containers

Template fields: .ID .Names .Command .Status .State .Address .Ports .Networks
.CreatedAt .Labels.

Options:
  -a, --all                Show every container, the exited ones too (the
                           default shows running ones)
                           e.g. tsnet ps -a
  -f, --filter KEY=VALUE   Only containers that match: name=REGEXP,
                           status=created|restarting|running|exited, label=KEY
                           or label=KEY=VALUE, network=NAME|ID, id=PREFIX,
                           publish=PORT[-PORT][/PROTO] (a published container
                           port), expose=PORT[-PORT][/PROTO] (an exposed or
                           published one); the same key twice matches either
                           (label filters must all match), different keys must
                           all match; a status filter looks at every container
                           (repeatable)
                           e.g. tsnet ps --filter status=exited --filter label=tier=web
      --format FORMAT      json (one JSON object per line), table, a Go template
                           such as '{{.Names}}' (functions: json, join, upper,
                           lower, printf, index...), or 'table TEMPLATE' for
                           aligned columns under a header
                           e.g. tsnet ps --format 'table {{.Names}}\\t{{.Address}}'
  -n, --last N             Only the N containers created last, whatever their
                           state
                           e.g. tsnet ps -n 3
  -l, --latest             Only the container created last, whatever its state
                           e.g. tsnet ps -lq
  -q, --quiet              Only the short ids
                           e.g. tsnet rm -f $(tsnet ps -aq)
  -h, --help               Print this help

Examples:
  tsnet ps
  tsnet ps -a --format '{{.Names}} {{.Status}}'
  tsnet ps --format json
  tsnet rm $(tsnet ps -q --filter status=exited)
`);
  });

  test("run --help lists -i, -t and --net; -h is --hostname", () => {
    const r = tsnet(["run", "--help"]);
    expect(r.stdout).toContain("  -i, --interactive ");
    expect(r.stdout).toContain("  -t, --tty ");
    expect(r.stdout).toContain("(also --net)");
    expect(r.stdout).toMatch(/\n      --help +Print this help\n/);
    expect(r.stdout).toContain("  -h, --hostname NAME ");
    expect(tsnet(["run", "-h"])).toEqual({ code: 125, stdout: "", stderr: "tsnet: option -h needs a value, e.g. tsnet run -h web01 -- hostname\n" });
  });

  test("tsnet, tsnet --help and tsnet help: the list of commands, exit 0", () => {
    const top = tsnet(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stderr).toBe("");
    for (const name of PUBLIC) expect(top.stdout).toContain(`\n  ${name} `);
    expect(top.stdout).not.toContain("_supervise");
    expect(tsnet([])).toEqual(top);
    expect(tsnet(["help"])).toEqual(top);
    expect(tsnet(["-h"])).toEqual(top);
  });

  test("colour only on a terminal, and not with NO_COLOR", () => {
    // script(1) gives tsnet a pseudo-terminal as stdout.
    const onTty = sh(["script", "-qec", `${TSNET} ps --help`, "/dev/null"], { env: { TERM: "xterm" } });
    expect(onTty.stdout).toContain("\x1b[1mUsage:\x1b[22m");
    expect(onTty.stdout).toContain("\x1b[36m-a, --all\x1b[39m");
    const noColor = sh(["script", "-qec", `${TSNET} ps --help`, "/dev/null"], { env: { TERM: "xterm", NO_COLOR: "1" } });
    expect(noColor.stdout).toContain("Usage:  tsnet ps");
    expect(noColor.stdout).not.toContain("\x1b");
    expect(noColor.stdout.replace(/\r\n/g, "\n")).toBe(tsnet(["ps", "--help"]).stdout);
  });

  test("hidden helpers are not offered", () => {
    expect(tsnet(["help", "_supervise"])).toEqual({ code: 125, stdout: "", stderr: 'tsnet: unknown command "_supervise" for tsnet: see tsnet --help\n' });
  });
});

describe("suggestions for typos: one line, exit 125", () => {
  const cases: [string[], string][] = [
    [["rum", "true"], 'tsnet: unknown command "rum" for tsnet: did you mean "run"? (see tsnet --help)\n'],
    [["help", "rum"], 'tsnet: unknown command "rum" for tsnet: did you mean "run"? (see tsnet --help)\n'],
    [["insepct", "web"], 'tsnet: unknown command "insepct" for tsnet: did you mean "inspect"? (see tsnet --help)\n'],
    [["frobnicate"], 'tsnet: unknown command "frobnicate" for tsnet: see tsnet --help\n'],
    [["run", "--nmae", "web", "--", "true"], 'tsnet: unknown option "--nmae" for tsnet run: did you mean "--name"? (see tsnet run --help)\n'],
    [["ps", "--al"], 'tsnet: unknown option "--al" for tsnet ps: did you mean "--all"? (see tsnet ps --help)\n'],
    [["run", "-name", "web", "true"], 'tsnet: unknown option "-n" in "-name" for tsnet run: did you mean "--name"? (see tsnet run --help)\n'],
    [["--verison"], 'tsnet: unknown option "--verison" for tsnet: did you mean "--version"? (see tsnet --help)\n'],
  ];
  for (const [args, stderr] of cases) {
    test(args.join(" "), () => expect(tsnet(args)).toEqual({ code: 125, stdout: "", stderr }));
  }
});

describe("Docker's option forms", () => {
  test("-dp 8080:80, -p8081:80 and --name=web: published as asked (seen in nf_tables)", () => {
    const a = runD(["-dp", "8080:80", "--name=web", "--", "sleep", "30"]);
    const b = runD(["-p8081:80", "--name=web2", "--", "sleep", "30"]);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toMatch(/^[0-9a-f]{64}$/);
    const nft = sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
    expect(nft).toContain(`tcp . 8080 comment "${a.slice(0, 12)} web tcp 8080 -> `);
    expect(nft).toContain(`tcp . 8081 comment "${b.slice(0, 12)} web2 tcp 8081 -> `);
    expect(tsnet(["ps", "--format", "{{.Names}} {{.Ports}}"]).stdout).toBe("web2 0.0.0.0:8081->80/tcp\nweb 0.0.0.0:8080->80/tcp\n");
  });

  test("-aq combined; options after the container names (rm web -f)", () => {
    const id = runD(["--name", "late", "--", "sleep", "30"]);
    expect(tsnet(["ps", "-aq"]).stdout).toBe(`${id.slice(0, 12)}\n`);
    expect(tsnet(["rm", "late", "-f"])).toEqual({ code: 0, stdout: "late\n", stderr: "" });
    expect(records().some((r) => r.id === id)).toBe(false);
  });

  test("-it, and options ending at the command's first word", () => {
    // -t: the output comes through the pty, whose line discipline turns \n into \r\n.
    expect(tsnet(["run", "-it", "--rm", "--network=none", "sh", "-c", "echo $0 $1", "-x", "--rm"])).toEqual({ code: 0, stdout: "-x --rm\r\n", stderr: "" });
  });

  test("a flag takes =false", () => {
    const r = tsnet(["run", "--rm=false", "--name", "kept", "--network", "none", "--", "true"]);
    expect(r.code).toBe(0);
    expect(records().find((x) => x.name === "kept")?.status).toBe("exited");
  });
});

describe("--format", () => {
  test("ps: {{.Names}}, {{json .}}, table with headers", async () => {
    const id = runD(["--name", "fa", "--", "sleep", "30"]);
    runD(["--name", "fb", "--network", "none", "--", "sleep", "30"]);
    expect(tsnet(["ps", "--format", "{{.Names}}"])).toEqual({ code: 0, stdout: "fb\nfa\n", stderr: "" });
    expect(tsnet(["ps", "--format", "table {{.Names}}\\t{{.Networks}}\\t{{.State}}"]).stdout).toBe(
      "NAMES     NETWORKS   STATE\nfb        none       running\nfa        bridge     running\n",
    );
    const json = tsnet(["ps", "--format", "{{json .}}"]).stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(json.map((r) => r.Names)).toEqual(["fb", "fa"]);
    expect(tsnet(["ps", "--format", "{{if eq .Networks \"bridge\"}}{{upper .Names}} {{.ID}}{{end}}"]).stdout).toBe(`\nFA ${id.slice(0, 12)}\n`);
    // json stays as it was: one object per line, the same objects (Status, "Up N seconds", may
    // have passed a second between the two calls)
    const timeless = (rows: Record<string, unknown>[]) => rows.map(({ Status, ...rest }) => ({ ...rest, Status: String(Status).replace(/\d+ seconds?/, "N seconds") }));
    expect(timeless(tsnet(["ps", "--format", "json"]).stdout.trim().split("\n").map((l) => JSON.parse(l)))).toEqual(timeless(json));
  });

  test("inspect -f: the address as ip sees it, nested fields, range, json", () => {
    runD(["--name", "fi", "-p", "8090:80", "--", "sleep", "30"]);
    const [eth0] = ipj<any[]>(["-4", "addr", "show", "eth0"], "tsnet-fi");
    const ip = eth0.addr_info[0].local;
    expect(tsnet(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "fi"])).toEqual({ code: 0, stdout: `${ip}\n`, stderr: "" });
    expect(tsnet(["inspect", "--format={{.Name}} {{.State.Running}} {{json .Config.Cmd}}", "fi"]).stdout).toBe('/fi true ["sleep","30"]\n');
    expect(tsnet(["inspect", "-f", "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{(index $b 0).HostPort}}{{end}}", "fi"]).stdout).toBe("80/tcp=8090\n");
    expect(tsnet(["inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}} {{.Nothing}}", "fi"]).stdout).toBe(`${ip} <no value>\n`);
    // known ones printed, unknown ones one line each, exit 1
    expect(tsnet(["inspect", "-f", "{{.Name}}", "fi", "nope"])).toEqual({ code: 1, stdout: "/fi\n", stderr: "tsnet: no such container: nope\n" });
  });

  test("a wrong template: one line, exit 125, nothing on stdout", () => {
    expect(tsnet(["ps", "--format", "{{.Nmaes}}"])).toEqual({
      code: 125, stdout: "",
      stderr: 'tsnet: --format of tsnet ps: at <.Nmaes>: no field "Nmaes"; did you mean "Names"? (fields: ID, Names, Command, Status, State, Address, Ports, Networks, CreatedAt, Labels)\n',
    });
    expect(tsnet(["inspect", "-f", "{{.Name", "x"])).toEqual({
      code: 125, stdout: "", stderr: 'tsnet: invalid --format template for tsnet inspect: unclosed action at column 1: a "}}" is missing\n',
    });
  });
});

describe("output discipline", () => {
  test("logs into a pipe closed early: quiet, exit 0 or 141", async () => {
    runD(["--name", "chatty", "--", "sh", "-c", "seq 1 200000 | sed 's/^/line /'; exec sleep 30"]);
    await waitFor("the log to fill", () => {
      try {
        return readFileSync(`/run/tsnet/logs/${records().find((r) => r.name === "chatty").id}-stdout.log`, "utf8").includes("line 200000\n");
      } catch {
        return false;
      }
    });
    const r = bash('"$T" logs chatty | head -1; echo "status ${PIPESTATUS[0]}" >&2');
    expect(r.stdout).toBe("line 1\n");
    expect(r.stderr).toMatch(/^status (0|141)\n$/);
  });

  test("ps, --help and --version into a closed pipe: quiet, exit 0 or 141", () => {
    runD(["--name", "p1", "--network", "none", "--", "sleep", "30"]);
    for (const args of ["ps -a", "ps --help", "--version", "inspect p1"]) {
      // `true` has exited before tsnet writes: the write meets a closed pipe.
      const r = bash(`(sleep 0.3; "$T" ${args}) | true; echo "status \${PIPESTATUS[0]}"`);
      expect({ args, ...r }).toEqual({ args, code: 0, stdout: expect.stringMatching(/^status (0|141)\n$/), stderr: "" });
    }
  });

  test("stop, kill, rm and network rm of several objects into a closed pipe act on every one of them, then exit 141", () => {
    const names = ["q1", "q2", "q3", "q4"];
    const start = () => names.forEach((n) => runD(["--name", n, "--network", "none", "--", "sleep", "60"]));
    const state = () => names.map((n) => records().find((r) => r.name === n)?.status ?? "gone");
    start();
    let r = bash(`(sleep 0.3; "$T" stop -t 0 ${names.join(" ")}) | true; echo "status \${PIPESTATUS[0]}"`);
    expect({ ...r, state: state() }).toEqual({ code: 0, stdout: "status 141\n", stderr: "", state: ["exited", "exited", "exited", "exited"] });
    r = bash(`(sleep 0.3; "$T" rm ${names.join(" ")}) | true; echo "status \${PIPESTATUS[0]}"`);
    expect({ ...r, state: state() }).toEqual({ code: 0, stdout: "status 141\n", stderr: "", state: ["gone", "gone", "gone", "gone"] });
    start();
    r = bash(`(sleep 0.3; "$T" kill ${names.join(" ")}) | true; echo "status \${PIPESTATUS[0]}"`);
    expect(r.stdout).toBe("status 141\n");
    for (const n of names) expect(tsnet(["wait", n]).stdout).toBe("137\n");
    r = bash(`(sleep 0.3; "$T" rm -f ${names.join(" ")}) | true; echo "status \${PIPESTATUS[0]}"`);
    expect({ ...r, state: state() }).toEqual({ code: 0, stdout: "status 141\n", stderr: "", state: ["gone", "gone", "gone", "gone"] });
    for (const n of ["pn1", "pn2"]) tsnet(["network", "create", n]);
    r = bash(`(sleep 0.3; "$T" network rm pn1 pn2) | true; echo "status \${PIPESTATUS[0]}"`);
    expect(r.stdout).toBe("status 141\n");
    expect(tsnet(["network", "ls", "--format", "{{.Name}}"]).stdout).not.toMatch(/^pn[12]$/m);
  });

  test("a full disk: one line, exit 125", () => {
    runD(["--name", "p2", "--network", "none", "--", "sleep", "30"]);
    for (const args of ["ps", "inspect p2", "--help"]) {
      const r = bash(`"$T" ${args} > /dev/full`);
      expect({ args, ...r }).toEqual({ args, code: 125, stdout: "", stderr: "tsnet: cannot write output: no space left on device (ENOSPC)\n" });
    }
  });

  test("a record that is not JSON: one line naming it, exit 125; the stack only with TSNET_DEBUG=1", () => {
    const bad = `/run/tsnet/containers/${"0".repeat(64)}.json`;
    tsnet(["ps"]); // makes the state directories
    writeFileSync(bad, '{"id": "truncated');
    try {
      const line = `tsnet: refusing ${bad}: not a container record of tsnet's (it is not JSON): remove it\n`;
      expect(tsnet(["ps"])).toEqual({ code: 125, stdout: "", stderr: line });
      const debug = tsnet(["ps"], { env: { TSNET_DEBUG: "1" } });
      expect(debug.code).toBe(125);
      expect(debug.stderr.startsWith(line)).toBe(true);
      expect(debug.stderr.slice(line.length)).toMatch(/^RefusedStateError: [^\n]+\n\s+at /);
    } finally {
      rmSync(bad);
    }
  });

  test("an unexpected failure is one line, exit 125; its stack only with TSNET_DEBUG=1", async () => {
    // Two records whose creation times are numbers: valid enough to be read, and then a TypeError
    // where ps sorts them (a bug this input provokes on purpose). A host of its own, so that
    // these two are all ps sees.
    const h = await NestedHost.start();
    try {
      for (const d of ["a", "b"]) {
        const id = d.repeat(64);
        const rec = JSON.stringify({ id, name: `odd${d}`, command: ["true"], created: 5, mode: "none", status: "exited", autoRemove: false });
        h.must(`mkdir -m 0700 -p /run/tsnet/containers; printf %s "$REC" > /run/tsnet/containers/${id}.json`, { REC: rec });
      }
      const r = h.tsnet(["ps", "-a"]);
      expect(r.code).toBe(125);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^tsnet: internal error: TypeError: [^\n]+ \(run with TSNET_DEBUG=1 for details\)\n$/);
      const debug = h.tsnet(["ps", "-a"], { env: { TSNET_DEBUG: "1" } });
      expect(debug.code).toBe(125);
      expect(debug.stderr).toMatch(/^tsnet: internal error: TypeError: [^\n]+\n\s+at /);
    } finally {
      await h.close();
    }
  });

  test("exec in a container whose network's owner has ended: one line, exit 1", () => {
    runD(["--name", "base", "--", "sleep", "30"]);
    runD(["--name", "side", "--network", "container:base", "--", "sleep", "30"]);
    expect(tsnet(["exec", "side", "--", "true"]).code).toBe(0);
    expect(tsnet(["stop", "-t", "0", "base"]).code).toBe(0);
    expect(tsnet(["exec", "side", "--", "true"])).toEqual({
      code: 1, stdout: "",
      stderr: "tsnet: container side shares the network of container base, which has ended: stop side and run it again with a running container\n",
    });
  });

  test("without root: one line naming the command, why, and how to run it", () => {
    const cases: [string[], string][] = [
      [["ps"], 'tsnet ps needs root (tsnet\'s records under /run/tsnet are root\'s, and it cleans up after crashed containers): run it as root, e.g. sudo tsnet ps'],
      [["stop", "web"], "tsnet stop needs root (it signals containers' commands and releases their networks): run it as root, e.g. sudo tsnet stop web"],
      [["rm", "-f", "web"], "tsnet rm needs root (it kills containers' commands and releases their networks): run it as root, e.g. sudo tsnet rm -f web"],
      [["exec", "web", "true"], "tsnet exec needs root (it enters a container's network namespace): run it as root, e.g. sudo tsnet exec web true"],
      [["logs", "web"], 'tsnet logs needs root (tsnet\'s records under /run/tsnet are root\'s, and it cleans up after crashed containers): run it as root, e.g. sudo tsnet logs web'],
      [["inspect", "web"], 'tsnet inspect needs root (tsnet\'s records under /run/tsnet are root\'s, and it cleans up after crashed containers, and it reads addresses inside namespaces): run it as root, e.g. sudo tsnet inspect web'],
      [["run", "--network", "host", "true"], "tsnet run --network host needs root (it records the container under /run/tsnet, which is root's): run it as root, e.g. sudo tsnet run --network host true"],
      // explain changes nothing, but reads what root's command would (it said "get nf_tables generation: EPERM", or
      // printed a script for rm -f of a container it could not look for).
      [["explain", "run", "--", "true"], "tsnet explain run needs root (it reads what the command would read: tsnet's records, which are root's, nf_tables and namespaces): run it as root, e.g. sudo tsnet explain run -- true"],
      [["explain", "rm", "-f", "web"], "tsnet explain rm needs root (it reads what the command would read: tsnet's records, which are root's, nf_tables and namespaces): run it as root, e.g. sudo tsnet explain rm -f web"],
      [["explain", "cni-add"], "tsnet explain cni-add needs root (it reads what the command would read: tsnet's records, which are root's, nf_tables and namespaces): run it as root, e.g. sudo tsnet explain cni-add"],
    ];
    for (const [args, line] of cases) expect(asNobody(args)).toEqual({ code: 125, stdout: "", stderr: `tsnet: ${line}\n` });
    // help, version and completion need nothing
    for (const args of [["--help"], ["ps", "--help"], ["--version"], ["completion", "bash"], ["explain", "run", "--help"], ["explain", "cni-add", "--help"]]) expect(asNobody(args).code).toBe(0);
    // A usage error is said before root is asked for, as by the commands themselves.
    expect(asNobody(["explain", "run", "--bogus"]).stderr).toBe('tsnet: unknown option "--bogus" for tsnet explain run: see tsnet explain run --help\n');
  });
});

describe("--version", () => {
  test("the version of package.json and the commit built from", () => {
    const pkg = JSON.parse(readFileSync(`${import.meta.dir}/../package.json`, "utf8"));
    const git = (args: string[]) => sh(["git", "-C", `${import.meta.dir}/..`, ...args]).stdout.trim();
    const sha = git(["rev-parse", "--short=12", "HEAD"]);
    const r = tsnet(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    // Built by npm test from this checkout; "-dirty" when tracked files had changes.
    expect(r.stdout).toMatch(new RegExp(`^tsnet version ${pkg.version.replace(/\./g, "\\.")}, build ${sha}(-dirty)?\\n$`));
    if (git(["status", "--porcelain", "--untracked-files=no"]) === "") expect(r.stdout).toBe(`tsnet version ${pkg.version}, build ${sha}\n`);
    expect(tsnet(["-v"])).toEqual(r);
    expect(tsnet(["version"])).toEqual(r);
  });
});

describe("shell completion", () => {
  // The scripts complete the command named `tsnet`: the one under test comes first in PATH.
  const inPath = `${TSNET.replace(/\/tsnet$/, "")}:${process.env.PATH}`;
  const bashComplete = (line: string) =>
    bash(`source <("$T" completion bash)
      COMP_LINE=${JSON.stringify(line)}; COMP_POINT=\${#COMP_LINE}
      read -ra COMP_WORDS <<< "$COMP_LINE"; [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
      COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
      _tsnet; printf '%s\\n' "\${COMPREPLY[@]}"`, { PATH: inPath });

  test("bash: the script sourced, COMPREPLY for partial words", () => {
    runD(["--name", "alpha", "--network", "none", "--", "sleep", "30"]);
    runD(["--name", "beta", "--network", "none", "--", "sleep", "30"]);
    const cases: [string, string][] = [
      ["tsnet r", "run\nrestart\nrm\n"],
      ["tsnet ins", "inspect\n"],
      ["tsnet ps --f", "--format\n--filter\n"],
      ["tsnet run --net", "--network\n--network-alias\n"],
      ["tsnet run --network n", "none\n"],
      ["tsnet stop ", "alpha\nbeta\n"],
      ["tsnet logs b", "beta\n"],
      ["tsnet run --network container:a", "alpha\n"],
      ["tsnet help exe", "exec\n"],
      ["tsnet help exp", "explain\n"],
      ["tsnet completion f", "fish\n"],
    ];
    for (const [line, want] of cases) expect({ line, out: bashComplete(line).stdout }).toEqual({ line, out: want });
  });

  test("fish: complete -C on the loaded script", () => {
    runD(["--name", "gamma", "--network", "none", "--", "sleep", "30"]);
    const fish = (line: string) => sh(["fish", "-c", `tsnet completion fish | source; complete -C${JSON.stringify(line)}`], { env: { PATH: inPath } }).stdout;
    expect(fish("tsnet ru")).toBe("run\tRun a command in a container: a network namespace of its own\n");
    expect(fish("tsnet exec ")).toBe("gamma\n");
    expect(fish("tsnet ps --q")).toBe("--quiet\tOnly the short ids\n");
  });

  test("zsh: the function hands _describe the candidates", () => {
    runD(["--name", "delta", "--network", "none", "--", "sleep", "30"]);
    const zsh = (words: string[]) =>
      sh(["zsh", "-c", `autoload -U compinit && compinit -u -d /tmp/tsnet-zcompdump; source <("${TSNET}" completion zsh)
        _describe() { shift 3; print -rl -- "\${(@P)1}" }; _files() { print FILES }
        words=(${words.map((w) => `'${w}'`).join(" ")}); CURRENT=${words.length}; _tsnet`]).stdout;
    expect(zsh([TSNET, "sto"])).toBe("stop:Stop running containers (SIGTERM, then SIGKILL)\n");
    expect(zsh([TSNET, "rm", ""])).toBe("delta\n");
    expect(zsh([TSNET, "run", "--network", "container"])).toBe("container\\:delta:share this container's network\n");
    expect(zsh([TSNET, "run", "ls", ""])).toBe("FILES\n");
  });
});
