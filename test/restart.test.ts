// Restarts (issue 10, items 2 and 3): --restart policies under the supervisor, with Docker's
// backoff, in the same container (namespace, address, MAC, cgroup, published port); a stop that
// no restart undoes; tsnet restart for running, waiting, exited and foreground containers; wait.
// What a run saw is printed by the command itself; ports are reached with curl, namespaces and
// rules read with stat, ip and nft.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { TSNET, assertThrowawayHost, curl, netnsNames, records, sh, tsnet, waitFor, removeAllContainers, runDetached as runD } from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

afterEach(removeAllContainers);
afterAll(removeAllContainers);

const field = (name: string, template: string) => tsnet(["inspect", "-f", template, name]).stdout.trim();
const status = (name: string) => field(name, "{{.State.Status}}");
const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;

/** What each run of a container sees of its own network and cgroup, printed by itself. */
const SELF = 'readlink /proc/self/ns/net; ip -o -4 addr show dev eth0 | awk "{print \\$4}"; ip -o link show dev eth0 | grep -o "link/ether [0-9a-f:]*"; cat /proc/self/cgroup';

describe("restart policies", () => {
  test("on-failure:2: started twice more in the same container (namespace, address, MAC, cgroup, port), then it stays exited", async () => {
    runD(["--name", "flaky", "-p", "8090:80", "--restart", "on-failure:2", "--", "sh", "-c", `${SELF}; sleep 0.3; exit 3`]);
    const inode = sh(["stat", "-L", "-c", "%i", "/run/netns/tsnet-flaky"]).stdout;
    const element = /tcp \. 8090 comment "[0-9a-f]{12} flaky tcp 8090 -> [0-9.]+:80"/;
    // While it restarts, its port stays published and its namespace stays the same.
    await waitFor("a restart", () => field("flaky", "{{.RestartCount}}") === "1");
    expect(ruleset()).toMatch(element);
    expect(sh(["stat", "-L", "-c", "%i", "/run/netns/tsnet-flaky"]).stdout).toBe(inode);
    await waitFor("the end", () => status("flaky") === "exited");
    expect(field("flaky", "{{.RestartCount}} {{.State.ExitCode}} {{.State.Restarting}}")).toBe("2 3 false");
    // Three runs, each printing the same: one namespace, address, MAC and cgroup for all.
    const log = tsnet(["logs", "flaky"]).stdout.trim().split("\n");
    const perRun = log.length / 3;
    expect(Number.isInteger(perRun) && perRun >= 4).toBe(true);
    const [first, second, third] = [0, 1, 2].map((i) => log.slice(i * perRun, (i + 1) * perRun).join("\n"));
    expect({ second, third }).toEqual({ second: first, third: first });
    expect(first).toMatch(/^net:\[\d+\]\n10\.77\.\d+\.\d+\/16\nlink\/ether 02:74:/);
    // Exited for good: everything released.
    expect(netnsNames()).not.toContain("tsnet-flaky");
    expect(ruleset()).not.toMatch(element);
  });

  test("a published port answers again after each restart (always)", async () => {
    const dir = mkdtempSync("/tmp/tsnet-restart-");
    // Serves one request, saying which run it is, and exits.
    const serveOnce = `import socket, os
n = int(open("${dir}/n").read()) + 1 if os.path.exists("${dir}/n") else 1
open("${dir}/n", "w").write(str(n))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 80)); s.listen()
c, _ = s.accept(); c.recv(1000); c.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\nrun %d\\n" % n); c.close()`;
    runD(["--name", "once", "-p", "8091:80", "--restart", "always", "--", "python3", "-c", serveOnce]);
    const address = field("once", "{{.NetworkSettings.IPAddress}}");
    for (const n of [1, 2, 3]) expect(await waitFor(`run ${n}`, () => curl("http://127.0.0.1:8091/").stdout)).toBe(`run ${n}\n`);
    expect(field("once", "{{.NetworkSettings.IPAddress}}")).toBe(address);
    expect(Number(field("once", "{{.RestartCount}}"))).toBeGreaterThanOrEqual(2);
  });

  test("Docker's backoff: 100 ms, doubling; a stop while it waits ends it at once, and nothing starts it again", async () => {
    runD(["--name", "crashy", "--network", "none", "--restart", "always", "--", "sh", "-c", "date +%s%N; exit 1"]);
    // Delays 100, 200, 400, 800, 1600 ms: the sixth wait is 3.2 s.
    await waitFor("six restarts", () => Number(field("crashy", "{{.RestartCount}}")) >= 6, 20_000);
    const starts = tsnet(["logs", "crashy"]).stdout.trim().split("\n").map((ns) => Number(BigInt(ns) / 1_000_000n));
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    for (const [i, want] of [100, 200, 400, 800, 1600].entries()) expect({ i, gap: gaps[i]! >= want }).toEqual({ i, gap: true });
    await waitFor("waiting to restart", () => status("crashy") === "restarting");
    expect(tsnet(["ps", "--format", "{{.Status}}"]).stdout).toMatch(/^Restarting \(1\) \d+ seconds? ago\n$/);
    const t0 = Date.now();
    expect(tsnet(["stop", "crashy"])).toEqual({ code: 0, stdout: "crashy\n", stderr: "" });
    // The supervisor was told: it did not sit out the rest of its delay.
    expect(Date.now() - t0).toBeLessThan(2000);
    const count = field("crashy", "{{.RestartCount}}");
    await Bun.sleep(1000);
    expect(field("crashy", "{{.State.Status}} {{.RestartCount}}")).toBe(`exited ${count}`);
  });

  test("a run of 10 s or more starts the backoff again at 100 ms", async () => {
    const dir = mkdtempSync("/tmp/tsnet-backoff-");
    // Runs 1-5 fail at once (delays 100 ... 1600 ms); run 6 lasts 10.5 s; run 7 comes 100 ms
    // after it, not 3.2 s.
    const script = `n=$(($(cat ${dir}/n 2>/dev/null || echo 0) + 1)); echo $n > ${dir}/n
      echo "start $n $(date +%s%N)"; [ $n -eq 6 ] && sleep 10.5; echo "end $n $(date +%s%N)"; exit 1`;
    runD(["--name", "resets", "--network", "none", "--restart", "on-failure:6", "--", "sh", "-c", script]);
    await waitFor("the end", () => status("resets") === "exited", 40_000);
    const at = (what: string) => Number(BigInt(/(\d+)$/.exec(tsnet(["logs", "resets"]).stdout.split("\n").find((l) => l.startsWith(what))!)![1]!) / 1_000_000n);
    expect(at("end 6 ") - at("start 6 ")).toBeGreaterThanOrEqual(10_000);
    expect(at("start 7 ") - at("end 6 ")).toBeLessThan(1500);
    expect(at("start 6 ") - at("end 5 ")).toBeGreaterThanOrEqual(1600);
  }, 60_000);

  test("stop, rm -f and kill (KILL or TERM) are not undone; kill -s HUP leaves the policy in place", async () => {
    runD(["--name", "stays", "--network", "none", "--restart", "always", "--", "sleep", "30"]);
    expect(tsnet(["stop", "-t", "1", "stays"])).toEqual({ code: 0, stdout: "stays\n", stderr: "" });
    runD(["--name", "killed", "--network", "none", "--restart", "unless-stopped", "--", "sleep", "30"]);
    expect(tsnet(["kill", "killed"])).toEqual({ code: 0, stdout: "killed\n", stderr: "" });
    runD(["--name", "termed", "--network", "none", "--restart", "always", "--", "sleep", "30"]);
    expect(tsnet(["kill", "-s", "TERM", "termed"])).toEqual({ code: 0, stdout: "termed\n", stderr: "" });
    runD(["--name", "hupped", "--network", "none", "--restart", "always", "--", "sleep", "30"]);
    const pid = field("hupped", "{{.State.Pid}}");
    expect(tsnet(["kill", "-s", "HUP", "hupped"])).toEqual({ code: 0, stdout: "hupped\n", stderr: "" });
    await waitFor("hupped to run again", () => field("hupped", "{{.State.Status}} {{.RestartCount}}") === "running 1" && field("hupped", "{{.State.Pid}}") !== pid);
    await Bun.sleep(500);
    expect(tsnet(["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Status}}"]).stdout).toMatch(
      /^hupped running Up \d+ seconds?\ntermed exited Exited \(143\) .*\nkilled exited Exited \(137\) .*\nstays exited Exited \(143\) .*\n$/,
    );
    expect(field("stays", "{{.RestartCount}}")).toBe("0");
    // A container waiting to restart goes with rm -f.
    runD(["--name", "looping", "--network", "none", "--restart", "always", "--", "false"]);
    await waitFor("looping to wait", () => status("looping") === "restarting");
    expect(tsnet(["rm", "-f", "looping"])).toEqual({ code: 0, stdout: "looping\n", stderr: "" });
    expect(records().some((r) => r.name === "looping")).toBe(false);
  });
});

