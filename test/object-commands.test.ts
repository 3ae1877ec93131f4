// The object commands added by issue 10 (port, kill, ps --filter/-n/-l, rm -v), exit 1 for an
// unknown or not-running container in every object command, and their help and completion.
// Published ports are checked against nf_tables (nft) and reached with curl.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { TSNET, assertThrowawayHost, curl, records, sh, tsnet, waitFor, removeAllContainers, runDetached as runD } from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

function cleanAll(): void {
  removeAllContainers();
  tsnet(["network", "rm", "backend"]);
}
afterEach(cleanAll);
afterAll(cleanAll);

const one = (code: number, stderr: string, stdout = "") => ({ code, stdout, stderr: `tsnet: ${stderr}\n` });

describe("port", () => {
  test("every binding as the kernel holds it, Docker's lines; one port's host side; a chosen port found", async () => {
    const id = runD(["--name", "web", "-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-p", "80", "--", "python3", "-m", "http.server", "80"]);
    // The host port chosen for -p 80, read from nf_tables, not from tsnet.
    const nft = sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
    const chosen = [...nft.matchAll(new RegExp(`tcp \\. (\\d+) comment "${id.slice(0, 12)} web tcp \\d+ -> [0-9.]+:80"`, "g"))].map((m) => Number(m[1])).filter((p) => p !== 8080);
    expect(chosen.length).toBe(1);
    expect(tsnet(["port", "web"])).toEqual({ code: 0, stdout: `53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> 0.0.0.0:${chosen[0]}\n`, stderr: "" });
    expect(tsnet(["port", "web", "80"])).toEqual({ code: 0, stdout: `0.0.0.0:8080\n0.0.0.0:${chosen[0]}\n`, stderr: "" });
    expect(tsnet(["port", "web", "53/udp"])).toEqual({ code: 0, stdout: "127.0.0.1:5353\n", stderr: "" });
    // What `run -d -p 80` chose is what a script reaches.
    const only = runD(["--name", "solo", "-p", "80", "--", "python3", "-m", "http.server", "80"]);
    const hostPort = tsnet(["port", only.slice(0, 12), "80/tcp"]).stdout.trim().split(":")[1];
    expect(await waitFor("the server", () => curl(`http://127.0.0.1:${hostPort}/`).code === 0)).toBe(true);
  });

  test("a port not published, a bad port, no ports at all, and a container that is not running", () => {
    runD(["--name", "quiet", "--network", "none", "--", "sleep", "30"]);
    runD(["--name", "p1", "-p", "8081:80", "--", "sleep", "30"]);
    expect(tsnet(["port", "p1", "81"])).toEqual(one(1, "no public port 81/tcp published for p1"));
    expect(tsnet(["port", "p1", "80/udp"])).toEqual(one(1, "no public port 80/udp published for p1"));
    expect(tsnet(["port", "p1", "80/sctp"])).toEqual(one(125, 'invalid port "80/sctp": give a container port, e.g. 80 or 53/udp'));
    expect(tsnet(["port", "quiet"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(tsnet(["stop", "-t", "0", "p1"]).code).toBe(0);
    expect(tsnet(["port", "p1"])).toEqual(one(1, "container p1 is not running: it publishes no port"));
  });
});

describe("kill", () => {
  test("KILL by default; names and numbers; exit status 128+N", async () => {
    for (const [name, args, code] of [["k1", [], 137], ["k2", ["-s", "TERM"], 143], ["k3", ["-s", "sigint"], 130], ["k4", ["--signal=10"], 138]] as const) {
      runD(["--name", name, "--network", "none", "--", "sleep", "30"]);
      expect(tsnet(["kill", ...args, name])).toEqual({ code: 0, stdout: `${name}\n`, stderr: "" });
      expect(tsnet(["wait", name])).toEqual({ code, stdout: `${code}\n`, stderr: "" });
    }
  });

  test("the signal reaches every process of the container, one that left the command's session too", async () => {
    runD(["--name", "family", "--network", "none", "--", "sh", "-c",
      "setsid sh -c 'trap \"echo got USR1; exit 0\" USR1; echo ready; while :; do sleep 0.1; done' & exec sleep 30"]);
    await waitFor("ready", () => tsnet(["logs", "family"]).stdout === "ready\n");
    expect(tsnet(["kill", "-s", "USR1", "family"])).toEqual({ code: 0, stdout: "family\n", stderr: "" });
    expect(await waitFor("USR1 handled", () => tsnet(["logs", "family"]).stdout === "ready\ngot USR1\n")).toBe(true);
  });

  test("a bad signal (125), an exited or unknown container (1)", () => {
    runD(["--name", "done", "--network", "none", "--", "true"]);
    expect(tsnet(["wait", "done"]).code).toBe(0);
    expect(tsnet(["kill", "-s", "FOO", "done"])).toEqual(one(125, 'invalid --signal "FOO": give a signal name (KILL, TERM, HUP, SIGUSR1...) or a number from 1 to 64'));
    expect(tsnet(["kill", "-s", "0", "done"])).toEqual(one(125, 'invalid --signal "0": give a signal name (KILL, TERM, HUP, SIGUSR1...) or a number from 1 to 64'));
    expect(tsnet(["kill", "done", "nope"])).toEqual({ code: 1, stdout: "", stderr: "tsnet: cannot kill container done: it is not running\ntsnet: no such container: nope\n" });
  });
});

describe("ps --filter, -n, -l", () => {
  const names = (args: string[]) => tsnet(["ps", ...args, "--format", "{{.Names}}"]);

  test("name, status, label, network, id: the same key twice is either (label: both), different keys are both", async () => {
    expect(tsnet(["network", "create", "backend"]).code).toBe(0);
    const fa = runD(["--name", "fa", "--label", "tier=web", "--", "sleep", "30"]);
    runD(["--name", "fb", "--network", "none", "--label", "tier=db", "--", "sleep", "30"]);
    runD(["--name", "fc", "--network", "none", "--label", "tier=web", "--", "true"]);
    await waitFor("fc to end", () => tsnet(["inspect", "-f", "{{.State.Status}}", "fc"]).stdout === "exited\n");
    runD(["--name", "fd", "--network", "backend", "--", "sleep", "30"]);
    const ok = (stdout: string) => ({ code: 0, stdout, stderr: "" });
    expect(names(["--filter", "label=tier=web"])).toEqual(ok("fa\n"));
    expect(names(["-a", "--filter", "label=tier=web"])).toEqual(ok("fc\nfa\n"));
    expect(names(["-f", "label=tier"])).toEqual(ok("fb\nfa\n"));
    // As Docker: every label filter must match.
    expect(names(["-f", "label=tier", "-f", "label=tier=web"])).toEqual(ok("fa\n"));
    expect(names(["-a", "-f", "label=tier=web", "-f", "label=tier=db"])).toEqual(ok(""));
    // a status filter looks at exited containers without -a
    expect(names(["--filter", "status=exited"])).toEqual(ok("fc\n"));
    expect(names(["--filter", "status=exited", "--filter", "status=running"])).toEqual(ok("fd\nfc\nfb\nfa\n"));
    expect(names(["--filter", "label=tier", "--filter", "network=none"])).toEqual(ok("fb\n"));
    expect(names(["--filter", "network=backend"])).toEqual(ok("fd\n"));
    const netId = tsnet(["network", "inspect", "-f", "{{.Id}}", "backend"]).stdout.trim();
    expect(names(["--filter", `network=${netId.slice(0, 8)}`])).toEqual(ok("fd\n"));
    expect(names(["--filter", "network=bridge"])).toEqual(ok("fa\n"));
    expect(names(["--filter", "name=^f[ab]$"])).toEqual(ok("fb\nfa\n"));
    expect(names(["--filter", "name=d"])).toEqual(ok("fd\n"));
    expect(names(["--filter", `id=${fa.slice(0, 10)}`])).toEqual(ok("fa\n"));
    expect(tsnet(["ps", "-q", "--filter", "status=running", "--filter", "label=tier=db"])).toEqual(ok(`${records().find((r) => r.name === "fb").id.slice(0, 12)}\n`));
    // -n N and -l: the last created, whatever their state, filters first
    expect(names(["-n", "2"])).toEqual(ok("fd\nfc\n"));
    expect(names(["-l"])).toEqual(ok("fd\n"));
    expect(names(["-n", "1", "--filter", "label=tier=web"])).toEqual(ok("fc\n"));
  });

  test("a bad filter or -n: one line, exit 125", () => {
    expect(tsnet(["ps", "--filter", "nmae=x"])).toEqual(one(125, 'invalid --filter "nmae=x": did you mean "name"? tsnet ps filters by id, name, status, label, network, publish, expose (e.g. --filter status=exited)'));
    expect(tsnet(["ps", "--filter", "name"])).toEqual(one(125, 'invalid --filter "name": give KEY=VALUE, e.g. --filter name=web'));
    expect(tsnet(["ps", "--filter", "status=sleeping"])).toEqual(one(125, 'invalid --filter "status=sleeping": a status is one of created, restarting, running, removing, paused, exited, dead'));
    expect(tsnet(["ps", "--filter", "name=("])).toEqual(one(125, 'invalid --filter "name=(": "(" is not a regular expression'));
    expect(tsnet(["ps", "-n", "x"])).toEqual(one(125, 'invalid -n "x": give a number of containers, e.g. tsnet ps -n 3'));
  });
});

describe("rm -v", () => {
  test("accepted, as Docker's command lines have it", () => {
    runD(["--name", "vol", "--network", "none", "--", "true"]);
    expect(tsnet(["wait", "vol"]).code).toBe(0);
    expect(tsnet(["rm", "-v", "vol"])).toEqual({ code: 0, stdout: "vol\n", stderr: "" });
    runD(["--name", "vol2", "--network", "none", "--", "sleep", "30"]);
    expect(tsnet(["rm", "-fv", "vol2"])).toEqual({ code: 0, stdout: "vol2\n", stderr: "" });
    expect(records()).toEqual([]);
  });
});

describe("object commands: exit 1 for an unknown or not-running container, everywhere", () => {
  test("an unknown container", () => {
    const none = one(1, "no such container: nope");
    for (const args of [["inspect", "nope"], ["logs", "nope"], ["port", "nope"], ["top", "nope"], ["exec", "nope", "true"], ["stop", "nope"],
      ["kill", "nope"], ["restart", "nope"], ["wait", "nope"], ["rm", "nope"], ["network", "connect", "bridge", "nope"]]) {
      const want = args[0] === "inspect" ? { ...none, stdout: "[]\n" } : none;
      expect({ args, ...tsnet(args) }).toEqual({ args, ...want });
    }
  });

  test("a container that is not running", () => {
    runD(["--name", "gone", "--", "true"]);
    expect(tsnet(["wait", "gone"]).code).toBe(0);
    const cases: [string[], string][] = [
      [["top", "gone"], "container gone is not running"],
      [["exec", "gone", "true"], "container gone is not running: start a new one with tsnet run"],
      [["port", "gone"], "container gone is not running: it publishes no port"],
      [["kill", "gone"], "cannot kill container gone: it is not running"],
      [["network", "connect", "bridge", "gone"], "container gone is not running: only running containers can be connected"],
    ];
    for (const [args, line] of cases) expect({ args, ...tsnet(args) }).toEqual({ args, ...one(1, line) });
    // The ones that work on an exited container do.
    for (const args of [["inspect", "-f", "{{.State.Status}}", "gone"], ["logs", "gone"], ["stop", "gone"], ["wait", "gone"]]) {
      expect({ args, code: tsnet(args).code }).toEqual({ args, code: 0 });
    }
  });

  test("an id prefix that several containers share", () => {
    // 17 ids: two of them begin with the same hex digit.
    const ids = Array.from({ length: 17 }, () => runD(["--network", "none", "--", "sleep", "60"]));
    const digit = [..."0123456789abcdef"].find((d) => ids.filter((id) => id.startsWith(d)).length > 1)!;
    const n = ids.filter((id) => id.startsWith(digit)).length;
    const line = `"${digit}" matches ${n} containers: give more of the id or the name`;
    for (const args of [["inspect", digit], ["logs", digit], ["port", digit], ["top", digit], ["exec", digit, "true"], ["stop", digit],
      ["kill", digit], ["restart", digit], ["wait", digit], ["rm", "-f", digit], ["network", "connect", "bridge", digit]]) {
      const want = args[0] === "inspect" ? { ...one(1, line), stdout: "[]\n" } : one(1, line);
      expect({ args, ...tsnet(args) }).toEqual({ args, ...want });
    }
    // Nothing was done to any of them.
    expect(records().filter((r) => ids.includes(r.id) && r.status === "running").length).toBe(17);
  });
});

describe("help and completion cover the new commands and options", () => {
  const inPath = `${TSNET.replace(/\/tsnet$/, "")}:${process.env.PATH}`;
  const bashComplete = (line: string) =>
    sh(["bash", "-c", `source <("$T" completion bash)
      COMP_LINE=${JSON.stringify(line)}; COMP_POINT=\${#COMP_LINE}
      read -ra COMP_WORDS <<< "$COMP_LINE"; [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
      COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
      _tsnet; printf '%s\\n' "\${COMPREPLY[@]}"`], { env: { T: TSNET, PATH: inPath } }).stdout;

  test("help: usage and every option with an example", () => {
    expect(tsnet(["help", "port"]).stdout.startsWith("Usage:  tsnet port CONTAINER [PORT]\n")).toBe(true);
    expect(tsnet(["kill", "--help"]).stdout).toContain("  -s, --signal SIGNAL ");
    expect(tsnet(["logs", "--help"]).stdout).toContain("e.g. tsnet logs --since 10m web\n");
    expect(tsnet(["run", "--help"]).stdout).toContain("  -e, --env NAME=VALUE ");
    expect(tsnet(["restart", "--help"]).stdout).toContain("e.g. tsnet restart -t 2 web\n");
    expect(tsnet(["help", "wait"]).code).toBe(0);
  });

  test("bash: commands, options, their values, containers", () => {
    runD(["--name", "alpha", "--network", "none", "--", "sleep", "30"]);
    const cases: [string, string][] = [
      ["tsnet k", "kill\n"],
      ["tsnet w", "wait\n"],
      ["tsnet po", "port\n"],
      ["tsnet kill -s TT", "TTIN\nTTOU\n"],
      ["tsnet run --restart ", "no\non-failure\nalways\nunless-stopped\n"],
      ["tsnet run --en", "--env\n--env-file\n"],
      ["tsnet ps --filter s", "status=\n"],
      ["tsnet logs --t", "--tail\n--timestamps\n"],
      ["tsnet port ", "alpha\n"],
      ["tsnet restart a", "alpha\n"],
    ];
    for (const [line, want] of cases) expect({ line, out: bashComplete(line) }).toEqual({ line, out: want });
  });
});
