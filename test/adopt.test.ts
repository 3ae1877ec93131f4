// Adoption instead of teardown (issue 17, part 2): when the supervisor dies (kill -9 here, as an
// OOM kill would), its containers go on running and serving, and the next tsnet command has a new
// supervisor adopt them: ps, stop, logs -f, wait, restart policies and the resolver work on them
// as before. A supervisor of another build (the tsnet file replaced under it) hands its
// containers over the same way. A container whose processes all ended while nobody managed it is
// released as before. Observed from outside tsnet: curl, /proc, ip, nft, DNS over the wire.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync } from "node:fs";
import {
  TSNET, alive, assertThrowawayHost, containerCgroups, curl, leases, managerPid, netnsNames, pidsByArgv, procState, records, removeAllContainers, resolveIn, runDetached, sh, tsnet, veths, waitFor,
} from "./helpers.ts";

beforeAll(() => assertThrowawayHost());
afterEach(removeAllContainers);
afterAll(() => {
  removeAllContainers();
  tsnet(["network", "rm", "adoptnet"]);
});

/** A small HTTP server, unbuffered: it logs each request (with its path) on stderr. */
const SERVER = ["python3", "-u", "-m", "http.server", "80"];

/** Gone with all its threads (a killed process's files, its locks, close with its last thread). */
function gone(pid: number): boolean {
  const s = procState(pid);
  if (s === undefined) return true;
  try {
    return s === "Z" && readdirSync(`/proc/${pid}/task`).length <= 1;
  } catch {
    return true;
  }
}

async function killSupervisor(pid: number): Promise<void> {
  process.kill(pid, "SIGKILL");
  await waitFor(`supervisor ${pid} to be gone`, () => gone(pid));
}

/** The live supervisor managing the container, as its record names it; checked in /proc. */
function supervisorOf(name: string): number {
  const pid = managerPid(name);
  expect(alive(pid)).toBe(true);
  expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[1]).toBe("_supervise");
  return pid;
}

/** The container's processes, from its cgroup (read directly, not through tsnet). */
function cgroupProcs(name: string): number[] {
  const rec = records().find((r) => r.name === name);
  try {
    return readFileSync(`${rec.cgroup}/cgroup.procs`, "utf8").trim().split("\n").filter(Boolean).map(Number);
  } catch (e) {
    // Between two runs of a restarted container its cgroup is removed and made again.
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

async function serving(port: number): Promise<void> {
  await waitFor(`port ${port} to answer`, () => curl(`http://127.0.0.1:${port}/`).stdout.includes("Directory listing"));
}

function addressOf(netns: string): string {
  return JSON.parse(sh(["ip", "-n", netns, "-j", "-4", "addr", "show", "eth0"]).stdout)[0].addr_info[0].local;
}

/** Asks each port every 50 ms until stopped; counts the answers that did not come. */
function probe(ports: number[]) {
  let running = true;
  let asked = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      await Promise.all(ports.map(async (port) => {
        asked++;
        try {
          const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
          if (r.status !== 200) failures.push(`${port}: HTTP ${r.status}`);
          await r.text();
        } catch (e) {
          failures.push(`${port}: ${(e as Error).message}`);
        }
      }));
      await Bun.sleep(50);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { asked, failures };
    },
  };
}

