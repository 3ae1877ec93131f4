// A root tool in a directory an attacker wrote (issue 16): a local user plants bunfig.toml (whose
// preload would run as uid 0) and .env (whose variables would enter tsnet's environment and every
// container's) in a directory that root later runs tsnet in. Nothing of it may take effect.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { TSNET, assertThrowawayHost, removeAllContainers, sh } from "./helpers.ts";

let dir = "";
const marker = () => `${dir}/preload-ran`;

/** tsnet run with the attacker's directory as its working directory. */
function inDir(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([TSNET, ...args], { cwd: dir, env: { ...process.env, ...env }, stdin: "ignore" });
  return { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

beforeAll(() => {
  assertThrowawayHost();
  dir = mkdtempSync("/tmp/attacker-");
  chmodSync(dir, 0o777);
  // Written by the unprivileged user, as an attacker would.
  const files: Record<string, string> = {
    "bunfig.toml": 'preload = ["./evil.ts"]\n[run]\npreload = ["./evil.ts"]\n',
    "evil.ts": `require("node:fs").writeFileSync(${JSON.stringify(`${dir}/preload-ran`)}, String(process.getuid()));\n`,
    ".env": "EVIL_FROM_DOTENV=injected\n",
    ".env.local": "EVIL_FROM_DOTENV_LOCAL=injected\n",
    ".env.production": "EVIL_FROM_DOTENV_PRODUCTION=injected\n",
    "tsconfig.json": '{"compilerOptions":{"paths":{"*":["./evil.ts"]}}}\n',
    "package.json": '{"name":"evil","type":"module","main":"evil.ts"}\n',
  };
  for (const [name, text] of Object.entries(files)) {
    const r = sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", `cat > "$0"`, `${dir}/${name}`], { stdin: text });
    if (r.code !== 0) throw new Error(`planting ${name} as nobody failed: ${r.stderr}`);
  }
  // The plant works: the same preload does run under plain bun in that directory (the oracle
  // that the files are what Bun would load).
  const bun = Bun.spawnSync([process.execPath, "-e", "1"], { cwd: dir, env: process.env });
  if (bun.exitCode !== 0 || !existsSync(marker())) throw new Error(`the planted bunfig.toml did not preload under bun itself: ${bun.stderr}`);
  rmSync(marker());
});

afterAll(() => {
  removeAllContainers();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("nothing in the working directory is loaded", () => {
  const commands: [string, string[], Record<string, string>?][] = [
    ["--version", ["--version"]],
    ["ps", ["ps"]],
    ["ps --format json", ["ps", "--format", "json"]],
    ["completion (what TAB runs)", ["_complete", "bash", " \t\n\"'><=;|&(:", "tsnet r"]],
    ["CNI VERSION", [], { CNI_COMMAND: "VERSION" }],
    ["network ls", ["network", "ls"]],
  ];
  for (const [what, args, env] of commands) {
    test(`${what}: the planted preload does not run`, () => {
      const r = inDir(args, env);
      expect(r.code).toBe(0);
      expect(existsSync(marker())).toBe(false);
    });
  }

  test("run: the preload does not run, and no .env variable reaches tsnet or the container", () => {
    const r = inDir(["run", "--rm", "--network", "none", "--", "sh", "-c", 'echo "${EVIL_FROM_DOTENV-unset} ${EVIL_FROM_DOTENV_LOCAL-unset} ${EVIL_FROM_DOTENV_PRODUCTION-unset}"']);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("unset unset unset\n");
    expect(existsSync(marker())).toBe(false);
  });

  test("run -d: the supervisor started from there loads nothing either, and its container sees no .env", () => {
    const r = inDir(["run", "-d", "--name", "dotenv-probe", "--network", "none", "--", "sh", "-c", 'echo "${EVIL_FROM_DOTENV-unset}"; sleep 30']);
    expect(r.code).toBe(0);
    let logs = "";
    for (let i = 0; i < 200 && !logs; i++) {
      logs = sh([TSNET, "logs", "dotenv-probe"]).stdout;
      if (!logs) Bun.sleepSync(20);
    }
    expect(logs).toBe("unset\n");
    expect(existsSync(marker())).toBe(false);
    expect(sh([TSNET, "rm", "-f", "dotenv-probe"]).code).toBe(0);
  });
});

describe("input that is large, or not what it claims to be", () => {
  const MANY = 5000;

  /** The elements of tsnet's port maps whose comment names the owner. */
  function elementsOf(owner: string): number {
    const r = sh(["nft", "-j", "list", "table", "inet", "tsnet"]);
    if (r.code !== 0) throw new Error(r.stderr);
    let n = 0;
    for (const o of JSON.parse(r.stdout).nftables) {
      for (const e of o.map?.elem ?? []) if (JSON.stringify(e).includes(owner)) n++;
    }
    return n;
  }

  /** How many port-map elements have a host port from lo to hi. */
  function keysIn(lo: number, hi: number): number {
    const r = sh(["nft", "-j", "list", "table", "inet", "tsnet"]);
    if (r.code !== 0) throw new Error(r.stderr);
    let n = 0;
    for (const o of JSON.parse(r.stdout).nftables) {
      for (const e of o.map?.elem ?? []) {
        const key = JSON.stringify(Array.isArray(e) ? e[0] : e);
        if ((key.match(/\d+/g) ?? []).map(Number).some((x) => x >= lo && x <= hi)) n++;
      }
    }
    return n;
  }

  test(`${MANY} -p mappings: published in one transaction, answered, and gone with the container`, () => {
    const r = sh([TSNET, "run", "-d", "--name", "many-ports", "-p", `20000-${20000 + MANY - 1}:20000-${20000 + MANY - 1}`, "--", "python3", "-m", "http.server", "-b", "0.0.0.0", String(20000 + MANY - 1)]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const id = r.stdout.trim().slice(0, 12);
    expect(elementsOf(id)).toBe(MANY);
    expect(sh([TSNET, "port", "many-ports"]).stdout.trim().split("\n").length).toBe(MANY);
    let answer = "";
    for (let i = 0; i < 100 && !answer.includes("200"); i++) {
      answer = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2", `http://127.0.0.1:${20000 + MANY - 1}/`]).stdout;
      if (!answer.includes("200")) Bun.sleepSync(50);
    }
    expect(answer).toBe("200");
    expect(sh([TSNET, "rm", "-f", "many-ports"]).code).toBe(0);
    expect(elementsOf(id)).toBe(0);
  });

  test(`CNI ADD with ${MANY} portMappings, and its DEL`, () => {
    const bin = mkdtempSync("/run/cni-bin-");
    sh(["cp", TSNET, `${bin}/tsnet`]);
    expect(sh(["ip", "netns", "add", "cni-many"]).code).toBe(0);
    try {
      const portMappings = Array.from({ length: MANY }, (_, i) => ({ hostPort: 40000 + i, containerPort: 80, protocol: "tcp" }));
      const conf = JSON.stringify({ cniVersion: "1.0.0", name: "many", type: "tsnet", runtimeConfig: { portMappings } });
      const env = { CNI_CONTAINERID: "many-ports-pod", CNI_NETNS: "/run/netns/cni-many", CNI_IFNAME: "eth0", CNI_PATH: bin };
      const add = sh([`${bin}/tsnet`], { stdin: conf, env: { ...env, CNI_COMMAND: "ADD" } });
      expect({ code: add.code, stderr: add.stderr }).toEqual({ code: 0, stderr: "" });
      expect(keysIn(40000, 40000 + MANY - 1)).toBe(MANY);
      const del = sh([`${bin}/tsnet`], { stdin: conf, env: { ...env, CNI_COMMAND: "DEL" } });
      expect({ code: del.code, stderr: del.stderr }).toEqual({ code: 0, stderr: "" });
      expect(keysIn(40000, 40000 + MANY - 1)).toBe(0);
    } finally {
      sh(["ip", "netns", "del", "cni-many"]);
      rmSync(bin, { recursive: true, force: true });
    }
  });

  test("a FIFO as CNI_NETNS fails at once, in one line naming it", () => {
    const dir = mkdtempSync("/run/fifo-");
    expect(sh(["mkfifo", `${dir}/ns`]).code).toBe(0);
    const started = Date.now();
    const p = Bun.spawnSync([TSNET], {
      stdin: new TextEncoder().encode(JSON.stringify({ cniVersion: "1.0.0", name: "fifo", type: "tsnet" })),
      env: { ...process.env, CNI_COMMAND: "ADD", CNI_CONTAINERID: "fifo", CNI_NETNS: `${dir}/ns`, CNI_IFNAME: "eth0", CNI_PATH: "/nonexistent" },
      timeout: 10_000,
    });
    const took = Date.now() - started;
    rmSync(dir, { recursive: true, force: true });
    expect(p.signalCode ?? null).toBeNull();
    expect(took).toBeLessThan(10_000);
    expect(p.exitCode).not.toBe(0);
    const out = JSON.parse(p.stdout.toString());
    expect(out.code).toBe(4); // ERR_INVALID_ENV
    expect(out.msg).toContain(`invalid CNI_NETNS "${dir}/ns": it is a FIFO`);
  });

  test("a full bridge: one line that names the network and what to do; nothing is left", () => {
    expect(sh([TSNET, "network", "create", "fullnet"]).code).toBe(0);
    expect(sh([TSNET, "run", "--rm", "--network", "fullnet", "--", "true"]).code).toBe(0);
    const bridge = sh([TSNET, "network", "inspect", "-f", '{{index .Options "com.docker.network.bridge.name"}}', "fullnet"]).stdout.trim();
    expect(bridge).toMatch(/^tsnet-/);
    // Fill it with the test's own veths, up to the kernel's 1,023 ports. Their other ends live in
    // a namespace of the test's, whose deletion takes all of them at once (deleting 1,023 links
    // one by one would wait for 1,023 RCU grace periods).
    expect(sh(["ip", "netns", "add", "fill"]).code).toBe(0);
    const lines: string[] = [];
    for (let i = 0; i < 1023; i++) lines.push(`link add fx${i} master ${bridge} type veth peer name fy${i} netns fill`);
    writeFileSync("/run/fill-bridge", `${lines.join("\n")}\n`);
    expect(sh(["ip", "-batch", "/run/fill-bridge"]).code).toBe(0);
    try {
      const before = sh(["ls", "/run/tsnet/containers"]).stdout;
      const r = sh([TSNET, "run", "--rm", "--network", "fullnet", "--", "true"]);
      expect(r.code).toBe(125);
      expect(r.stderr).toBe(`tsnet: network fullnet is full: its bridge ${bridge} has 1023 ports, the most a Linux bridge takes: put further containers on another network (tsnet network create)\n`);
      expect(sh(["ls", "/run/tsnet/containers"]).stdout).toBe(before);
    } finally {
      sh(["ip", "netns", "del", "fill"]);
      for (let i = 0; i < 500 && sh(["ip", "link", "show", "fx0"]).code === 0; i++) Bun.sleepSync(20);
      expect(sh([TSNET, "network", "rm", "fullnet"]).code).toBe(0);
    }
  });
});
