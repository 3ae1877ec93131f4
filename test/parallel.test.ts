// Many tsnet processes at once, as `xargs -P` and CI scripts start them (issue 17, part 3): every
// one succeeds, or fails with a deliberate error; afterwards nothing is left. Each round starts
// from a fresh host (tsnet's bridge and table removed), so the first use of the bridge and of the
// table is itself raced. Judged from outside: ip -j, nft -j, /run/netns, the cgroup tree, the
// state directories.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, rmSync } from "node:fs";
import {
  TSNET, assertThrowawayHost, containerCgroups, ipj, leases, netnsNames, pidsByArgv, records, removeAllContainers, sh, tsnet, veths, waitFor,
} from "./helpers.ts";

/** How many at once: the rounds take about 50 s together on an idle 2-core machine. */
const N = 100;
/** A round's time limit: a machine shared with other work runs them up to three times slower. */
const ROUND_MS = 180_000;

interface Outcome {
  code: number;
  out: string;
  err: string;
}

/** Starts every command at once (Bun.spawn) and waits for all of them. */
async function all(cmds: { argv: string[]; env?: Record<string, string>; stdin?: string }[]): Promise<Outcome[]> {
  const procs = cmds.map((c) =>
    Bun.spawn(c.argv, {
      stdin: c.stdin === undefined ? "ignore" : Buffer.from(c.stdin),
      stdout: "pipe",
      stderr: "pipe",
      env: c.env ?? process.env,
    }),
  );
  return Promise.all(procs.map(async (p) => {
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code, out, err };
  }));
}

/** What failed, as "exit code: stderr", so a failing expectation shows the errors themselves. */
function failures(rs: Outcome[]): string[] {
  return rs.filter((r) => r.code !== 0 || r.err !== "").map((r) => `${r.code}: ${r.err.trim()}`);
}

function ruleset(): any[] {
  const r = sh(["nft", "-j", "list", "ruleset"]);
  if (r.code !== 0) throw new Error(`nft list ruleset: ${r.stderr}`);
  return JSON.parse(r.stdout).nftables;
}

/** Elements of tsnet's port maps, as nft lists them. */
function portElements(): unknown[] {
  return ruleset().filter((o) => o.map?.table === "tsnet").flatMap((o) => o.map.elem ?? []);
}

function tableExists(): boolean {
  return sh(["nft", "list", "table", "inet", "tsnet"]).code === 0;
}

function bridges(): string[] {
  return ipj<any[]>(["link", "show", "type", "bridge"]).map((l) => l.ifname).filter((n: string) => n.startsWith("tsnet"));
}

function names(): string[] {
  return existsSync("/run/tsnet/names") ? readdirSync("/run/tsnet/names") : [];
}

/** Temporary files (*.tmp) and half-registered managers (.PID-START) under /run/tsnet. */
function leftovers(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = `${dir}/${d.name}`;
      if (d.isDirectory()) walk(p);
      else if (d.name.endsWith(".tmp") || (dir.endsWith("/managers") && d.name.startsWith("."))) out.push(p);
    }
  };
  if (existsSync("/run/tsnet")) walk("/run/tsnet");
  return out;
}

/**
 * A host tsnet has not used yet: no bridge, no table; with `neverRun`, no state either (as after
 * a reboot: /run/tsnet and the network records are made by the parallel runs themselves). Only
 * with no container left (the other test files of a run share this throwaway host).
 */
function freshHost(neverRun = false): void {
  removeAllContainers();
  for (const b of bridges()) sh(["ip", "link", "del", b]);
  sh(["nft", "delete", "table", "inet", "tsnet"]);
  expect(bridges()).toEqual([]);
  expect(tableExists()).toBe(false);
  if (neverRun) {
    // A supervisor still idling would serve from a directory removed under it: it goes first.
    for (const pid of pidsByArgv([TSNET, "_supervise"])) process.kill(pid, "SIGKILL");
    rmSync("/run/tsnet", { recursive: true, force: true });
    const state = process.env.TSNET_STATE_DIR;
    if (!state?.startsWith("/run/")) throw new Error("TSNET_STATE_DIR must point into the throwaway host's /run (test/sandbox.sh sets it)");
    rmSync(`${state}/networks`, { recursive: true, force: true });
  }
}

