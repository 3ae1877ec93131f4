// run's options beyond the network (issue 10, item 2): -e, --env-file, -w, -u, --label, and what
// --restart refuses. What the command sees is printed by the command itself (its environment,
// directory and ids), and its user is read from /proc, not from tsnet.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { TSNET, assertThrowawayHost, records, sh, tsnet, removeAllContainers, runDetached as runD } from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

afterEach(removeAllContainers);
afterAll(removeAllContainers);

/** A detached container's output once it has ended. */
function logsWhenDone(name: string) {
  expect(tsnet(["wait", name]).code).toBe(0);
  return tsnet(["logs", name]);
}

const fg = (args: string[], command: string[], env?: Record<string, string>) =>
  tsnet(["run", "--rm", "--network", "none", ...args, "--", ...command], { env });

/** Refused before anything is made: one line, exit 125, and no container left. */
function refused(args: string[], line: string, env?: Record<string, string>): void {
  const before = records().length;
  expect({ args, ...tsnet(args, { env }) }).toEqual({ args, code: 125, stdout: "", stderr: `tsnet: ${line}\n` });
  expect(records().length).toBe(before);
}

describe("-e and --env-file", () => {
  const show = ["sh", "-c", 'echo "$A|$B|${MISSING-unset}|$C|$KEPT"'];

  test("NAME=VALUE, a bare NAME from the caller, a bare NAME the caller lacks left out; the caller's environment passes", () => {
    const env = { B: "from the caller", KEPT: "kept" };
    const args = ["-e", "A=1", "-e", "B", "-e", "MISSING", "-e", "C=x=y"];
    expect(fg(args, show, env)).toEqual({ code: 0, stdout: "1|from the caller|unset|x=y|kept\n", stderr: "" });
    // The same for a detached container, whose environment the supervisor is given.
    runD(["--name", "envd", "--network", "none", ...args, "--", ...show], env);
    expect(logsWhenDone("envd")).toEqual({ code: 0, stdout: "1|from the caller|unset|x=y|kept\n", stderr: "" });
    // inspect shows what -e set, as Docker's Config.Env
    expect(tsnet(["inspect", "-f", "{{json .Config.Env}}", "envd"]).stdout).toBe('["A=1","B=from the caller","C=x=y"]\n');
  });

  test("--env-file in Docker's format: comments, blank lines, values as they are, a bare name, a BOM, CRLF; -e comes after", () => {
    const dir = mkdtempSync("/tmp/tsnet-env-");
    writeFileSync(`${dir}/app.env`, [
      "\uFEFF# a comment",
      "   ",
      'FROM_FILE=a b "c" ',
      "  INDENTED=yes",
      "BARE",
      "NOT_SET_ANYWHERE",
      "OVERRIDDEN=from the file",
      "CRLF=1\r",
      "",
    ].join("\n"));
    const r = fg(["--env-file", `${dir}/app.env`, "-e", "OVERRIDDEN=from -e"], [
      "sh", "-c", 'printf "[%s]\\n" "$FROM_FILE" "$INDENTED" "$BARE" "${NOT_SET_ANYWHERE-unset}" "$OVERRIDDEN" "$CRLF"',
    ], { BARE: "bare from the caller" });
    expect(r).toEqual({ code: 0, stdout: '[a b "c" ]\n[yes]\n[bare from the caller]\n[unset]\n[from -e]\n[1]\n', stderr: "" });
  });

  test("a bad -e, an unreadable or malformed --env-file: one line, exit 125, nothing made", () => {
    const dir = mkdtempSync("/tmp/tsnet-env-");
    writeFileSync(`${dir}/space.env`, "GOOD=1\nBAD NAME=2\n");
    writeFileSync(`${dir}/noname.env`, "=value\n");
    refused(["run", "--rm", "-e", "=x", "--", "true"], 'invalid -e "=x": give NAME=VALUE, or NAME to pass the caller\'s value, e.g. -e PORT=8080');
    refused(["run", "--rm", "--env-file", `${dir}/missing.env`, "--", "true"], `cannot read --env-file ${dir}/missing.env: no such file (ENOENT): give the path of a file of NAME=VALUE lines`);
    refused(["run", "--rm", "--env-file", dir, "--", "true"], `cannot read --env-file ${dir}: it is a directory (EISDIR): give the path of a file of NAME=VALUE lines`);
    refused(["run", "--rm", "--env-file", `${dir}/space.env`, "--", "true"], `invalid --env-file ${dir}/space.env, line 2: variable name "BAD NAME" contains whitespace`);
    refused(["run", "-d", "--env-file", `${dir}/noname.env`, "--", "true"], `invalid --env-file ${dir}/noname.env, line 1: no variable name before "="`);
  });
});

describe("-w", () => {
  test("the command starts in the directory given, absolute or relative to the caller's; inspect shows it", () => {
    expect(fg(["-w", "/usr/share"], ["pwd"])).toEqual({ code: 0, stdout: "/usr/share\n", stderr: "" });
    expect(sh(["bash", "-c", `cd /usr && "${TSNET}" run --rm --network none -w share -- pwd`])).toEqual({ code: 0, stdout: "/usr/share\n", stderr: "" });
    runD(["--name", "wd", "--network", "none", "-w", "/tmp", "--", "pwd"]);
    expect(logsWhenDone("wd")).toEqual({ code: 0, stdout: "/tmp\n", stderr: "" });
    expect(tsnet(["inspect", "-f", "{{.Config.WorkingDir}}", "wd"]).stdout).toBe("/tmp\n");
  });

  test("a directory that does not exist is refused: tsnet does not create it on the host", () => {
    refused(["run", "--rm", "-w", "/nonexistent", "--", "pwd"], 'invalid -w "/nonexistent": /nonexistent is not a directory (tsnet runs host commands and does not create it)');
    refused(["run", "--rm", "-w", "/etc/hostname", "--", "pwd"], 'invalid -w "/etc/hostname": /etc/hostname is not a directory (tsnet runs host commands and does not create it)');
  });
});

