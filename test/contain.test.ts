// Fault containment (issue 17): in a process that manages running containers (the supervisor, a
// foreground run once its command runs), an error nobody caught is logged with its stack and
// counted, never the end of the process and of every container it manages. Faults are injected
// with TSNET_FAULT_AT (src/errors/contain.ts) where no real one is at hand; malformed requests on
// the supervisor's socket are sent as a local root process would.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { alive, assertThrowawayHost, curl, records, removeAllContainers, tsnet } from "./helpers.ts";

const SOCKET = "/run/tsnet/supervisor.sock";
const LOG = "/run/tsnet/supervisor.log";

function supervisorPid(): number {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (argv[1] === "_supervise") return Number(d);
    } catch {}
  }
  return 0;
}

async function served(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (curl(`http://127.0.0.1:${port}/`).code === 0) return true;
    await Bun.sleep(50);
  }
  return false;
}

/** One request on the supervisor's socket, as raw bytes; resolves to the reply line. */
function ask(bytes: string): Promise<string> {
  return new Promise((resolve) => {
    let got = "";
    Bun.connect({
      unix: SOCKET,
      socket: {
        open(s) {
          s.write(bytes);
        },
        data(_s, chunk) {
          got += chunk.toString();
        },
        close() {
          resolve(got);
        },
        error() {
          resolve(got);
        },
      },
    }).catch(() => resolve(got));
    setTimeout(() => resolve(got), 5000);
  });
}

beforeAll(async () => {
  assertThrowawayHost();
  // The faults are injected through the supervisor's environment: it must be one these tests
  // start. A supervisor left idle by an earlier file exits within its idle time (2 s).
  removeAllContainers();
  for (let i = 0; i < 200 && supervisorPid(); i++) await Bun.sleep(50);
  if (supervisorPid()) throw new Error("an earlier supervisor is still running: the injected faults would not reach it");
});
afterAll(() => removeAllContainers());

describe("the supervisor contains faults", () => {
  const ports = [18181, 18182, 18183];

  test("an uncaught error at each container's start: logged with its stack, counted; the supervisor and every container go on", async () => {
    for (const [i, port] of ports.entries()) {
      const r = tsnet(["run", "-d", "--name", `contained${i}`, "-p", `${port}:80`, "--", "python3", "-m", "http.server", "-b", "0.0.0.0", "80"], {
        env: { TSNET_FAULT_AT: "supervisor-started-container" },
      });
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    }
    const pid = supervisorPid();
    expect(pid).toBeGreaterThan(0);
    for (const port of ports) expect(await served(port)).toBe(true);
    const log = readFileSync(LOG, "utf8");
    const lines = log.split("\n").filter((l) => l.includes("internal error in the supervisor, contained"));
    expect(lines.length).toBe(ports.length);
    expect(lines.at(-1)).toContain(`(${ports.length} so far): injected fault at supervisor-started-container`);
    expect(log).toMatch(/\n {2}Error: injected fault at supervisor-started-container\n\s+at /);
    expect(alive(pid)).toBe(true);
    expect(tsnet(["ps", "-q"]).stdout.trim().split("\n").length).toBe(ports.length);
  });

  test("malformed requests on its socket get an answer each; the supervisor and its containers go on", async () => {
    const pid = supervisorPid();
    expect(pid).toBeGreaterThan(0);
    const before = records().length;
    const garbage = [
      "not json\n",
      "null\n",
      "[]\n",
      '{"op":"run"}\n',
      '{"op":"run","opts":null}\n',
      '{"op":"run","opts":{"command":5,"publish":"x"}}\n',
      '{"op":"run","opts":{"mode":"none","command":["true"],"rm":false,"publish":[{"proto":"sctp"}]},"env":{},"cwd":"/"}\n',
      '{"op":"run","opts":{"mode":"none","command":[1],"rm":false,"publish":[]},"env":{},"cwd":"/"}\n',
      '{"op":"wait","id":{"toString":1}}\n',
      '{"op":"wake","id":null}\n',
      '{"op":"explode"}\n',
      `${"x".repeat(100_000)}\n`,
    ];
    for (const g of garbage) {
      const reply = await ask(g);
      expect({ request: g.slice(0, 60), replyEnds: reply.endsWith("\n") }).toEqual({ request: g.slice(0, 60), replyEnds: true });
      expect(JSON.parse(reply)).toHaveProperty("ok");
    }
    expect(alive(pid)).toBe(true);
    for (const port of ports) expect(await served(port)).toBe(true);
    // Nothing was made of them: no record (one tsnet never writes would make every later
    // command refuse the state directory).
    expect(records().length).toBe(before);
    expect(tsnet(["ps", "-a"]).code).toBe(0);
  });
});

describe("a foreground run contains faults once its command runs", () => {
  test("an uncaught error while the command runs: the command's own status, one line on stderr", () => {
    const r = tsnet(["run", "--rm", "--", "sh", "-c", "sleep 0.3; exit 3"], { env: { TSNET_FAULT_AT: "manager-started-container" } });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe("tsnet: internal error in the container's manager, contained (1 so far): injected fault at manager-started-container\n");
  });
});
