// A host inside the throwaway host: mount and network namespaces of its own with a fresh tmpfs on
// /run, so a test can shape /run (a 1777 /run, a /run/tsnet someone else made first, a full
// /run/tsnet) and start from no tsnet state at all, without touching the other tests' state.
// Commands run in it through nsenter; the tests' PID namespace is shared.
import { TSNET, type Result } from "./helpers.ts";

export interface RunOptions {
  env?: Record<string, string>;
  stdin?: string;
  /** Kill the command after this long (a hang fails the test instead of the suite). */
  timeoutMs?: number;
}

export class NestedHost {
  private readonly proc: Bun.Subprocess<"ignore", "pipe", "inherit">;

  private constructor(runMode: string) {
    this.proc = Bun.spawn(
      ["unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-c",
        `mount -t tmpfs -o mode=${runMode} nested-run /run && ip link set lo up && echo ready && exec sleep infinity`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
  }

  /** A nested host whose /run has the given mode (1777: anyone may create /run/tsnet first). */
  static async start(runMode = "755"): Promise<NestedHost> {
    const h = new NestedHost(runMode);
    const reader = h.proc.stdout.getReader();
    let text = "";
    while (!text.includes("ready\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the nested host did not start");
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    return h;
  }

  get pid(): number {
    return this.proc.pid;
  }

  run(cmd: string[], o: RunOptions = {}): Result {
    const p = Bun.spawnSync(["nsenter", "-t", String(this.pid), "-m", "-n", "--", ...cmd], {
      stdin: o.stdin === undefined ? "ignore" : new TextEncoder().encode(o.stdin),
      env: { ...process.env, ...o.env },
      timeout: o.timeoutMs,
    });
    const code = p.exitCode ?? 128 + (p.signalCode === "SIGTERM" ? 15 : 9);
    return { code, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  }

  tsnet(args: string[], o: RunOptions = {}): Result {
    return this.run([TSNET, ...args], o);
  }

  /** A shell script run as nobody (uid 65534), failing the test if it fails. */
  asNobody(script: string, env: Record<string, string> = {}): string {
    const r = this.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-ec", script], { env });
    if (r.code !== 0) throw new Error(`as nobody: ${script}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** A shell script run as root, failing the test if it fails. */
  must(script: string, env: Record<string, string> = {}): string {
    const r = this.run(["sh", "-ec", script], { env });
    if (r.code !== 0) throw new Error(`${script}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  async close(): Promise<void> {
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }
}
