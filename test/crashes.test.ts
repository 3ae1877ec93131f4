// Crash points and races, tried the way an attacker's probe tried them: kill -9 at every step of
// setup and teardown (TSNET_CRASH_AT), then any command; run racing rm -f; rm -f racing rm -f;
// runs racing for one port; a namespace tsnet did not make. Observed with ip, /proc and the
// files under /run, not through tsnet's own view.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import {
  TSNET, assertThrowawayHost, containerCgroups, leases, netnsNames, pidsByArgv, procState, records, sh, tsnet, veths, waitFor,
} from "./helpers.ts";

/**
 * Supervisors that are not gone with all their threads: a killed process's leader shows Z while
 * its other threads still exit, and its files (its manager lock) close only with the last one.
 */
function supervisorsLeft(): number[] {
  return readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
    try {
      if (procState(p) === "Z") return readdirSync(`/proc/${p}/task`).length > 1;
      return readFileSync(`/proc/${p}/cmdline`, "utf8") === `${TSNET}\0_supervise\0`;
    } catch {
      return false;
    }
  });
}

beforeAll(() => assertThrowawayHost());

afterEach(() => {
  const ids = tsnet(["ps", "-aq"]).stdout.trim().split("\n").filter(Boolean);
  if (ids.length) tsnet(["rm", "-f", ...ids]);
});

/** Everything a container can hold, as the kernel and the file system show it. */
function held() {
  const dir = "/run/tsnet/containers";
  return {
    veths: veths(),
    netns: netnsNames(),
    leases: leases(),
    names: existsSync("/run/tsnet/names") ? readdirSync("/run/tsnet/names") : [],
    cgroups: containerCgroups(),
    temporaries: existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".tmp")) : [],
    ports: sh(["nft", "list", "map", "inet", "tsnet", "ports"]).stdout.includes("comment"),
  };
}
const NOTHING = { veths: [], netns: [], leases: [], names: [], cgroups: [], temporaries: [], ports: false };

const SUPERVISOR_LOG = "/run/tsnet/supervisor.log";
const SUPERVISOR_SOCKET = "/run/tsnet/supervisor.sock";

describe("kill -9 at every step, then any command", () => {
  // Setup, in order, then teardown. after-spawn: the command runs but its pid is not recorded yet.
  const points = [
    "after-name", "tmp-write", "after-cgroup", "after-lease", "after-netns", "after-veth", "after-publish", "after-spawn",
    "after-start", "teardown-after-unpublish", "teardown-after-netns",
  ];
  for (const point of points) {
    test(`foreground run killed at ${point}: nothing runs, nothing is reserved, no temporary file stays`, () => {
      // Until the command has started it is a long sleep; teardown points need it to end.
      const command = point.startsWith("teardown") ? ["true"] : ["sh", "-c", "exec sleep 41 >/dev/null 2>&1"];
      const r = tsnet(["run", "--rm", "--name", "victim", "-p", "8401:80", "--", ...command], { env: { TSNET_CRASH_AT: point } });
      expect(r.code).toBe(137);
      expect(tsnet(["ps"]).code).toBe(0);
      expect(pidsByArgv(["sleep", "41"])).toEqual([]);
      expect(held()).toEqual(NOTHING);
      expect(records()).toEqual([]);
      // The name and the port are free again.
      const again = tsnet(["run", "--rm", "--name", "victim", "-p", "8401:80", "--", "true"]);
      expect(again.stderr).toBe("");
      expect(again.code).toBe(0);
    });
  }

  // Until the record says the command started, the container is released; from then on its
  // processes live on and the next command has a new supervisor adopt it (test/adopt.test.ts).
  for (const point of ["after-name", "after-netns", "after-spawn", "after-start"]) {
    const adopted = point === "after-start";
    test(`the supervisor killed at ${point}: the next command ${adopted ? "has its running container adopted" : "releases its container"}`, async () => {
      // The supervisor is started by this run -d and inherits its environment: wait until the one
      // an earlier test used has gone (it leaves 2 s after its last container).
      await waitFor("no supervisor", () => pidsByArgv([TSNET, "_supervise"]).length === 0, 10_000);
      const r = tsnet(["run", "-d", "--name", "dvictim", "-p", "8402:80", "--", "sleep", "42"], { env: { TSNET_CRASH_AT: point } });
      // The client sends its request again to a new supervisor (it chose the container's id, so
      // nothing is made twice). Each supervisor it starts inherits the crash point: before the
      // start every one dies there, and run -d fails; after it, the next one adopts the running
      // container and answers for it.
      if (adopted) expect({ code: r.code, id: r.stdout.trim().length, stderr: r.stderr }).toEqual({ code: 0, id: 64, stderr: expect.any(String) });
      else expect(r.code).not.toBe(0);
      if (!adopted) await waitFor("the supervisor to be gone", () => supervisorsLeft().length === 0 || undefined);
      expect(tsnet(["ps", "-a"]).code).toBe(0);
      if (adopted) {
        // Running, managed by a new supervisor; removed as any container is.
        expect(pidsByArgv(["sleep", "42"]).length).toBe(1);
        expect(records().map((x) => x.status)).toEqual(["running"]);
        expect(supervisorsLeft().length).toBe(1);
        expect(tsnet(["rm", "-f", "dvictim"]).code).toBe(0);
      } else {
        expect(pidsByArgv(["sleep", "42"])).toEqual([]);
        // As in Docker, an exited container keeps its record and its name until tsnet rm.
        expect(records().filter((x) => x.status !== "exited")).toEqual([]);
        tsnet(["rm", "dvictim"]);
      }
      expect(pidsByArgv(["sleep", "42"])).toEqual([]);
      expect(held()).toEqual(NOTHING);
      const again = tsnet(["run", "-d", "--rm", "--name", "dvictim", "-p", "8402:80", "--", "true"]);
      // On a failure, the supervisors' log is shown beside it: what they did with the request.
      const said = again.code === 0 ? "" : existsSync(SUPERVISOR_LOG) ? readFileSync(SUPERVISOR_LOG, "utf8") : "(no supervisor log)";
      expect({ code: again.code, stderr: again.stderr, said }).toEqual({ code: 0, stderr: "", said: "" });
    });
  }
});

