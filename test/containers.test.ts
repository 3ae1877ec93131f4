// Containers that outlive the command line: run -d, ps, inspect, exec, logs, stop, rm, the
// supervisor, crash recovery and concurrency. Observed with ip, nft, curl and /proc.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import {
  TSNET, assertThrowawayHost, managerPid, containerCgroups, curl, ipj, leases, netnsNames, nginxSite, pidsByArgv, records, sh, tsnet, veths, waitFor,
} from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

const site = nginxSite("detached nginx\n");
const ruleset = () => sh(["nft", "list", "table", "inet", "tsnet"]).stdout;

function runD(args: string[], env?: Record<string, string>): string {
  const r = tsnet(["run", "-d", ...args], { env });
  if (r.code !== 0) throw new Error(`run -d failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** This throwaway host's supervisor: others on the machine (other sandboxes) are not ours to judge or kill. */

function expectAllReleased(): void {
  expect(veths()).toEqual([]);
  expect(netnsNames()).toEqual([]);
  expect(leases()).toEqual([]);
  expect(ruleset()).not.toMatch(/comment "[0-9a-f]{12} /);
  expect(containerCgroups()).toEqual([]);
}

afterEach(() => {
  // Whatever a test left running is removed, so the next one starts clean.
  const ids = tsnet(["ps", "-aq"]).stdout.trim().split("\n").filter(Boolean);
  if (ids.length) tsnet(["rm", "-f", ...ids]);
});

describe("run -d", () => {
  test("prints only the full id, returns while the command runs, and its output goes to the log", async () => {
    const out = runD(["--name", "bg", "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 30"]);
    expect(out).toMatch(/^[0-9a-f]{64}\n$/);
    const id = out.trim();
    const rec = records().find((r) => r.id === id);
    expect(rec).toMatchObject({ name: "bg", status: "running" });
    // Any unique prefix names it.
    expect(tsnet(["inspect", id.slice(0, 6)]).code).toBe(0);
    // The command's stdout on stdout, its stderr on stderr.
    const logs = await waitFor("logs", () => {
      const r = tsnet(["logs", "bg"]);
      return r.stderr.includes("to-stderr") && r;
    });
    expect(logs).toEqual({ code: 0, stdout: "to-stdout\n", stderr: "to-stderr\n" });
  });

  test("a generated name when none is given, and a name in use is refused with 125", () => {
    const id = runD(["--", "sleep", "30"]).trim();
    const name = records().find((r) => r.id === id).name;
    expect(name).toMatch(/^[a-z]+_[a-z]+/);
    const again = tsnet(["run", "-d", "--name", name, "--", "true"]);
    expect(again.code).toBe(125);
    expect(again.stdout).toBe("");
    expect(again.stderr).toContain(`"${name}" is already in use`);
  });

  test("a server with a published port, reached from the host; released at once when it ends", async () => {
    runD(["--name", "web", "-p", "8080:80", "--", ...site.command]);
    expect(await waitFor("nginx", () => curl("http://127.0.0.1:8080/").stdout)).toBe("detached nginx\n");
    expect(tsnet(["stop", "web"]).stdout).toBe("web\n");
    expectAllReleased();
    const rec = records().find((r) => r.name === "web");
    expect(rec.status).toBe("exited");
    // The same host port is free again.
    runD(["--rm", "--name", "web2", "-p", "8080:80", "--", ...site.command]);
    expect(await waitFor("nginx", () => curl("http://127.0.0.1:8080/").stdout)).toBe("detached nginx\n");
  });

  test("--rm forgets the container as soon as its command ends", async () => {
    const id = runD(["--rm", "--", "sh", "-c", "exit 4"]).trim();
    await waitFor("record gone", () => !records().some((r) => r.id === id));
    expectAllReleased();
  });
});

describe("ps", () => {
  test("table, -q, --format json, and -a with the exit code", async () => {
    const id = runD(["--name", "lister", "-p", "8085:80", "--", "sleep", "30"]).trim();
    const done = runD(["--name", "finished", "--", "sh", "-c", "exit 3"]).trim();
    await waitFor("exit", () => records().find((r) => r.id === done)?.status === "exited");
    const table = tsnet(["ps"]).stdout.split("\n");
    expect(table[0]).toMatch(/^CONTAINER ID\s+NAME\s+COMMAND\s+STATUS\s+ADDRESS\s+PORTS$/);
    const line = table.find((l) => l.startsWith(id.slice(0, 12)))!;
    expect(line).toMatch(/lister\s+"sleep 30"\s+Up .*10\.77\.0\.\d+\s+0\.0\.0\.0:8085->80\/tcp/);
    expect(tsnet(["ps"]).stdout).not.toContain("finished");
    expect(tsnet(["ps", "-q"]).stdout).toBe(`${id.slice(0, 12)}\n`);
    const all = tsnet(["ps", "-a", "--format", "json"]).stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(all.find((r) => r.Names === "finished")).toMatchObject({ State: "exited", Status: expect.stringMatching(/^Exited \(3\)/) });
    expect(all.find((r) => r.Names === "lister")).toMatchObject({ State: "running", Ports: "0.0.0.0:8085->80/tcp" });
  });
});

describe("inspect", () => {
  test("Docker-shaped, with the kernel's values", () => {
    const id = runD(["--name", "insp", "-p", "8086:80", "-p", "127.0.0.1:8087:81/udp", "--", "sleep", "30"]).trim();
    const r = tsnet(["inspect", "insp"]);
    expect(r.code).toBe(0);
    const [c] = JSON.parse(r.stdout);
    expect(c.Id).toBe(id);
    expect(c.Name).toBe("/insp");
    expect(c.Config.Cmd).toEqual(["sleep", "30"]);
    expect(c.State).toMatchObject({ Status: "running", Running: true, ExitCode: 0 });
    // Pid is the command's, as /proc knows it.
    expect(readFileSync(`/proc/${c.State.Pid}/cmdline`, "utf8")).toBe("sleep\x0030\x00");
    const ns = c.NetworkSettings;
    expect(ns.SandboxKey).toBe("/run/netns/tsnet-insp");
    // Compared with what ip sees in that namespace and on the bridge.
    const [eth0] = ipj<any[]>(["addr", "show", "eth0"], "tsnet-insp");
    const v4 = eth0.addr_info.find((a: any) => a.family === "inet");
    expect(ns.IPAddress).toBe(v4.local);
    expect(ns.IPPrefixLen).toBe(v4.prefixlen);
    expect(ns.MacAddress).toBe(eth0.address);
    expect(ns.Gateway).toBe(ipj<any[]>(["-4", "addr", "show", "tsnet0"])[0].addr_info[0].local);
    expect(ns.Ports).toEqual({
      "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8086" }],
      "81/udp": [{ HostIp: "127.0.0.1", HostPort: "8087" }],
    });
    expect(ns.Networks.bridge.IPAddress).toBe(v4.local);
    // The namespace is the one the command lives in.
    expect(sh(["readlink", `/proc/${c.State.Pid}/ns/net`]).stdout).toBe(sh(["ip", "netns", "exec", "tsnet-insp", "readlink", "/proc/self/ns/net"]).stdout);
  });

  test("an unknown name: exit 1, one line, and the known ones still printed", () => {
    runD(["--name", "known", "--", "sleep", "30"]);
    const r = tsnet(["inspect", "known", "nope"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("tsnet: no such container: nope");
    expect(JSON.parse(r.stdout).map((c: any) => c.Name)).toEqual(["/known"]);
  });
});

describe("exec", () => {
  test("runs in the container's namespace with stdio and status passed through", () => {
    runD(["--name", "ex", "--", "sleep", "30"]);
    const r = tsnet(["exec", "-i", "ex", "--", "sh", "-c", "cat; ip -br -4 addr show eth0; exit 5"], { stdin: "piped\n" });
    expect(r.code).toBe(5);
    expect(r.stdout).toMatch(/^piped\neth0@\S+\s+UP\s+10\.77\.0\.\d+\/16/);
  });

  test("into a stopped container: exit 1; into an unknown one: exit 1", async () => {
    const id = runD(["--name", "gone", "--", "true"]).trim();
    await waitFor("exit", () => records().find((r) => r.id === id)?.status === "exited");
    const r = tsnet(["exec", "gone", "--", "true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("container gone is not running");
    expect(tsnet(["exec", "nobody", "--", "true"]).code).toBe(1);
  });

  test("exec gets the environment, directory and user the container was started with, then its own -e, -w and -u", () => {
    runD(["--name", "exe", "--network", "none", "-e", "Q=1", "-e", "R=2", "-w", "/tmp", "-u", "nobody", "--", "sleep", "30"]);
    const show = ["sh", "-c", 'echo "$Q $R $(pwd) $(id -u) $HOME"'];
    expect(tsnet(["exec", "exe", "--", ...show])).toEqual({ code: 0, stdout: "1 2 /tmp 65534 /nonexistent\n", stderr: "" });
    expect(tsnet(["exec", "-e", "Q=3", "-w", "/", "-u", "root", "exe", "--", ...show])).toEqual({ code: 0, stdout: "3 2 / 0 /root\n", stderr: "" });
    // Its own options are checked like run's, before anything is read.
    const bad = tsnet(["exec", "-u", "no-such-user", "exe", "--", "true"]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toBe('tsnet: invalid -u "no-such-user": no user "no-such-user" in /etc/passwd\n');
  });

  test("what exec starts is the container's: stop ends it, a daemon it left in a session of its own too", async () => {
    runD(["--name", "exw", "--", "sleep", "30"]);
    // A daemon left behind by an exec, in a session of its own, and an exec still in the foreground.
    expect(tsnet(["exec", "exw", "sh", "-c", "setsid sleep 1003 >/dev/null 2>&1 &"]).code).toBe(0);
    const foreground = Bun.spawn([TSNET, "exec", "exw", "sleep", "1005"], { stdio: ["ignore", "ignore", "ignore"] });
    await waitFor("both sleeps", () => pidsByArgv(["sleep", "1003"]).length === 1 && pidsByArgv(["sleep", "1005"]).length === 1);
    expect(tsnet(["stop", "-t", "1", "exw"]).code).toBe(0);
    expect(await waitFor("the foreground exec to end", () => foreground.exitCode !== null, 5000)).toBe(true);
    expect(pidsByArgv(["sleep", "1003"])).toEqual([]);
    expect(pidsByArgv(["sleep", "1005"])).toEqual([]);
    expect(netnsNames()).not.toContain("tsnet-exw");
  });
});

describe("logs -f, stop, rm", () => {
  test("logs -f follows until the container ends", async () => {
    runD(["--name", "talker", "--", "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"]);
    const r = tsnet(["logs", "-f", "talker"]);
    expect(r.stdout).toBe("line1\nline2\nline3\n");
  });

  test("stop: TERM first, KILL after -t seconds for a command that ignores TERM", async () => {
    runD(["--name", "stubborn", "--", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]);
    const t0 = Date.now();
    const r = tsnet(["stop", "-t", "1", "stubborn"]);
    expect(r.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    const rec = records().find((x) => x.name === "stubborn");
    expect(rec.exitCode).toBe(137);
    expectAllReleased();
  });

  test("stop of several containers that ignore TERM: every one gets TERM before any is killed, as Docker stops them together", async () => {
    const dir = mkdtempSync("/tmp/tsnet-stop-");
    const names = ["st1", "st2", "st3"];
    for (const n of names) {
      runD(["--name", n, "--network", "none", "--", "sh", "-c", `trap 'date +%s%N > ${dir}/${n}' TERM; while :; do sleep 0.05; done`]);
    }
    const r = tsnet(["stop", "-t", "1", ...names]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").sort()).toEqual(names);
    const termed = names.map((n) => Number(readFileSync(`${dir}/${n}`, "utf8").trim()) / 1e6);
    const finished = names.map((n) => Date.parse(tsnet(["inspect", "-f", "{{.State.FinishedAt}}", n]).stdout.trim()));
    expect(Math.max(...termed)).toBeLessThan(Math.min(...finished));
    rmSync(dir, { recursive: true, force: true });
  });

  test("rm of a running container without -f is refused and changes nothing; with -f it goes", () => {
    const id = runD(["--name", "keep", "-p", "8088:80", "--", "sleep", "30"]).trim();
    const before = { veths: veths(), rules: ruleset() };
    const r = tsnet(["rm", "keep"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("tsnet: cannot remove running container keep: stop it first, or use tsnet rm -f");
    expect({ veths: veths(), rules: ruleset() }).toEqual(before);
    expect(tsnet(["rm", "-f", "keep"]).stdout).toBe("keep\n");
    expect(records().some((x) => x.id === id)).toBe(false);
    expectAllReleased();
    expect(tsnet(["rm", "keep"]).code).toBe(1);
  });

  test("stop and rm of an unknown container: exit 1, one line", () => {
    for (const cmd of ["stop", "rm"]) {
      const r = tsnet([cmd, "nosuch"]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe("tsnet: no such container: nosuch");
    }
  });
});

describe("supervision", () => {
  test("one supervisor for all detached containers, gone when none remains; orphans are reaped", async () => {
    // The inner shell leaves a sleep behind and exits: the sleep is re-parented to the supervisor.
    runD(["--name", "s1", "--", "sh", "-c", "sh -c 'sleep 0.3 &'; exec sleep 30"]);
    runD(["--name", "s2", "--", "sleep", "30"]);
    const sup = managerPid("s1");
    expect(managerPid("s2")).toBe(sup);
    expect(sup).toBeGreaterThan(0);
    const tree = records().filter((r) => r.status === "running").map((r) => Number(readFileSync(`/proc/${r.pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]));
    expect(tree).toEqual([sup, sup]); // both commands are the supervisor's children
    await Bun.sleep(1600);
    const zombies = readdirSync(`/proc/${sup}/task`).flatMap((t) => readFileSync(`/proc/${sup}/task/${t}/children`, "utf8").trim().split(" ").filter(Boolean))
      .filter((p) => readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.startsWith("Z"));
    expect(zombies).toEqual([]);
    tsnet(["rm", "-f", "s1", "s2"]);
    await waitFor("supervisor to exit", () => !existsSync(`/proc/${sup}`), 8000);
  });

  test("a supervisor whose /run/tsnet was emptied under it leaves the next supervisor's socket alone when it exits", async () => {
    runD(["--name", "old", "--network", "none", "--", "sleep", "30"]);
    const first = managerPid("old");
    tsnet(["rm", "-f", "old"]);
    // Within its 2 s of idling: its socket, lock and manager files go, as with a reboot's tmpfs.
    rmSync("/run/tsnet", { recursive: true, force: true });
    runD(["--name", "new", "--network", "none", "--", "sleep", "30"]);
    const second = managerPid("new");
    expect(second).not.toBe(first);
    await waitFor("the first supervisor to exit", () => !existsSync(`/proc/${first}`), 8000);
    // The second one still answers: a container can be started, and its name found.
    runD(["--name", "newer", "--network", "none", "--", "sleep", "30"]);
    expect(managerPid("newer")).toBe(second);
    tsnet(["rm", "-f", "new", "newer"]);
  });
});