describe("kill -9 of the supervisor", () => {
  test("three serving containers keep answering throughout; the next command shows them Up, adopted by a new supervisor, with their names resolved", async () => {
    tsnet(["network", "create", "adoptnet"]);
    const names = ["ad1", "ad2", "ad3"];
    names.forEach((n, i) => runDetached(["--name", n, "--network", "adoptnet", "-p", `${8611 + i}:80`, "--", ...SERVER]));
    for (let i = 0; i < 3; i++) await serving(8611 + i);
    const old = supervisorOf("ad1");
    const procs = names.map(cgroupProcs);
    const watch = probe([8611, 8612, 8613]);
    await Bun.sleep(200);
    await killSupervisor(old);
    // Nobody manages them now, and they still serve.
    await Bun.sleep(300);
    for (let i = 0; i < 3; i++) expect(curl(`http://127.0.0.1:${8611 + i}/`).stdout).toContain("Directory listing");
    const ps = tsnet(["ps", "--format", "{{.Names}} {{.Status}}"]);
    expect(ps.code).toBe(0);
    expect(ps.stdout.trim().split("\n").sort()).toEqual(names.map((n) => expect.stringMatching(new RegExp(`^${n} Up `))));
    await Bun.sleep(300);
    const { asked, failures } = await watch.stop();
    expect(failures).toEqual([]);
    expect(asked).toBeGreaterThan(10);
    // The same processes, now managed by a new supervisor, whose fd the namespace's name follows.
    expect(names.map(cgroupProcs)).toEqual(procs);
    const sup = supervisorOf("ad1");
    expect(sup).not.toBe(old);
    for (const n of names) {
      expect(managerPid(n)).toBe(sup);
      expect(readlinkSync(`/run/netns/tsnet-${n}`)).toMatch(new RegExp(`^/proc/${sup}/fd/\\d+$`));
      expect(sh(["ip", "netns", "exec", `tsnet-${n}`, "true"]).code).toBe(0);
    }
    // The resolver is the new supervisor's: names of the network answer inside each container.
    expect(resolveIn("tsnet-ad1", "ad2")).toBe(addressOf("tsnet-ad2"));
    expect(resolveIn("tsnet-ad3", "ad1.adoptnet")).toBe(addressOf("tsnet-ad1"));
    // Its host ports are reserved again by the adopter, as by any manager: nobody else can bind them.
    const bind = (port: number) => sh(["python3", "-c", `import socket\ntry:\n socket.socket().bind(("0.0.0.0", ${port})); print("bound")\nexcept OSError as e: print(e.errno)`]).stdout.trim();
    expect([8611, 8612, 8613].map(bind)).toEqual(["98", "98", "98"]);
  }, 60_000);

  test("stop, logs -f, wait and --restart work on adopted containers", async () => {
    runDetached(["--name", "lg", "-p", "8621:80", "--", ...SERVER]);
    runDetached(["--name", "wt", "--", "sleep", "300"]);
    runDetached(["--name", "rs", "-p", "8622:80", "--restart", "always", "--", ...SERVER]);
    await serving(8621);
    await serving(8622);
    // A wait that began under the old supervisor goes on past its death.
    const waiting = Bun.spawn([TSNET, "wait", "wt"], { stdout: "pipe", stderr: "pipe" });
    await Bun.sleep(300);
    await killSupervisor(supervisorOf("lg"));
    expect(tsnet(["ps"]).code).toBe(0);
    // The wait may have been first to find the supervisor dead: then the supervisor it started
    // adopts them, while ps, finding that one's lock taken, only lists them.
    await waitFor("the containers to be adopted", () => ["lg", "wt", "rs"].every((n) => alive(managerPid(n))));
    const sup = supervisorOf("lg");
    expect(procState(waiting.pid)).toBeDefined(); // still waiting: wt runs

    // logs -f: what the container writes after the adoption arrives.
    const follow = Bun.spawn([TSNET, "logs", "-f", "lg"], { stdout: "pipe", stderr: "pipe" });
    let seen = "";
    const reader = (async () => {
      for await (const chunk of follow.stderr) seen += new TextDecoder().decode(chunk);
    })();
    await Bun.sleep(300);
    expect(curl("http://127.0.0.1:8621/after-adoption-1").code).toBe(0);
    await waitFor("logs -f to print the request made after the adoption", () => seen.includes("GET /after-adoption-1"));

    // stop: TERM to every process; the adopter records 128+15.
    const stop = tsnet(["stop", "lg"]);
    expect(stop).toMatchObject({ code: 0, stdout: "lg\n" });
    expect(await follow.exited).toBe(0); // logs -f ends with the container
    await reader;
    expect(records().find((r) => r.name === "lg")).toMatchObject({ status: "exited", exitCode: 143 });
    expect(netnsNames()).not.toContain("tsnet-lg");

    // wait: the wait begun before the kill answers when wt is stopped.
    expect(tsnet(["stop", "-t", "1", "wt"]).code).toBe(0);
    expect(await waiting.exited).toBe(143);
    expect(await new Response(waiting.stdout).text()).toBe("143\n");
    // And a wait begun under the adopter.
    runDetached(["--name", "wt2", "--", "sleep", "300"]);
    await killSupervisor(supervisorOf("wt2"));
    const wait2 = Bun.spawn([TSNET, "wait", "wt2"], { stdout: "pipe", stderr: "pipe" });
    await waitFor("wt2 adopted", () => { const r = records().find((x) => x.name === "wt2"); return r && alive(Number(r.manager.split("-")[0])); });
    await Bun.sleep(200);
    sh(["kill", "-KILL", ...cgroupProcs("wt2").map(String)]);
    // Its first process was not the adopter's child: the status is unknown (255), as Docker says.
    expect(await wait2.exited).toBe(255);

    // --restart always: the adopted command is killed by hand, and the adopter starts it again.
    const before = cgroupProcs("rs");
    expect(managerPid("rs")).not.toBe(sup); // its adopter was wt2's supervisor, killed: adopted again
    sh(["kill", "-KILL", ...before.map(String)]);
    await waitFor("rs to be started again", () => records().find((r) => r.name === "rs")?.restartCount === 1 && cgroupProcs("rs").length > 0);
    await serving(8622);
    expect(cgroupProcs("rs")).not.toEqual(before);
    expect(records().find((r) => r.name === "rs").status).toBe("running");
  }, 60_000);

  test("a container whose processes all ended while nobody managed it is released; one still running beside it is adopted", async () => {
    runDetached(["--name", "dies", "-p", "8631:80", "--", "sleep", "300"]);
    runDetached(["--name", "lives", "-p", "8632:80", "--", ...SERVER]);
    await serving(8632);
    const dying = records().find((r) => r.name === "dies");
    await killSupervisor(supervisorOf("dies"));
    sh(["kill", "-KILL", ...cgroupProcs("dies").map(String)]);
    await waitFor("its cgroup to be empty", () => readFileSync(`${dying.cgroup}/cgroup.events`, "utf8").includes("populated 0"));
    const ps = tsnet(["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    expect(ps.stdout).toMatch(/^dies Exited \(137\) /m);
    expect(ps.stdout).toMatch(/^lives Up /m);
    // Nothing of it is left: no namespace, veth, lease, cgroup, port element, name reservation
    // of a running container.
    expect(netnsNames()).toEqual(["tsnet-lives"]);
    const live = records().find((r) => r.name === "lives");
    expect(veths()).toEqual([live.endpoints[0].hostVeth]);
    expect(leases()).toEqual([live.endpoints[0].ips[0].address]);
    expect(containerCgroups()).toEqual([live.id]);
    const ruleset = sh(["nft", "list", "table", "inet", "tsnet"]).stdout;
    expect(ruleset).not.toContain(dying.id.slice(0, 12));
    expect(ruleset).toContain(live.id.slice(0, 12));
    expect(curl("http://127.0.0.1:8632/").stdout).toContain("Directory listing");
    expect(pidsByArgv(["sleep", "300"])).toEqual([]);
  }, 60_000);
});

describe("kill -9 of the adopting supervisor", () => {
  for (const point of ["adopt-after-record", "adopt-after-netns", "adopt-after-resolver"]) {
    test(`killed at ${point}: the container serves on, the next command has it adopted again, and rm -f releases everything`, async () => {
      tsnet(["network", "create", "adoptnet"]);
      runDetached(["--name", "twice", "--network", "adoptnet", "-p", "8651:80", "--", ...SERVER]);
      await serving(8651);
      const procs = cgroupProcs("twice");
      await killSupervisor(supervisorOf("twice"));
      // This command's supervisor dies while adopting (the crash point is inherited by it).
      const crashed = tsnet(["ps", "--format", "{{.Names}} {{.Status}}"], { env: { TSNET_CRASH_AT: point } });
      expect(crashed.code).toBe(0);
      expect(crashed.stdout).toMatch(/^twice Up /);
      expect(crashed.stderr).toMatch(/could not be adopted/);
      await waitFor("the adopter to be gone", () => pidsByArgv([TSNET, "_supervise"]).length === 0 || undefined);
      expect(curl("http://127.0.0.1:8651/").stdout).toContain("Directory listing");
      // The next one adopts it.
      const ps = tsnet(["ps", "--format", "{{.Names}} {{.Status}}"]);
      expect({ code: ps.code, stderr: ps.stderr }).toEqual({ code: 0, stderr: "" });
      expect(ps.stdout).toMatch(/^twice Up /);
      const sup = supervisorOf("twice");
      expect(cgroupProcs("twice")).toEqual(procs);
      expect(readlinkSync("/run/netns/tsnet-twice")).toMatch(new RegExp(`^/proc/${sup}/fd/\\d+$`));
      expect(resolveIn("tsnet-twice", "twice")).toBe(addressOf("tsnet-twice"));
      // One redirect to the resolver, the adopter's: nothing of the dead ones' is left in the namespace.
      expect(sh(["ip", "netns", "exec", "tsnet-twice", "nft", "list", "ruleset"]).stdout.match(/dnat ip to/g)?.length).toBe(2);
      expect(curl("http://127.0.0.1:8651/").stdout).toContain("Directory listing");
      expect(tsnet(["rm", "-f", "twice"]).code).toBe(0);
      expect(netnsNames()).toEqual([]);
      expect(veths()).toEqual([]);
      expect(leases()).toEqual([]);
      expect(containerCgroups()).toEqual([]);
      expect(sh(["nft", "list", "table", "inet", "tsnet"]).stdout).not.toMatch(/comment "[0-9a-f]{12} /);
      expect(procs.filter(alive)).toEqual([]);
    }, 60_000);
  }
});

describe("a new tsnet binary", () => {
  test("a tsnet file replaced under running containers: the next command has them handed over to a supervisor of the new file, still running", async () => {
    const dir = mkdtempSync("/tmp/tsnet-adopt-");
    const bin = `${dir}/tsnet`;
    copyFileSync(TSNET, bin);
    try {
      const run = (args: string[]) => sh([bin, ...args]);
      expect(run(["run", "-d", "--name", "up1", "-p", "8641:80", "--", ...SERVER]).code).toBe(0);
      expect(run(["run", "-d", "--name", "up2", "--restart", "always", "--", "sleep", "300"]).code).toBe(0);
      await serving(8641);
      const old = supervisorOf("up1");
      expect(statSync(`/proc/${old}/exe`).ino).toBe(statSync(bin).ino);
      const procs = ["up1", "up2"].map(cgroupProcs);
      // An upgrade: the new file is written beside the old and renamed over it.
      copyFileSync(TSNET, `${bin}.new`);
      renameSync(`${bin}.new`, bin);
      expect(readlinkSync(`/proc/${old}/exe`)).toBe(`${bin} (deleted)`);
      const ps = run(["ps", "--format", "{{.Names}} {{.Status}}"]);
      expect(ps.code).toBe(0);
      expect(ps.stdout.trim().split("\n").sort()).toEqual([expect.stringMatching(/^up1 Up /), expect.stringMatching(/^up2 Up /)]);
      // Managed by a supervisor running the new file; the old one is gone; the commands never stopped.
      const sup = supervisorOf("up1");
      expect(sup).not.toBe(old);
      expect(gone(old)).toBe(true);
      expect(managerPid("up2")).toBe(sup);
      expect(readlinkSync(`/proc/${sup}/exe`)).toBe(bin);
      expect(statSync(`/proc/${sup}/exe`).ino).toBe(statSync(bin).ino);
      expect(["up1", "up2"].map(cgroupProcs)).toEqual(procs);
      expect(curl("http://127.0.0.1:8641/").stdout).toContain("Directory listing");
      // And it manages them: a stop ends one, with the status it records.
      expect(run(["stop", "up1"]).code).toBe(0);
      expect(records().find((r) => r.name === "up1")).toMatchObject({ status: "exited", exitCode: 143 });
      expect(run(["ps", "--format", "{{.Names}}"]).stdout).toBe("up2\n");
      expect(run(["rm", "-f", "up1", "up2"]).code).toBe(0);
      expect(netnsNames()).toEqual([]);
      expect(leases()).toEqual([]);
      expect(existsSync(`/proc/${sup}`)).toBe(true);
    } finally {
      removeAllContainers();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