describe("only what this run made is undone", () => {
  test("a namespace of the same name made by someone else is refused and left as it was", () => {
    expect(sh(["ip", "netns", "add", "tsnet-web"]).code).toBe(0);
    try {
      const inode = sh(["stat", "-L", "-c", "%i", "/run/netns/tsnet-web"]).stdout;
      const r = tsnet(["run", "--rm", "--name", "web", "--", "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/^tsnet: create namespace \/run\/netns\/tsnet-web: EEXIST .*not this container's/);
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(sh(["ip", "netns", "list"]).stdout).toContain("tsnet-web");
      expect(sh(["stat", "-L", "-c", "%i", "/run/netns/tsnet-web"]).stdout).toBe(inode);
      expect(sh(["ip", "netns", "exec", "tsnet-web", "true"]).code).toBe(0);
      expect(leases()).toEqual([]);
      expect(records()).toEqual([]);
    } finally {
      sh(["ip", "netns", "del", "tsnet-web"]);
    }
  });

  test("a host link with the name a veth would take is refused and left as it was", () => {
    tsnet(["network", "create", "second"]);
    try {
      const id = tsnet(["run", "-d", "--name", "one", "--", "sleep", "30"]).stdout.trim();
      // The name `network connect` gives the host end of the container's eth1.
      const taken = `veth${id.slice(0, 7)}-1`;
      expect(sh(["ip", "link", "add", taken, "type", "veth", "peer", "name", "mine0"]).code).toBe(0);
      const r = tsnet(["network", "connect", "second", "one"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("EEXIST");
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(sh(["ip", "link", "show", taken]).code).toBe(0);
      expect(sh(["ip", "link", "show", "mine0"]).code).toBe(0);
      // The container is as it was: eth0 only, its lease on the second network released.
      expect(sh(["ip", "-n", "tsnet-one", "-br", "link"]).stdout).not.toContain("eth1");
      sh(["ip", "link", "del", taken]);
    } finally {
      tsnet(["rm", "-f", "one"]);
      tsnet(["network", "rm", "second"]);
    }
    expect(leases()).toEqual([]);
  });
});

describe("races", () => {
  test("rm -f racing run -d, 100 times: rm -f never reports a container removed that then runs", async () => {
    let removed = 0;
    let missed = 0;
    for (let i = 0; i < 100; i++) {
      const run = Bun.spawn([TSNET, "run", "-d", "--name", "y", "--", "sleep", "43"], { stdout: "pipe", stderr: "pipe" });
      if (i % 3) await Bun.sleep(i % 7);
      const rm = Bun.spawn([TSNET, "rm", "-f", "y"], { stdout: "pipe", stderr: "pipe" });
      const [rmCode, rmOut, rmErr] = [await rm.exited, await new Response(rm.stdout).text(), await new Response(rm.stderr).text()];
      await run.exited;
      const alive = records().find((r) => r.name === "y" && r.status === "running");
      expect(rmCode).toBe(0);
      expect(rmErr).toBe("");
      if (rmOut === "y\n") {
        removed++;
        // It said it removed y: y does not run, not now and not a moment later.
        expect(alive).toBeUndefined();
        await Bun.sleep(5);
        expect(records().find((r) => r.name === "y")).toBeUndefined();
        expect(pidsByArgv(["sleep", "43"])).toEqual([]);
      } else {
        // rm -f found no container y (the run had not reserved the name yet): it says so by
        // printing nothing, and the run may go on.
        missed++;
        expect(rmOut).toBe("");
        tsnet(["rm", "-f", "y"]);
      }
    }
    expect(removed + missed).toBe(100);
    expect(removed).toBeGreaterThan(0);
    expect(held()).toEqual(NOTHING);
  }, 120_000);

  test("10 parallel rm -f of one container all succeed", async () => {
    for (let round = 0; round < 5; round++) {
      tsnet(["run", "-d", "--name", "z", "--", "sleep", "44"]);
      const rms = Array.from({ length: 10 }, () => Bun.spawn([TSNET, "rm", "-f", "z"], { stdout: "pipe", stderr: "pipe" }));
      const results = await Promise.all(rms.map(async (p) => ({ code: await p.exited, out: await new Response(p.stdout).text(), err: await new Response(p.stderr).text() })));
      expect(results.map((r) => [r.code, r.err])).toEqual(Array.from({ length: 10 }, () => [0, ""]));
      // Those that found it print its name; one of them removed it.
      expect(results.filter((r) => r.out === "z\n").length).toBeGreaterThan(0);
      expect(results.every((r) => r.out === "z\n" || r.out === "")).toBe(true);
      expect(records().find((r) => r.name === "z")).toBeUndefined();
      expect(pidsByArgv(["sleep", "44"])).toEqual([]);
    }
    expect(held()).toEqual(NOTHING);
  }, 60_000);

  test("40 runs racing for one host port, 3 rounds: one wins, every loser names the container that has it", async () => {
    for (const port of [8403, 8405, 8407]) {
      const runs = Array.from({ length: 40 }, (_, i) =>
        Bun.spawn([TSNET, "run", "-d", "--rm", "--name", `racer${port}-${i}`, "-p", `${port}:80`, "--", "sleep", "45"], { stdout: "pipe", stderr: "pipe" }),
      );
      const results = await Promise.all(runs.map(async (p) => ({ code: await p.exited, err: await new Response(p.stderr).text() })));
      expect(results.filter((r) => r.code === 0).length).toBe(1);
      const winner = records().find((r) => r.status === "running" && r.name.startsWith(`racer${port}-`))!;
      for (const l of results.filter((r) => r.code !== 0)) {
        expect(l.err).toBe(`tsnet: host port ${port}/tcp is already in use by container "${winner.name}" (${winner.id.slice(0, 12)}, 0.0.0.0:${port}->80/tcp): publish another host port, e.g. -p ${port + 1}:80\n`);
      }
    }
  }, 120_000);
});

describe("no helper outlives tsnet", () => {
  test("after a bridge run, nothing tsnet started is left, as a process or as a zombie for someone to reap", () => {
    // A parent that is a subreaper and never reaps: anything tsnet left behind would become its
    // child, alive or a zombie, as it would under a container's init or a test runner.
    const py = `import ctypes, glob, subprocess, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
p = subprocess.Popen([${JSON.stringify(TSNET)}, "run", "--rm", "--", "true"])
p.wait()
time.sleep(0.3)
kids = [c for f in glob.glob("/proc/self/task/*/children") for c in open(f).read().split()]
print(p.returncode, kids)`;
    const r = sh(["python3", "-c", py]);
    expect(r.stdout.trim()).toBe("0 []");
  });
});

describe("a supervisor found as it dies", () => {
  // A killed supervisor closes its descriptors one by one: the connection it was asked on can
  // close while its listening socket still takes the next connection (the client's check that one
  // listens) and refuses the one after. A stand-in plays exactly that: it takes the request and
  // closes it, then accepts nothing more with a backlog of one (listen(0)), so the check's
  // connection is queued and the next is refused (EAGAIN).
  test("run -d starts a new supervisor and is answered", async () => {
    await waitFor("no supervisor", () => supervisorsLeft().length === 0, 10_000);
    const dying = Bun.spawn(["python3", "-c", `
import os, socket, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
if os.path.lexists(path): os.unlink(path)
os.umask(0o077)
s = socket.socket(socket.AF_UNIX); s.bind(path); s.listen(0)
print("listening", flush=True)
c, _ = s.accept(); c.recv(1 << 20); c.close()
print("took the request", flush=True)
sys.stdin.read()
`, SUPERVISOR_SOCKET], { stdin: "pipe", stdout: "pipe", stderr: "inherit" });
    // Its lines, whole, as they come.
    const said = (async function* () {
      let text = "";
      for await (const chunk of dying.stdout) {
        text += new TextDecoder().decode(chunk);
        for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n")) {
          yield text.slice(0, nl);
          text = text.slice(nl + 1);
        }
      }
    })();
    try {
      expect((await said.next()).value).toBe("listening");
      const r = tsnet(["run", "-d", "--name", "latecomer", "--", "sleep", "43"]);
      expect({ code: r.code, id: r.stdout.trim().length, stderr: r.stderr }).toEqual({ code: 0, id: 64, stderr: "" });
      expect((await said.next()).value).toBe("took the request");
      expect(pidsByArgv(["sleep", "43"]).length).toBe(1);
      expect(tsnet(["rm", "-f", "latecomer"]).code).toBe(0);
    } finally {
      dying.stdin.end();
      await dying.exited;
    }
  });
});