/** Nothing of any container is left: links, namespaces, map elements, cgroups, leases, records, names. */
async function expectNothingLeft(): Promise<void> {
  expect(records()).toEqual([]);
  expect(names()).toEqual([]);
  expect(leases()).toEqual([]);
  expect(netnsNames()).toEqual([]);
  expect(containerCgroups()).toEqual([]);
  expect(portElements()).toEqual([]);
  expect(leftovers()).toEqual([]);
  // The namespaces' veth pairs go in the kernel's cleanup worker (helpers' veths() waits for them).
  expect(veths()).toEqual([]);
}

beforeAll(() => {
  assertThrowawayHost();
});

afterAll(() => {
  removeAllContainers();
});

describe("parallel runs on a fresh host", () => {
  test(`${N} parallel run --rm -- true on a host tsnet never ran on: all succeed, the first of them making the state directories, the bridge and the table`, async () => {
    freshHost(true);
    const rs = await all(Array.from({ length: N }, () => ({ argv: [TSNET, "run", "--rm", "--", "true"] })));
    expect(failures(rs)).toEqual([]);
    expect(bridges()).toEqual(["tsnet0"]);
    expect(tableExists()).toBe(true);
    await expectNothingLeft();
  }, ROUND_MS);

  test(`${N} parallel run -d -p PORT:80 (distinct ports), then ${N} parallel rm -f: all succeed, nothing left`, async () => {
    freshHost();
    const base = 20000;
    const rs = await all(Array.from({ length: N }, (_, i) => ({ argv: [TSNET, "run", "-d", "--name", `par${i}`, "-p", `${base + i}:80`, "--", "sleep", "60"] })));
    expect(failures(rs)).toEqual([]);
    const recs = records();
    expect(recs.length).toBe(N);
    expect(recs.every((r) => r.status === "running")).toBe(true);
    expect(new Set(recs.map((r) => r.endpoints[0].ips[0].address)).size).toBe(N);
    expect(portElements().length).toBe(N);
    expect(ipj<any[]>(["link", "show", "master", "tsnet0"]).length).toBe(N);
    const rm = await all(Array.from({ length: N }, (_, i) => ({ argv: [TSNET, "rm", "-f", `par${i}`] })));
    expect(failures(rm.map((r) => ({ ...r, out: "" })))).toEqual([]);
    expect(rm.map((r) => r.out).sort()).toEqual(Array.from({ length: N }, (_, i) => `par${i}\n`).sort());
    await expectNothingLeft();
  }, ROUND_MS);

  test(`${N / 2} parallel run --rm -- true while ${N / 4} ps -a look for dead managers: no manager is taken for dead while it registers`, async () => {
    freshHost();
    const rs = await all(Array.from({ length: (3 * N) / 4 }, (_, i) => ({ argv: i % 3 === 2 ? [TSNET, "ps", "-a", "-q"] : [TSNET, "run", "--rm", "--", "true"] })));
    expect(failures(rs.map((r) => ({ ...r, out: "" })))).toEqual([]);
    await expectNothingLeft();
  }, ROUND_MS);

  test("20 managers killed, then 40 commands at once find them dead: each is recovered once, every command succeeds", async () => {
    freshHost();
    const procs = Array.from({ length: 20 }, (_, i) =>
      Bun.spawn([TSNET, "run", "--name", `crashed${i}`, "-p", `${21000 + i}:80`, "--", "sleep", "60"], { stdio: ["ignore", "ignore", "pipe"] }),
    );
    await waitFor("20 containers to run", () => records().filter((r) => r.status === "running").length === 20, 30_000);
    // The managers (tsnet run), not their commands: each leaves a container whose manager is dead.
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    const rs = await all(Array.from({ length: 40 }, (_, i) => ({ argv: i % 2 ? [TSNET, "ps", "-a", "-q"] : [TSNET, "run", "--rm", "--", "true"] })));
    expect(failures(rs.map((r) => ({ ...r, out: "" })))).toEqual([]);
    // Whatever recovery made of them (released, or kept as exited), rm -f removes the rest.
    removeAllContainers();
    await expectNothingLeft();
    expect(readdirSync("/run/tsnet/managers").filter((m) => procs.some((p) => m.startsWith(`${p.pid}-`)))).toEqual([]);
  }, ROUND_MS);

  test("40 CNI ADDs (each publishing a port) on a network none of them finds made, at once with 40 run --rm, then 40 DELs with 40 more: all succeed, nothing left", async () => {
    freshHost();
    const nss = Array.from({ length: 40 }, (_, i) => `pcni${i}`);
    for (const ns of nss) expect(sh(["ip", "netns", "add", ns]).code).toBe(0);
    try {
      const cni = (command: string) => nss.map((ns, i) => {
        const env: Record<string, string> = {};
        for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
        Object.assign(env, { CNI_COMMAND: command, CNI_CONTAINERID: `pcni-container-${i}`, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: "eth0", CNI_PATH: "/nonexistent" });
        const conf = { cniVersion: "1.0.0", name: "pcni", type: "tsnet", runtimeConfig: { portMappings: [{ hostPort: 22000 + i, containerPort: 80, protocol: "tcp" }] } };
        return { argv: [TSNET], env, stdin: JSON.stringify(conf) };
      });
      const runs = Array.from({ length: 40 }, () => ({ argv: [TSNET, "run", "--rm", "--", "true"] }));
      const added = await all([...cni("ADD"), ...runs]);
      expect(failures(added.map((r, i) => (i < 40 ? { ...r, out: "" } : r)))).toEqual([]);
      const addresses = added.slice(0, 40).map((r) => JSON.parse(r.out).ips[0].address);
      expect(new Set(addresses).size).toBe(40);
      for (const [i, ns] of nss.entries()) expect(ipj(["-4", "addr", "show", "eth0"], ns)[0].addr_info[0].local).toBe(addresses[i].split("/")[0]);
      expect(portElements().length).toBe(40);
      const deleted = await all([...cni("DEL"), ...runs]);
      expect(failures(deleted)).toEqual([]);
    } finally {
      for (const ns of nss) sh(["ip", "netns", "del", ns]);
    }
    expect(tsnet(["network", "rm", "pcni"]).code).toBe(0);
    expect(existsSync("/run/tsnet/cni/pcni")).toBe(false);
    await expectNothingLeft();
  }, ROUND_MS);

  test("20 parallel network create, then 20 parallel network rm: 20 networks with distinct subnets and bridges, then none", async () => {
    freshHost();
    const rs = await all(Array.from({ length: 20 }, (_, i) => ({ argv: [TSNET, "network", "create", `pnet${i}`] })));
    expect(failures(rs.map((r) => ({ ...r, out: "" })))).toEqual([]);
    const nets = tsnet(["network", "ls", "--format", "json"]).stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((n) => n.Name.startsWith("pnet"));
    expect(nets.length).toBe(20);
    const inspected = JSON.parse(tsnet(["network", "inspect", ...nets.map((n) => n.Name)]).stdout) as any[];
    expect(new Set(inspected.map((n) => n.IPAM.Config[0].Subnet)).size).toBe(20);
    expect(bridges().filter((b) => b.startsWith("tsnet-")).length).toBe(20);
    const rm = await all(Array.from({ length: 20 }, (_, i) => ({ argv: [TSNET, "network", "rm", `pnet${i}`] })));
    expect(failures(rm.map((r) => ({ ...r, out: "" })))).toEqual([]);
    expect(bridges().filter((b) => b.startsWith("tsnet-"))).toEqual([]);
    expect(tsnet(["network", "ls", "-q"]).stdout.trim().split("\n").length).toBe(3);
  }, ROUND_MS);
});