describe("-u", () => {
  const ids = ["sh", "-c", 'id -u; id -g; id -G; echo "$HOME ${USER-unset} ${LOGNAME-unset}"'];

  test("a name from /etc/passwd: its uid, its group and no other (not root's), its HOME, USER and LOGNAME", () => {
    expect(fg(["-u", "nobody"], ids, { USER: "root", LOGNAME: "root", HOME: "/root" })).toEqual({
      code: 0, stdout: "65534\n65534\n65534\n/nonexistent nobody nobody\n", stderr: "",
    });
    expect(fg(["-u", "daemon:adm"], ids)).toEqual({ code: 0, stdout: "1\n4\n4\n/usr/sbin daemon daemon\n", stderr: "" });
  });

  test("uid:gid by number, also without an entry in /etc/passwd (HOME /, no USER)", () => {
    expect(fg(["-u", "1234:4321"], ids, { USER: "root", LOGNAME: "root" })).toEqual({ code: 0, stdout: "1234\n4321\n4321\n/ unset unset\n", stderr: "" });
  });

  test("a detached command runs as the user, as /proc says", async () => {
    runD(["--name", "as-nobody", "--network", "none", "-u", "www-data", "--", "sleep", "30"]);
    const pid = tsnet(["inspect", "-f", "{{.State.Pid}}", "as-nobody"]).stdout.trim();
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(/^Uid:\t33\t33\t33\t33$/m);
    expect(status).toMatch(/^Gid:\t33\t33\t33\t33$/m);
    expect(status).toMatch(/^Groups:\t*\s*$/m);
    expect(tsnet(["inspect", "-f", "{{.Config.User}}", "as-nobody"]).stdout).toBe("www-data\n");
  });

  test("an unknown user or group, or a uid with no entry and no group: one line, exit 125", () => {
    refused(["run", "--rm", "-u", "nosuchuser", "--", "id"], 'invalid -u "nosuchuser": no user "nosuchuser" in /etc/passwd');
    refused(["run", "--rm", "-u", "nobody:nosuchgroup", "--", "id"], 'invalid -u "nobody:nosuchgroup": no group "nosuchgroup" in /etc/group');
    refused(["run", "--rm", "-u", "1234", "--", "id"], 'invalid -u "1234": uid 1234 has no entry in /etc/passwd, so its group is unknown: give one, e.g. -u 1234:1234');
    refused(["run", "--rm", "-u", "nobody:", "--", "id"], 'invalid -u "nobody:": give USER[:GROUP], a name or a number each, e.g. -u www-data or -u 1000:1000');
  });
});

describe("--label", () => {
  test("shown by inspect as Config.Labels (sorted, as Go prints a map) and by ps as .Labels", () => {
    runD(["--name", "lab", "--network", "none", "--label", "tier=web", "-l", "owner=ops", "--label", "empty", "--", "sleep", "30"]);
    expect(tsnet(["inspect", "-f", "{{json .Config.Labels}} {{.Config.Labels.tier}}", "lab"]).stdout).toBe('{"empty":"","owner":"ops","tier":"web"} web\n');
    expect(tsnet(["ps", "--format", "{{.Names}} {{.Labels}}"]).stdout).toBe("lab empty=,owner=ops,tier=web\n");
    refused(["run", "--rm", "--label", "=x", "--", "true"], 'invalid --label "=x": give KEY=VALUE with a key of no whitespace, e.g. --label tier=web');
  });
});

describe("--restart: what is refused", () => {
  test("without -d, with --rm, or a policy Docker does not have: one line, exit 125, nothing made", () => {
    refused(["run", "--restart", "always", "--", "true"], "--restart always needs -d: only the supervisor starts a command again (a foreground run ends with its command)");
    refused(["run", "-d", "--rm", "--restart", "on-failure", "--", "true"], "--restart on-failure and --rm conflict: a container that is removed when it ends cannot be started again");
    refused(["run", "-d", "--restart", "sometimes", "--", "true"], 'invalid --restart "sometimes": "sometimes" is not a restart policy; use no, on-failure[:N], always or unless-stopped');
    refused(["run", "-d", "--restart", "always:3", "--", "true"], 'invalid --restart "always:3": a maximum retry count is for on-failure only; use no, on-failure[:N], always or unless-stopped');
    refused(["run", "-d", "--restart", "on-failure:x", "--", "true"], 'invalid --restart "on-failure:x": "x" is not a number of retries; use no, on-failure[:N], always or unless-stopped');
  });

  test("--restart no goes with anything; inspect shows the policy", () => {
    expect(fg(["--restart", "no"], ["true"])).toEqual({ code: 0, stdout: "", stderr: "" });
    runD(["--name", "pol", "--network", "none", "--restart", "on-failure:5", "--", "sleep", "30"]);
    expect(tsnet(["inspect", "-f", "{{json .HostConfig.RestartPolicy}} {{.RestartCount}}", "pol"]).stdout).toBe('{"Name":"on-failure","MaximumRetryCount":5} 0\n');
  });
});