describe("crash safety", () => {
  const points = ["after-cgroup", "after-lease", "after-netns", "after-veth", "after-publish", "after-start", "teardown-after-unpublish", "teardown-after-netns"];
  for (const point of points) {
    test(`kill -9 of a foreground tsnet at ${point}: the next command cleans up, name, address and port are free`, () => {
      const r = tsnet(["run", "--rm", "--name", "crashy", "-p", "8099:80", "--", "sh", "-c", point === "after-start" ? "exec sleep 31 >/dev/null 2>&1" : "true"], { env: { TSNET_CRASH_AT: point } });
      expect(r.code).toBe(137); // killed, as by kill -9
      tsnet(["ps"]); // any command finds and removes what the dead one held
      expectAllReleased();
      expect(records().find((x) => x.name === "crashy")).toBeUndefined();
      expect(sh(["pgrep", "-f", "^sleep 31$"]).stdout).toBe("");
      const again = tsnet(["run", "--rm", "--name", "crashy", "-p", "8099:80", "--", "ip", "-br", "-4", "addr", "show", "eth0"]);
      expect(again.code).toBe(0);
      expect(again.stdout).toMatch(/eth0\S* +UP +10\.77\.\d+\.\d+\/16/);
    });
  }

  test("kill -9 of the supervisor: its containers go on running under a new one; when they end, everything is released", async () => {
    runD(["--rm", "--name", "orphan1", "-p", "8097:80", "--", "sleep", "30"]);
    runD(["--name", "orphan2", "--", "sleep", "30"]);
    const pids = records().map((r) => r.pid);
    const sup = managerPid("orphan1");
    process.kill(sup, "SIGKILL");
    await waitFor("supervisor dead", () => !existsSync(`/proc/${sup}`));
    const ps = tsnet(["ps", "-a", "--format", "json"]).stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(ps.map((c) => [c.Names, c.State]).sort()).toEqual([["orphan1", "running"], ["orphan2", "running"]]);
    for (const pid of pids) expect(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.startsWith("S")).toBe(true);
    expect(managerPid("orphan1")).not.toBe(sup);
    // Ended by hand: the --rm one is forgotten, the other exited; nothing of either is held.
    expect(tsnet(["stop", "orphan1", "orphan2"]).code).toBe(0);
    expect(records().map((r) => [r.name, r.status])).toEqual([["orphan2", "exited"]]);
    tsnet(["rm", "orphan2"]);
    expectAllReleased();
    // A new detached run reuses the address and port.
    runD(["--rm", "--name", "orphan1", "-p", "8097:80", "--", "sleep", "30"]);
    expect(records().find((r) => r.name === "orphan1").endpoints[0].ips[0].address).toMatch(/^10\.77\./);
  });
});

