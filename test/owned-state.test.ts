// Owned state (issue 9, item 3): tsnet believes /run/tsnet, its state directory and /run/netns
// only while nobody but root can have written them, never follows a symbolic link planted there,
// and no reference (name, id prefix, container:REF) ever becomes a path. Each test shapes /run in
// a nested host of its own (test/nested-host.ts), and judges from outside: the victim file, link
// and process are checked with cat, ip and /proc.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { TSNET, assertThrowawayHost } from "./helpers.ts";
import { NestedHost } from "./nested-host.ts";

beforeAll(() => assertThrowawayHost());

const FORGED_ID = "f".repeat(64);
/** A manager that is not running: its lock file unlocked makes its containers orphans. */
const FORGED_MANAGER = "99999-1";

let hosts: NestedHost[] = [];
let cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) c();
  for (const h of hosts) await h.close();
  hosts = [];
  cleanups = [];
});

async function host(runMode = "755"): Promise<NestedHost> {
  const h = await NestedHost.start(runMode);
  hosts.push(h);
  return h;
}

/** What a forged record can aim at: a root-only file, a host link, a root process. */
function victims(h: NestedHost) {
  const dir = mkdtempSync("/tmp/tsnet-victim-");
  const file = `${dir}/secret`;
  writeFileSync(file, "secret\n", { mode: 0o600 });
  h.must("ip link add victim0 type veth peer name victim1");
  const sleeper = Bun.spawn(["sleep", "600"], { stdio: ["ignore", "ignore", "ignore"] });
  const start = startTime(sleeper.pid);
  cleanups.push(() => {
    sleeper.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    file,
    pid: sleeper.pid,
    start,
    /** A record naming all three, as the probe forged it (an unlocked manager file makes it an orphan). */
    record: JSON.stringify({
      id: FORGED_ID, name: "evil", command: ["sleep"], created: "2024-01-01T00:00:00Z", mode: "bridge", status: "running",
      pid: sleeper.pid, pidStart: start, autoRemove: true, netns: file, manager: FORGED_MANAGER,
      endpoints: [{ networkId: FORGED_ID, network: "bridge", bridge: "tsnet0", hostVeth: "victim0", ifname: "eth0", mac: "02:00:00:00:00:01", ips: [], aliases: [] }],
    }),
    expectUntouched() {
      expect(readFileSync(file, "utf8")).toBe("secret\n");
      expect(h.run(["ip", "link", "show", "victim0"]).code).toBe(0);
      expect(startTime(sleeper.pid)).toBe(start);
      expect(sleeper.exitCode).toBeNull();
    },
  };
}

function startTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

const refusedDir = (path: string, why: string, todo = "remove it") => ({
  code: 125,
  stdout: "",
  stderr: `tsnet: refusing ${path}: ${why}, so what it holds may have been forged: ${todo}\n`,
});
const REMAKE = "remove it (tsnet makes its own, root's, mode 0700)";

describe("state someone else made first", () => {
  test("a /run/tsnet made by a user in a 1777 /run: every command refuses in one line; nothing is deleted or killed", async () => {
    const h = await host("1777");
    const v = victims(h);
    h.asNobody(
      `mkdir -p /run/tsnet/containers /run/tsnet/managers /run/tsnet/names
       printf %s "$REC" > /run/tsnet/containers/${FORGED_ID}.json
       : > /run/tsnet/managers/${FORGED_MANAGER}
       printf %s ${FORGED_ID} > /run/tsnet/names/evil`,
      { REC: v.record },
    );
    const want = refusedDir("/run/tsnet", "it is owned by uid 65534, not root", REMAKE);
    for (const args of [["ps"], ["ps", "-a"], ["inspect", "evil"], ["rm", "-f", "evil"], ["stop", "evil"], ["run", "--rm", "--", "true"], ["run", "-d", "--", "true"]]) {
      expect({ args, ...h.tsnet(args) }).toEqual({ args, ...want });
    }
    v.expectUntouched();
    // The forged files are still there: nothing was acted on.
    expect(h.run(["cat", `/run/tsnet/containers/${FORGED_ID}.json`]).stdout).toBe(v.record);
    expect(h.run(["test", "-e", `/run/tsnet/managers/${FORGED_MANAGER}`]).code).toBe(0);
    // What the line says to do works: without it, tsnet makes its own, root's and 0700.
    h.must("rm -rf /run/tsnet");
    expect(h.tsnet(["run", "--rm", "--", "true"]).code).toBe(0);
    expect(h.must("stat -c '%u %a' /run/tsnet")).toBe("0 700\n");
    v.expectUntouched();
  });

  test("a state directory (TSNET_STATE_DIR) made by a user: network commands refuse; the link a forged network names stays", async () => {
    const h = await host("1777");
    const v = victims(h);
    const netId = "e".repeat(64);
    const rec = JSON.stringify({ id: netId, name: "evil", driver: "bridge", bridge: "victim0", subnets: [{ subnet: "10.99.0.0/24", gateway: "10.99.0.1" }], internal: false, builtin: false, created: "2024-01-01T00:00:00Z", labels: {} });
    h.asNobody(`mkdir -p /run/tsnet-state/networks; printf %s "$REC" > /run/tsnet-state/networks/${netId}.json`, { REC: rec });
    const want = refusedDir("/run/tsnet-state", "it is owned by uid 65534, not root", REMAKE);
    for (const args of [["network", "rm", "evil"], ["network", "ls"], ["run", "--rm", "--", "true"]]) {
      expect({ args, ...h.tsnet(args) }).toEqual({ args, ...want });
    }
    v.expectUntouched();
  });

  test("a /run/netns made by a user: run refuses before making a namespace there, and leaves nothing", async () => {
    const h = await host("1777");
    h.asNobody("mkdir /run/netns");
    expect(h.tsnet(["run", "--rm", "--name", "web", "--", "true"])).toEqual(refusedDir("/run/netns", "it is owned by uid 65534, not root"));
    expect(h.run(["ls", "-A", "/run/netns"]).stdout).toBe("");
    expect(h.must("ls -A /run/tsnet/containers /run/tsnet/names /run/tsnet/managers")).toBe("/run/tsnet/containers:\n\n/run/tsnet/managers:\n\n/run/tsnet/names:\n");
    expect(h.must("ip -o link show type veth | wc -l")).toBe("0\n");
  });

  test("a /run/tsnet writable by others, a directory inside owned by a user, a /run without the sticky bit: refused, naming the path", async () => {
    const writable = await host("755");
    writable.must("mkdir -m 0777 /run/tsnet");
    expect(writable.tsnet(["ps"])).toEqual(refusedDir("/run/tsnet", "it is writable by everyone (mode 0777)", REMAKE));

    const inner = await host("755");
    inner.must("mkdir -m 0700 /run/tsnet /run/tsnet/managers; chown 65534 /run/tsnet/managers");
    expect(inner.tsnet(["ps"])).toEqual(refusedDir("/run/tsnet/managers", "it is owned by uid 65534, not root"));

    const loose = await host("777");
    expect(loose.tsnet(["ps"])).toEqual(refusedDir(
      "/run/tsnet", "its parent /run is writable by everyone without the sticky bit (mode 0777)",
      "chmod +t /run, or make /run root's and not writable by others",
    ));
  });

  test("a record that names what tsnet never makes (a file as its namespace, pid and link of others) is refused, not acted on", async () => {
    const h = await host();
    const v = victims(h);
    h.must(`mkdir -m 0700 -p /run/tsnet/containers /run/tsnet/managers
            printf %s "$REC" > /run/tsnet/containers/${FORGED_ID}.json
            : > /run/tsnet/managers/${FORGED_MANAGER}`, { REC: v.record });
    expect(h.tsnet(["ps"])).toEqual({
      code: 125, stdout: "",
      stderr: `tsnet: refusing /run/tsnet/containers/${FORGED_ID}.json: not a container record of tsnet's (its field netns is not one tsnet writes): remove it\n`,
    });
    v.expectUntouched();
  });
});

describe("records not root's are refused before recovery believes them", () => {
  // A record tsnet could have written, naming a live process, whose manager is dead: an orphan
  // that recovery would end and forget, were the file root's.
  const orphan = (v: ReturnType<typeof victims>) => JSON.stringify({
    id: FORGED_ID, name: "orphan", command: ["sleep"], created: "2024-01-01T00:00:00Z", mode: "none", status: "running",
    pid: v.pid, pidStart: v.start, autoRemove: true, manager: FORGED_MANAGER,
  });

  for (const [what, fix, why] of [
    ["owned by a user", "chown 1000", "it is owned by uid 1000, not root"],
    ["writable by everyone", "chmod 0666", "it is writable by everyone (mode 0666)"],
  ] as const) {
    test(`a record ${what}: ps refuses in one line; the record and its process stay`, async () => {
      const h = await host();
      const v = victims(h);
      const path = `/run/tsnet/containers/${FORGED_ID}.json`;
      h.must(`mkdir -m 0700 -p /run/tsnet/containers /run/tsnet/managers
              printf %s "$REC" > ${path}; chmod 0600 ${path}; ${fix} ${path}
              : > /run/tsnet/managers/${FORGED_MANAGER}`, { REC: orphan(v) });
      const r = h.tsnet(["ps", "-a"]);
      expect(r).toEqual({ code: 125, stdout: "", stderr: `tsnet: refusing ${path}: ${why}, so what it holds may have been forged: remove it\n` });
      expect(h.must(`cat ${path}`)).toBe(orphan(v));
      v.expectUntouched();
    });
  }

  test("a FIFO where a record would be: ps refuses at once instead of waiting on it", async () => {
    const h = await host();
    const path = `/run/tsnet/containers/${FORGED_ID}.json`;
    h.must(`mkdir -m 0700 -p /run/tsnet/containers; mkfifo -m 0600 ${path}`);
    const r = h.run(["timeout", "10", TSNET, "ps", "-a"]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(new RegExp(`^tsnet: refusing ${path}: it is a device or pipe, not a regular file`));
  });
});

describe("symbolic links planted in /run/tsnet are not followed", () => {
  test("a name that links to a root-only file: refused, its content not shown", async () => {
    const h = await host();
    const v = victims(h);
    h.must(`mkdir -m 0700 -p /run/tsnet/names; ln -s ${v.file} /run/tsnet/names/web`);
    const r = h.tsnet(["run", "--rm", "--name", "web", "--", "true"]);
    expect(r).toEqual(refusedDir("/run/tsnet/names/web", "it is a symbolic link, where tsnet keeps only files of its own"));
    // Object commands say so too, exit 125 as run does: a refusal is tsnet declining its state, not
    // an unknown container (1), whatever else the command was given. inspect still prints its array.
    const refused = refusedDir("/run/tsnet/names/web", "it is a symbolic link, where tsnet keeps only files of its own");
    expect(h.tsnet(["inspect", "web"])).toEqual({ ...refused, stdout: "[]\n" });
    for (const args of [["rm", "-f", "web"], ["stop", "web"], ["kill", "web"], ["restart", "web"], ["rm", "nosuch", "web"], ["rm", "web", "nosuch"]]) {
      const nosuch = args.includes("nosuch") ? "tsnet: no such container: nosuch\n" : "";
      const want = args[1] === "nosuch" ? nosuch + refused.stderr : refused.stderr + nosuch;
      expect({ args, ...h.tsnet(args) }).toEqual({ args, code: 125, stdout: "", stderr: want });
    }
    v.expectUntouched();
  });

  test("a lock that links to a path elsewhere: refused, and nothing is created there", async () => {
    const h = await host();
    const v = victims(h);
    h.must(`mkdir -m 0700 -p /run/tsnet/locks; ln -s ${v.dir}/planted /run/tsnet/locks/networks.lock`);
    expect(h.tsnet(["run", "--rm", "--", "true"])).toEqual(refusedDir("/run/tsnet/locks/networks.lock", "it is a symbolic link, where tsnet keeps only files of its own"));
    expect(existsSync(`${v.dir}/planted`)).toBe(false);
  });

  test("a state directory that is a link: refused", async () => {
    const h = await host();
    const v = victims(h);
    h.must(`mkdir -m 0700 -p /run/tsnet; ln -s ${v.dir} /run/tsnet/containers`);
    expect(h.tsnet(["ps"])).toEqual(refusedDir("/run/tsnet/containers", "it is a symbolic link, not a directory"));
  });
});

describe("references never become paths", () => {
  test("path-like references name no container: exit 1 for object commands, 125 for run's --network", async () => {
    const h = await host();
    const id = h.tsnet(["run", "-d", "--name", "web", "--", "sleep", "60"]).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const lease = h.must("cd /run/tsnet/networks && ls -d */leases/*").trim();
    for (const ref of ["../names/web", `../containers/${id}`, `../networks/${lease}`, "./web", "web/", "/run/tsnet/names/web"]) {
      const none = { code: 1, stderr: `tsnet: no such container: ${ref}\n` };
      expect({ ref, ...h.tsnet(["inspect", ref]) }).toEqual({ ref, ...none, stdout: "[]\n" });
      for (const cmd of [["logs"], ["top"], ["stop"], ["rm", "-f"], ["exec"]]) {
        const args = cmd[0] === "exec" ? [...cmd, ref, "--", "true"] : [...cmd, ref];
        expect({ args, ...h.tsnet(args) }).toEqual({ args, ...none, stdout: "" });
      }
      for (const mode of [[], ["-d"]]) {
        const args = ["run", ...mode, "--rm", "--network", `container:${ref}`, "--", "true"];
        expect({ args, ...h.tsnet(args) }).toEqual({ args, code: 125, stdout: "", stderr: `tsnet: no such container: "${ref}" (see tsnet ps)\n` });
      }
    }
    // web was never touched, and still answers to its name.
    expect(h.tsnet(["inspect", "-f", "{{.State.Status}}", "web"]).stdout).toBe("running\n");
    expect(h.tsnet(["rm", "-f", "web"]).code).toBe(0);
  });
});

describe("what tsnet makes is root's alone", () => {
  test("directories 0700, files 0600 (the container's /etc files 0644, read through their mounts), the socket 0600 or less", async () => {
    const h = await host();
    expect(h.tsnet(["run", "-d", "--name", "web", "--", "sleep", "60"]).code).toBe(0);
    expect(h.tsnet(["run", "--rm", "--", "true"]).code).toBe(0);
    const entries = h.must("find /run/tsnet /run/tsnet-state -printf '%y %m %u %p\\n'").trim().split("\n");
    expect(entries.length).toBeGreaterThan(10);
    for (const line of entries) {
      const [type, mode, user, path] = line.split(" ");
      const want = type === "d" ? "700" : type === "s" ? expect.stringMatching(/^[67]00$/) : /\/containers\/[0-9a-f]{64}\/(hostname|hosts|resolv\.conf)$/.test(path!) ? "644" : "600";
      expect({ path, user, mode }).toEqual({ path, user: "root", mode: want });
    }
    expect(h.tsnet(["rm", "-f", "web"]).code).toBe(0);
  });
});