describe("tsnet restart", () => {
  test("a running detached container: TERM, then its command again in the same container", async () => {
    runD(["--name", "web", "-p", "8092:80", "--", "sh", "-c", `echo start; ${SELF}; exec sleep 30`]);
    await waitFor("the first run's output", () => tsnet(["logs", "web"]).stdout.split("\n").length > 4);
    const before = field("web", "{{.State.Pid}} {{.NetworkSettings.IPAddress}} {{.NetworkSettings.MacAddress}}").split(" ");
    expect(tsnet(["restart", "-t", "1", "web"])).toEqual({ code: 0, stdout: "web\n", stderr: "" });
    const after = field("web", "{{.State.Status}} {{.State.Pid}} {{.NetworkSettings.IPAddress}} {{.NetworkSettings.MacAddress}} {{.RestartCount}}").split(" ");
    expect(after[0]).toBe("running");
    expect(after[1]).not.toBe(before[0]);
    expect(after.slice(2)).toEqual([before[1]!, before[2]!, "0"]);
    expect(tsnet(["port", "web", "80"]).stdout).toBe("0.0.0.0:8092\n");
    const log = await waitFor("the second run's output", () => {
      const l = tsnet(["logs", "web"]).stdout.split("start\n");
      return l.length === 3 && l;
    });
    expect(log[2]).toBe(log[1]);
  });

  test("the KILL after -t seconds is for the run that is ending, not for the one its manager started meanwhile", async () => {
    // The run ends 0.5 s after its TERM (the shell's own echo marks it: restart's TERM also reaches
    // what the trap forks at once, so a second sleep covers the first); the test holds the
    // container's record lock from then until
    // after restart's -t 1 has passed, so the manager (to start the command again) and restart (to
    // KILL) both wait for it, and either may get it first. Whichever does, the container runs on.
    const id = runD(["--name", "late", "--network", "none", "--", "sh", "-c", "trap 'echo >/tmp/late-term; sleep 0.5 || sleep 0.5; exit 0' TERM; echo run; while :; do sleep 0.1; done"]);
    const lockFile = `/run/tsnet/locks/container-${id.slice(0, 12)}.lock`;
    const runs = () => tsnet(["logs", "late"]).stdout.split("\n").filter((l) => l === "run").length;
    for (let round = 0; round < 6; round++) {
      // Its trap is set (it says "run" after): a TERM before it would end the run at once.
      await waitFor("the run to be under way", () => runs() === round + 1, 5000);
      sh(["rm", "-f", "/tmp/late-term"]);
      const before = field("late", "{{.State.StartedAt}}");
      const restart = Bun.spawn([TSNET, "restart", "-t", "1", "late"], { stdout: "pipe", stderr: "pipe" });
      await waitFor("the run's TERM", () => sh(["test", "-e", "/tmp/late-term"]).code === 0, 5000);
      const held = Bun.spawn(["flock", lockFile, "sleep", "1.5"]);
      expect(await held.exited).toBe(0);
      expect(await restart.exited).toBe(0);
      expect(await new Response(restart.stderr).text()).toBe("");
      await Bun.sleep(300);
      expect({ round, status: status("late") }).toEqual({ round, status: "running" });
      expect(field("late", "{{.State.StartedAt}}")).not.toBe(before);
    }
  });

  test("a command that ignores TERM is killed after -t seconds and started again", () => {
    runD(["--name", "stubborn", "--network", "none", "--", "sh", "-c", "trap '' TERM; echo run; while :; do sleep 0.1; done"]);
    const t0 = Date.now();
    expect(tsnet(["restart", "-t", "1", "stubborn"])).toEqual({ code: 0, stdout: "stubborn\n", stderr: "" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(status("stubborn")).toBe("running");
  });

  test("an exited detached container runs again, with the same id, name, creation time, options and log", async () => {
    const id = runD(["--name", "again", "-p", "8093:80", "-e", "WHO=again", "--label", "k=v", "--", "sh", "-c", 'echo "hello $WHO"; exec sleep 30']);
    await waitFor("output", () => tsnet(["logs", "again"]).stdout === "hello again\n");
    const created = field("again", "{{.Created}}");
    const started = field("again", "{{.State.StartedAt}}");
    expect(tsnet(["stop", "again"]).code).toBe(0);
    expect(tsnet(["restart", "again"])).toEqual({ code: 0, stdout: "again\n", stderr: "" });
    expect(field("again", "{{.Id}} {{.State.Status}} {{.Config.Labels.k}}")).toBe(`${id} running v`);
    // As Docker: Created stays, only State.StartedAt is new.
    expect(field("again", "{{.Created}}")).toBe(created);
    expect(field("again", "{{.State.StartedAt}}")).not.toBe(started);
    expect(tsnet(["port", "again"]).stdout).toBe("80/tcp -> 0.0.0.0:8093\n");
    expect(await waitFor("output", () => tsnet(["logs", "again"]).stdout === "hello again\nhello again\n")).toBe(true);
  });

  test("a foreground container starts again in place: its tsnet run goes on, in the same terminal", async () => {
    const proc = Bun.spawn([TSNET, "run", "--rm", "--name", "fg", "--network", "none", "--", "sh", "-c", "echo run; exec sleep 30"], { stdio: ["ignore", "pipe", "pipe"] });
    await waitFor("fg to run", () => status("fg") === "running");
    expect(tsnet(["restart", "-t", "1", "fg"])).toEqual({ code: 0, stdout: "fg\n", stderr: "" });
    expect(status("fg")).toBe("running");
    expect(tsnet(["stop", "fg"])).toEqual({ code: 0, stdout: "fg\n", stderr: "" });
    expect(await proc.exited).toBe(143);
    expect(await new Response(proc.stdout).text()).toBe("run\nrun\n");
    expect(await new Response(proc.stderr).text()).toBe("");
  });

  test("an exited foreground container, or an unknown one: one line, exit 1", () => {
    expect(tsnet(["run", "--name", "fgx", "--network", "none", "--", "true"]).code).toBe(0);
    expect(tsnet(["restart", "fgx", "nope"])).toEqual({
      code: 1, stdout: "",
      stderr: "tsnet: container fgx ran in the foreground and has ended: start it again with tsnet run\ntsnet: no such container: nope\n",
    });
  });
});

describe("tsnet wait", () => {
  test("each exit status in order; the last one is tsnet's; kept for -d --rm too", async () => {
    runD(["--name", "w3", "--network", "none", "--", "sh", "-c", "sleep 0.3; exit 3"]);
    runD(["--name", "w5", "--network", "none", "--", "sh", "-c", "sleep 0.5; exit 5"]);
    expect(tsnet(["wait", "w3", "w5"])).toEqual({ code: 5, stdout: "3\n5\n", stderr: "" });
    // already exited: at once
    expect(tsnet(["wait", "w5", "w3"])).toEqual({ code: 3, stdout: "5\n3\n", stderr: "" });
    runD(["--rm", "--name", "w7", "--network", "none", "--", "sh", "-c", "sleep 0.3; exit 7"]);
    expect(tsnet(["wait", "w7"])).toEqual({ code: 7, stdout: "7\n", stderr: "" });
    expect(records().some((r) => r.name === "w7")).toBe(false);
  });

  test("a foreground container, and an unknown one among others (exit 1)", async () => {
    const proc = Bun.spawn([TSNET, "run", "--name", "fgw", "--network", "none", "--", "sh", "-c", "sleep 0.5; exit 4"], { stdio: ["ignore", "ignore", "ignore"] });
    await waitFor("fgw to run", () => status("fgw") === "running");
    expect(tsnet(["wait", "fgw", "nope"])).toEqual({ code: 1, stdout: "4\n", stderr: "tsnet: no such container: nope\n" });
    expect(await proc.exited).toBe(4);
  });
});
