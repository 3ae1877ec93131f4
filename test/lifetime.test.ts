// A container is all of its processes (issue 7): it lives while any of them lives, ending it ends
// all of them, and whatever daemonizes or calls setsid is still part of it. Observed from outside
// tsnet: /proc, the cgroup's own files, curl, ip and nft.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import {
  TSNET, alive, assertThrowawayHost, managerPid, cgroupMount, cgroupParent, childrenOf, containerCgroups, curl, leases, netnsNames, nginxProcesses,
  nginxSite, parentOf, pidsByArgv, procState, records, runDetached as runD, sh, tsnet, veths, waitFor,
} from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;

function expectAllReleased(): void {
  expect(veths()).toEqual([]);
  expect(netnsNames()).toEqual([]);
  expect(leases()).toEqual([]);
  expect(ruleset()).not.toMatch(/comment "[0-9a-f]{12} /);
  expect(containerCgroups()).toEqual([]);
}

function psJson(): any[] {
  return tsnet(["ps", "-a", "--format", "json"]).stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]);
}

/** A foreground `tsnet run` started by the test, its output collected. */
function foreground(args: string[]) {
  const proc = Bun.spawn([TSNET, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const out = new Response(proc.stdout).text();
  const err = new Response(proc.stderr).text();
  return { proc, out, err };
}

afterEach(() => {
  const ids = tsnet(["ps", "-aq"]).stdout.trim().split("\n").filter(Boolean);
  if (ids.length) tsnet(["rm", "-f", ...ids]);
});

describe("a daemonizing nginx (no `daemon off`) with -p", () => {
  test("foreground: tsnet stays while nginx serves, ps shows it up, TERM ends master and workers and closes the port", async () => {
    const site = nginxSite("daemonized, foreground\n", { daemon: true });
    const { proc } = foreground(["--rm", "--name", "dfg", "-p", "8190:80", "--", ...site.command]);
    expect(await waitFor("nginx via the published port", () => curl("http://127.0.0.1:8190/").stdout)).toBe("daemonized, foreground\n");
    const rec = records().find((r) => r.name === "dfg");
    // The command itself (the nginx that forked the master) has exited; tsnet has not.
    await waitFor("the first nginx to exit", () => !alive(rec.pid));
    expect(proc.exitCode).toBeNull();
    const { master, workers } = nginxProcesses(site.dir);
    expect(workers.length).toBe(1);
    // The master is in the container: its cgroup, its namespace, and re-parented to tsnet.
    expect(readFileSync(`/proc/${master}/cgroup`, "utf8")).toContain(`/${rec.id}\n`);
    expect(sh(["readlink", `/proc/${master}/ns/net`]).stdout).toBe(sh(["ip", "netns", "exec", "tsnet-dfg", "readlink", "/proc/self/ns/net"]).stdout);
    expect(parentOf(master)).toBe(proc.pid);
    expect(psJson().find((c) => c.Names === "dfg")).toMatchObject({ State: "running", Status: expect.stringMatching(/^Up /) });
    await Bun.sleep(300);
    expect(curl("http://127.0.0.1:8190/").stdout).toBe("daemonized, foreground\n");
    proc.kill("SIGTERM");
    // The command exited 0 long ago; the TERM tsnet forwarded ended the rest.
    expect(await proc.exited).toBe(143);
    for (const pid of [master, ...workers]) expect(alive(pid)).toBe(false);
    expect(curl("http://127.0.0.1:8190/", undefined, 1).code).not.toBe(0);
    expectAllReleased();
  });

  test("run -d: it serves, ps shows it up, stop ends master and workers and closes the port", async () => {
    const site = nginxSite("daemonized, detached\n", { daemon: true });
    const id = runD(["--name", "dbg", "-p", "8191:80", "--", ...site.command]);
    expect(await waitFor("nginx via the published port", () => curl("http://127.0.0.1:8191/").stdout)).toBe("daemonized, detached\n");
    const rec = records().find((r) => r.id === id);
    await waitFor("the first nginx to exit", () => !alive(rec.pid));
    await Bun.sleep(300);
    expect(psJson().find((c) => c.Names === "dbg")).toMatchObject({ State: "running", Status: expect.stringMatching(/^Up /) });
    expect(curl("http://127.0.0.1:8191/").stdout).toBe("daemonized, detached\n");
    const { master, workers } = nginxProcesses(site.dir);
    expect(workers.length).toBe(1);
    expect(parentOf(master)).toBe(managerPid("dbg"));
    expect(tsnet(["stop", "dbg"]).code).toBe(0);
    for (const pid of [master, ...workers]) expect(alive(pid)).toBe(false);
    expect(curl("http://127.0.0.1:8191/", undefined, 1).code).not.toBe(0);
    expect(records().find((r) => r.id === id)).toMatchObject({ status: "exited", exitCode: 143 });
    expectAllReleased();
  });
});

/** The processes running ARGV, once there are N and every one is a child of PARENT. */
function adopted(argv: string[], parent: number, n: number): number[] | false {
  const pids = pidsByArgv(argv);
  try {
    return pids.length === n && pids.every((p) => parentOf(p) === parent) && pids;
  } catch {
    return false; // one exited while we looked
  }
}

describe("whatever the command leaves running belongs to the container", () => {
  test("sh -c 'sleep N &': the foreground run lasts as long as the sleep, which runs in the container, then exits with sh's status", async () => {
    const t0 = Date.now();
    const { proc } = foreground(["--rm", "--name", "bgsleep", "--", "sh", "-c", "sleep 1.5 & exit 4"]);
    // Looked at once sh has exited and tsnet has adopted its sleep, not after a fixed time (which
    // a loaded machine outlasts before the sleep has even started); adopted by init, it never is.
    const [sleeper] = await waitFor("the sleep to be adopted by tsnet", () => adopted(["sleep", "1.5"], proc.pid, 1));
    expect(proc.exitCode).toBeNull();
    expect(sleeper).toBeGreaterThan(0);
    expect(parentOf(sleeper!)).toBe(proc.pid); // adopted by tsnet, not by init
    expect(sh(["readlink", `/proc/${sleeper}/ns/net`]).stdout).toBe(sh(["ip", "netns", "exec", "tsnet-bgsleep", "readlink", "/proc/self/ns/net"]).stdout);
    expect(await proc.exited).toBe(4);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expectAllReleased();
  });

  test("setsid -f: a process in a session of its own keeps a foreground run up", async () => {
    const t0 = Date.now();
    const { proc } = foreground(["--rm", "--name", "setsidfg", "--", "setsid", "-f", "sleep", "1.2"]);
    // setsid has exited once its sleep is tsnet's: the run is still up then.
    await waitFor("the sleep to be adopted by tsnet", () => adopted(["sleep", "1.2"], proc.pid, 1));
    expect(proc.exitCode).toBeNull();
    expect(pidsByArgv(["sleep", "1.2"]).length).toBe(1);
    expect(await proc.exited).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1200);
    expectAllReleased();
  });

  test("setsid -f with run -d: ps shows it up; stop sends TERM to every process, then kills what ignores it", async () => {
    // One process leaves the session and ignores TERM; stop must still end it after -t.
    runD(["--name", "setsidd", "--", "sh", "-c", "setsid -f sh -c \"trap '' TERM; exec sleep 61\"; exec sleep 62"]);
    await waitFor("both sleeps", () => pidsByArgv(["sleep", "61"]).length === 1 && pidsByArgv(["sleep", "62"]).length === 1);
    const [stubborn] = pidsByArgv(["sleep", "61"]);
    expect(sessionOf(stubborn!)).toBe(stubborn!); // it leads a session of its own
    expect(psJson().find((c) => c.Names === "setsidd")?.State).toBe("running");
    const t0 = Date.now();
    expect(tsnet(["stop", "-t", "1", "setsidd"]).code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(pidsByArgv(["sleep", "61"])).toEqual([]);
    expect(pidsByArgv(["sleep", "62"])).toEqual([]);
    // The first process (sleep 62) died of the TERM; the SIGKILL stop sent after -t ended the rest.
    expect(records().find((r) => r.name === "setsidd")).toMatchObject({ status: "exited", exitCode: 137 });
    expectAllReleased();
  });

  test("rm -f ends a container's daemons too", async () => {
    runD(["--name", "rmf", "--", "sh", "-c", "setsid -f sleep 63; sleep 64 & exit 0"]);
    await waitFor("both sleeps", () => pidsByArgv(["sleep", "63"]).length === 1 && pidsByArgv(["sleep", "64"]).length === 1);
    expect(tsnet(["rm", "-f", "rmf"]).code).toBe(0);
    expect(pidsByArgv(["sleep", "63"])).toEqual([]);
    expect(pidsByArgv(["sleep", "64"])).toEqual([]);
    expect(records().find((r) => r.name === "rmf")).toBeUndefined();
    expectAllReleased();
  });

  test("run -d: the container ends when its last process does, with the first process's status", async () => {
    const id = runD(["--name", "lastone", "--", "sh", "-c", "sleep 1 & exit 5"]);
    await Bun.sleep(500);
    expect(records().find((r) => r.id === id)?.status).toBe("running");
    expect(psJson().find((c) => c.Names === "lastone")?.State).toBe("running");
    await waitFor("the container to end", () => records().find((r) => r.id === id)?.status === "exited", 5000);
    expect(records().find((r) => r.id === id)?.exitCode).toBe(5);
    expectAllReleased();
  });

  test("the foreground run adopts the container's orphans and reaps them as they exit", async () => {
    const { proc } = foreground(["--rm", "--name", "reaper", "--", "sh", "-c", "for i in 1 2 3; do sh -c 'sleep 0.6 &'; done; exec sleep 1.6"]);
    // Orphans once each `sh -c` has exited (before, their parent is that sh).
    const orphans = await waitFor("three orphans adopted by tsnet", () => adopted(["sleep", "0.6"], proc.pid, 3));
    for (const pid of orphans) expect(parentOf(pid)).toBe(proc.pid);
    await waitFor("the orphans to exit", () => orphans.every((p) => procState(p) !== "S"));
    await Bun.sleep(200);
    expect(childrenOf(proc.pid).filter((p) => procState(p) === "Z")).toEqual([]);
    expect(orphans.map(procState)).toEqual([undefined, undefined, undefined]);
    expect(await proc.exited).toBe(0);
  });
});

describe("crashes: nothing a container started survives its manager", () => {
  test("kill -9 of a foreground tsnet while its daemon runs, then any command: the daemon is gone", async () => {
    const site = nginxSite("crash\n", { daemon: true });
    const { proc } = foreground(["--rm", "--name", "crashfg", "-p", "8192:80", "--", ...site.command]);
    await waitFor("nginx", () => curl("http://127.0.0.1:8192/").stdout);
    const { master, workers } = nginxProcesses(site.dir);
    proc.kill("SIGKILL");
    await proc.exited;
    expect(alive(master)).toBe(true); // nothing has cleaned up yet
    tsnet(["ps"]);
    for (const pid of [master, ...workers]) expect(alive(pid)).toBe(false);
    expect(records().find((r) => r.name === "crashfg")).toBeUndefined();
    expectAllReleased();
  });

  test("kill -9 of the supervisor while a container's daemon runs, then any command: the daemon serves on under a new supervisor, and stop ends it", async () => {
    const site = nginxSite("crash -d\n", { daemon: true });
    runD(["--name", "crashd", "-p", "8193:80", "--", ...site.command]);
    await waitFor("nginx", () => curl("http://127.0.0.1:8193/").stdout);
    const { master, workers } = nginxProcesses(site.dir);
    const sup = managerPid("crashd");
    process.kill(sup, "SIGKILL");
    // Dead with all its threads: its leader shows Z while the others still exit, and its open
    // files (its manager lock among them) are closed only when the last one has.
    await waitFor("supervisor dead", () => procState(sup) === undefined || (procState(sup) === "Z" && readdirSync(`/proc/${sup}/task`).length === 1));
    tsnet(["ps"]);
    // Its first process exited long ago: the namespace was found through the daemon.
    for (const pid of [master, ...workers]) expect(alive(pid)).toBe(true);
    expect(records().find((r) => r.name === "crashd")).toMatchObject({ status: "running" });
    expect(alive(managerPid("crashd"))).toBe(true);
    expect(curl("http://127.0.0.1:8193/").stdout).toBe("crash -d\n");
    expect(tsnet(["stop", "crashd"]).code).toBe(0);
    for (const pid of [master, ...workers]) expect(alive(pid)).toBe(false);
    expect(records().find((r) => r.name === "crashd")).toMatchObject({ status: "exited", exitCode: 143 });
    expectAllReleased();
  });

});

describe("inspect and top", () => {
  test("inspect shows the cgroup and every pid; Pid is the first process while it lives, then the oldest that remains", async () => {
    const id = runD(["--name", "insp7", "--", "sh", "-c", "sleep 65 & sleep 66 & exec sleep 1"]);
    await waitFor("three processes", () => pidsByArgv(["sleep", "65"]).length && pidsByArgv(["sleep", "66"]).length);
    const [c] = JSON.parse(tsnet(["inspect", "insp7"]).stdout);
    const cgroup = `${cgroupParent()}/${id}`;
    expect(c.State.Cgroup).toBe(cgroup);
    const procs = readFileSync(`${cgroup}/cgroup.procs`, "utf8").trim().split("\n").map(Number).sort((a, b) => a - b);
    expect(c.State.Pids).toEqual(procs);
    expect(procs.length).toBe(3);
    const first = records().find((r) => r.id === id).pid;
    expect(c.State.Pid).toBe(first);
    for (const pid of procs) expect(readFileSync(`/proc/${pid}/cgroup`, "utf8")).toContain(`0::/${process.env.TSNET_CGROUP_PARENT}/${id}\n`);
    await waitFor("the first process to exit", () => !alive(first));
    const [after] = JSON.parse(tsnet(["inspect", "insp7"]).stdout);
    expect(after.State).toMatchObject({ Running: true, Status: "running", Pid: pidsByArgv(["sleep", "65"])[0] });
    expect(after.State.Pids.length).toBe(2);
  });

  test("top lists every process of the container: pid, user, time, command", async () => {
    const site = nginxSite("top\n", { daemon: true });
    runD(["--name", "topme", "--", ...site.command]);
    await waitFor("nginx", () => existsSync(`${site.dir}/nginx.pid`) && nginxProcesses(site.dir).workers.length === 1);
    const { master, workers } = nginxProcesses(site.dir);
    const r = tsnet(["top", "topme"]);
    expect(r.code).toBe(0);
    const [head, ...rows] = r.stdout.trim().split("\n");
    expect(head).toMatch(/^PID\s+USER\s+TIME\s+COMMAND$/);
    const parsed = rows.map((l) => l.match(/^(\d+)\s+(\S+)\s+(\d\d:\d\d:\d\d)\s+(.*)$/)!.slice(1));
    expect(parsed.map((p) => Number(p[0])).sort()).toEqual([master, ...workers].sort());
    expect(parsed.find((p) => Number(p[0]) === master)).toEqual([String(master), "root", "00:00:00", expect.stringMatching(/^nginx: master process nginx -c /)]);
    expect(parsed.find((p) => Number(p[0]) === workers[0])![3]).toBe("nginx: worker process");
    expect(tsnet(["top", "nosuch"]).code).toBe(1);
  });
});

describe("where there is no cgroup v2", () => {
  test("a one-line warning, and the container is its first process's group, killed when that ends", () => {
    const t0 = Date.now();
    // The hierarchy is unmounted in a mount namespace of the test's own, as on a host without it.
    const r = sh([
      "unshare", "--mount", "--propagation", "private", "--", "sh", "-c", 'umount -l "$0" && exec "$@"', cgroupMount(),
      TSNET, "run", "--rm", "--name", "nocg", "--", "sh", "-c", "sleep 70 & sleep 0.3; grep -c cgroup2 /proc/self/mountinfo; echo done",
    ]);
    expect(r.stdout).toBe("0\ndone\n");
    expect(r.code).toBe(0);
    expect(r.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/^tsnet: warning: no cgroup v2 hierarchy is mounted: tracking the command by its process group, /),
    ]);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(pidsByArgv(["sleep", "70"])).toEqual([]); // ended with its group
    expectAllReleased();
  });

  test("TSNET_NO_CGROUP=1 asks for the same without a warning (the benchmark's reference)", () => {
    const r = tsnet(["run", "--rm", "--", "cat", "/proc/self/cgroup"], { env: { TSNET_NO_CGROUP: "1" } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    // The caller's own cgroup (the throwaway host's init), not one of tsnet's.
    const own = readFileSync("/proc/self/cgroup", "utf8").split("\n").find((l) => l.startsWith("0::"))!;
    expect(r.stdout).toContain(`${own}\n`);
    const inCgroup = tsnet(["run", "--rm", "--", "cat", "/proc/self/cgroup"]);
    expect(inCgroup.stdout).toMatch(new RegExp(`^0::/${process.env.TSNET_CGROUP_PARENT}/[0-9a-f]{64}$`, "m"));
  });
});