describe("concurrency", () => {
  test("50 run -d at once: all succeed, 50 distinct addresses, consistent records", async () => {
    const procs = Array.from({ length: 50 }, (_, i) =>
      Bun.spawn([TSNET, "run", "-d", "--name", `par${i}`, "--", "sleep", "60"], { stdout: "pipe", stderr: "pipe" }),
    );
    const results = await Promise.all(procs.map(async (p) => ({ code: await p.exited, out: await new Response(p.stdout).text(), err: await new Response(p.stderr).text() })));
    expect(results.filter((r) => r.code !== 0).map((r) => r.err)).toEqual([]);
    const ids = results.map((r) => r.out.trim());
    expect(new Set(ids).size).toBe(50);
    const recs = records().filter((r) => r.name.startsWith("par"));
    expect(recs.length).toBe(50);
    expect(recs.every((r) => r.status === "running")).toBe(true);
    expect(new Set(recs.map((r) => r.endpoints[0].ips[0].address)).size).toBe(50);
    expect(leases().length).toBe(50);
    expect(veths().length).toBe(50);
    expect(ipj<any[]>(["link", "show", "master", "tsnet0"]).length).toBe(50);
    const rm = tsnet(["rm", "-f", ...recs.map((r) => r.name)]);
    expect(rm.code).toBe(0);
    expectAllReleased();
  });
});
