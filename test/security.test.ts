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
