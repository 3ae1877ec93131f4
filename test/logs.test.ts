// A detached container's log (issue 10, items 3 and 4): the command's stdout and stderr stay two
// streams (printed on tsnet's stdout and stderr), in the order they were written, with times
// (-t, --since), --tail, -f across a restart; -d --rm leaves no file behind.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { assertThrowawayHost, records, sh, TSNET, tsnet, waitFor, removeAllContainers, runDetached } from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

afterEach(removeAllContainers);
afterAll(removeAllContainers);

const runD = (args: string[]) => runDetached(["--network", "none", ...args]);

function ended(name: string): void {
  expect(tsnet(["wait", name]).code).toBeLessThan(125);
}

/** Written a tenth of a second apart: each write is seen on its own. */
const TALK = ["sh", "-c", "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; sleep 0.1; echo err2 >&2; sleep 0.1; printf 'no newline'"];
const bash = (script: string) => sh(["bash", "-c", script], { env: { T: TSNET } });

describe("logs", () => {
  test("the command's stdout on stdout and its stderr on stderr; together, in the order written", () => {
    runD(["--name", "talk", "--", ...TALK]);
    ended("talk");
    expect(tsnet(["logs", "talk"])).toEqual({ code: 0, stdout: "out1\nout2\nno newline", stderr: "err1\nerr2\n" });
    expect(bash('"$T" logs talk 2>&1')).toEqual({ code: 0, stdout: "out1\nerr1\nout2\nerr2\nno newline", stderr: "" });
    expect(bash('"$T" logs talk 2>/dev/null')).toEqual({ code: 0, stdout: "out1\nout2\nno newline", stderr: "" });
  });

  test("-t: RFC 3339 UTC with nanoseconds, when each line was written, in order", () => {
    const t0 = Date.now();
    runD(["--name", "timed", "--", ...TALK]);
    ended("timed");
    const t1 = Date.now();
    const r = bash('"$T" logs -t timed 2>&1');
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines.map((l) => l.slice(31))).toEqual(["out1", "err1", "out2", "err2", "no newline"]);
    const times = lines.map((l) => {
      expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z /);
      return Date.parse(l.slice(0, 23) + "Z");
    });
    for (const [i, t] of times.entries()) {
      expect(t).toBeGreaterThanOrEqual(t0 - 1);
      expect(t).toBeLessThanOrEqual(t1);
      if (i) expect(t - times[i - 1]!).toBeGreaterThanOrEqual(90); // 0.1 s apart, each seen on its own
    }
  });

  test("--since a time, a duration, Unix seconds; --tail N across both streams", () => {
    runD(["--name", "slow", "--", "sh", "-c", "echo early; echo early-err >&2; sleep 1.2; echo late; echo late-err >&2"]);
    ended("slow");
    const stamped = bash('"$T" logs -t slow 2>&1').stdout.trim().split("\n");
    const lateAt = stamped.find((l) => l.endsWith(" late"))!.slice(0, 30);
    expect(tsnet(["logs", "--since", lateAt, "slow"])).toEqual({ code: 0, stdout: "late\n", stderr: "late-err\n" });
    const unix = (Date.parse(lateAt.slice(0, 23) + "Z") / 1000 - 0.5).toFixed(3);
    expect(tsnet(["logs", "--since", unix, "slow"])).toEqual({ code: 0, stdout: "late\n", stderr: "late-err\n" });
    expect(tsnet(["logs", "--since", "10m", "slow"])).toEqual({ code: 0, stdout: "early\nlate\n", stderr: "early-err\nlate-err\n" });
    expect(tsnet(["logs", "--since", "2099-01-01", "slow"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(bash('"$T" logs --tail 3 slow 2>&1').stdout).toBe("early-err\nlate\nlate-err\n");
    expect(tsnet(["logs", "-n", "1", "slow"])).toEqual({ code: 0, stdout: "", stderr: "late-err\n" });
    expect(tsnet(["logs", "--tail", "0", "slow"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(tsnet(["logs", "--tail", "all", "slow"]).stdout).toBe("early\nlate\n");
  });

  test("a bad --since or --tail: one line, exit 125", () => {
    expect(tsnet(["logs", "--since", "yesterday", "x"])).toEqual({
      code: 125, stdout: "",
      stderr: 'tsnet: invalid --since "yesterday": give a time (2006-01-02T15:04:05Z, 2006-01-02), Unix seconds (1136214245) or a duration before now (10m, 1h30m)\n',
    });
    expect(tsnet(["logs", "--tail", "-3", "x"])).toEqual({ code: 125, stdout: "", stderr: 'tsnet: invalid --tail "-3": give a number of lines, or all\n' });
  });

  test("-f follows across a restart until the container has ended, with --tail", async () => {
    // The first run ends only once the follower has printed its tail (a gate file): the restart
    // then happens while it follows, however slow the machine (a fixed 0.3 s run was over, and
    // the second one too, before a loaded machine had started the follower).
    const gate = `${mkdtempSync("/tmp/tsnet-logs-")}/go`;
    runD(["--name", "twice", "--restart", "on-failure:1", "--", "sh", "-c", `echo run; echo err >&2; until [ -e ${gate} ]; do sleep 0.05; done; exit 1`]);
    await waitFor("the first run", () => {
      const r = tsnet(["logs", "twice"]);
      return r.stdout === "run\n" && r.stderr === "err\n";
    });
    const follower = Bun.spawn([TSNET, "logs", "-f", "--tail", "1", "twice"], { stdout: "pipe", stderr: "pipe" });
    const stdout = new Response(follower.stdout).text();
    const reader = follower.stderr.getReader();
    let stderr = "";
    const decoder = new TextDecoder();
    while (stderr !== "err\n") {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += decoder.decode(value, { stream: true });
    }
    writeFileSync(gate, "");
    for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += decoder.decode(r.value, { stream: true });
    expect({ code: await follower.exited, stdout: await stdout, stderr }).toEqual({ code: 0, stdout: "run\n", stderr: "err\nerr\n" });
    rmSync(gate.slice(0, -"/go".length), { recursive: true, force: true });
  });

  test("-d --rm leaves no file behind: no log, no record", async () => {
    const id = runD(["--rm", "--", "sh", "-c", "echo out; echo err >&2"]);
    await waitFor("the container to go", () => !records().some((r) => r.id === id));
    const left = ["/run/tsnet/logs", "/run/tsnet/containers"].flatMap((d) => (existsSync(d) ? readdirSync(d) : []).filter((f) => f.startsWith(id)));
    expect(left).toEqual([]);
  });

  test("rm removes the log with the container", () => {
    const id = runD(["--name", "kept", "--", "echo", "hi"]);
    ended("kept");
    expect(readdirSync("/run/tsnet/logs").filter((f) => f.startsWith(id))).toEqual([`${id}-stderr.log`, `${id}-stdout.log`]);
    expect(tsnet(["rm", "kept"]).code).toBe(0);
    expect(readdirSync("/run/tsnet/logs").filter((f) => f.startsWith(id))).toEqual([]);
  });

  test("a foreground container has no log: one line, exit 1", () => {
    expect(tsnet(["run", "--name", "fg", "--network", "none", "--", "true"]).code).toBe(0);
    expect(tsnet(["logs", "fg"])).toEqual({ code: 1, stdout: "", stderr: "tsnet: container fg ran in the foreground: its output went to its terminal, not to a log\n" });
  });
});
