// Large requests (issue 9, item 6): `run -d` hands the supervisor everything the kernel accepted
// for tsnet's own command line and environment, up to ARG_MAX, and says in one line when the
// supervisor's exec would be refused. The command's own view (its $#, its environment) is read
// back through `tsnet logs`. A nested host gives each run a supervisor started for it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { TSNET, assertThrowawayHost } from "./helpers.ts";
import { NestedHost } from "./nested-host.ts";

let h: NestedHost;
beforeAll(async () => {
  assertThrowawayHost();
  h = await NestedHost.start();
});
afterAll(async () => {
  h.tsnet(["rm", "-f", ...h.tsnet(["ps", "-aq"]).stdout.split("\n").filter(Boolean)]);
  await h.close();
});

/** The old client hung here forever: a hang fails the test after this long instead. */
const HANG_MS = 30_000;

/** The default stack limit (8 MiB: 2 MiB for arguments and environment), whatever the tests' own;
 * the supervisor a client starts inherits it. */
const DEFAULT_STACK = ["prlimit", "--stack=8388608", "--"];

/** Runs `run -d`, waits for the container to end, returns its log. */
async function detachedLog(command: string[], env?: Record<string, string>): Promise<string> {
  const r = h.run([...DEFAULT_STACK, TSNET, "run", "-d", "--", ...command], { env, timeoutMs: HANG_MS });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  const id = r.stdout.trim();
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  const deadline = Date.now() + 10_000;
  while (h.tsnet(["inspect", "-f", "{{.State.Status}}", id]).stdout !== "exited\n") {
    if (Date.now() > deadline) throw new Error("the container did not end");
    await Bun.sleep(20);
  }
  const log = h.tsnet(["logs", id]);
  expect(log.code).toBe(0);
  return log.stdout;
}

describe("run -d with a large request", () => {
  test("40,000 arguments reach the command, in order", async () => {
    const args = Array.from({ length: 40_000 }, (_, i) => `arg${i}`);
    const log = await detachedLog(["sh", "-c", 'echo "$# $1 ${20000} ${40000}"', "sh", ...args]);
    expect(log).toBe("40000 arg0 arg19999 arg39999\n");
  });

  test("a 1 MiB environment reaches the command byte for byte (characters split across reads included)", async () => {
    const env: Record<string, string> = {};
    // 16 variables of 64 KiB each (under the kernel's 128 KiB for one string), two-byte characters.
    for (let i = 0; i < 16; i++) env[`BIG${i}`] = `${String.fromCharCode(0xe9 + (i % 4))}`.repeat(32 * 1024);
    const want = createHash("sha256").update(env.BIG7!).digest("hex");
    const log = await detachedLog(["sh", "-c", 'env | grep -c "^BIG"; printf %s "$BIG15" | wc -c; printf %s "$BIG7" | sha256sum'], env);
    expect(log).toBe(`16\n65536\n${want}  -\n`);
  });

  test("arguments up to the kernel's limit (1.9 MiB with the default 8 MiB stack) reach the command", async () => {
    const chunk = "x".repeat(100_000);
    const log = await detachedLog(["sh", "-c", 'echo $#; printf %s "$*" | wc -c', "sh", ...Array(20).fill(chunk)]);
    expect(log).toBe(`20\n${20 * 100_000 + 19}\n`);
  });

  test("past the supervisor's limit: one line saying so, exit 126, and nothing left running", async () => {
    // The supervisor already runs with an 8 MiB stack (2 MiB for arguments); this client, with a
    // 16 MiB stack (4 MiB), was given 3 MiB, more than the supervisor's exec can take.
    expect(h.run([...DEFAULT_STACK, TSNET, "run", "-d", "--", "sleep", "3"]).code).toBe(0);
    // The arguments are made inside, past the tests' own limit.
    const script = `big=$(head -c 100000 /dev/zero | tr '\\0' y); set --
      for i in $(seq 30); do set -- "$@" "$big"; done
      exec "$T" run -d --name huge -- sh -c true "$@"`;
    const r = h.run(["prlimit", "--stack=16777216", "--", "sh", "-c", script], { env: { T: TSNET }, timeoutMs: HANG_MS });
    expect(r.code).toBe(126);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^tsnet: cannot run "sh": its arguments and environment take 2\.\d MiB, over the kernel's limit of 2\.0 MiB here \(E2BIG; ARG_MAX is a quarter of the stack limit, ulimit -s\)\n$/);
    // Its command never started: the container is undone, record and name included.
    expect(h.tsnet(["inspect", "huge"])).toMatchObject({ code: 1, stderr: expect.stringContaining("no such container") });
    expect(h.run(["ls", "-A", "/run/tsnet/names"]).stdout).not.toContain("huge");
    expect(h.run(["ls", "-A", "/run/netns"]).stdout).not.toContain("tsnet-huge");
  });
});
