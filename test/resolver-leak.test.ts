// The container resolver's leak test, apart from test/resolver.test.ts (whose setup it repeats):
// 650 detached containers started, waited for and removed make it the suite's longest test by far,
// and in a file of its own it runs beside the rest of the suite (test/run.ts) instead of after it.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { startUpstream } from "./dns-upstream.ts";
import { TSNET, useNeighbour, managerPid, removeAllContainers, runDetached } from "./helpers.ts";

const dir = mkdtempSync("/tmp/tsnet-resolver-leak-");
chmodSync(dir, 0o755);

useNeighbour();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => removeAllContainers());

const upstream = (delayMs = 0) => startUpstream(dir, delayMs);
const rssKiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

describe("one container cannot starve or kill the others", () => {
  test("400 detached lookups leave the supervisor's memory within 3 MiB of where it was", async () => {
    const up = await upstream();
    try {
      runDetached(["--name", "keeper", "--", "sleep", "600"]);
      const sup = managerPid("keeper");
      const cycles = async (n: number, from: number) => {
        // Eight at a time: run -d, wait, rm, each container looking a name of its own up. Its
        // record carries 32 KiB of environment, so whatever keeps a record past its container
        // shows.
        const one = async (i: number) => {
          const run = Bun.spawn([TSNET, "run", "-d", "-e", `PAD=${"x".repeat(32 * 1024)}`, "--dns", "192.0.2.2", "--", "getent", "hosts", `leak${i}.example.test`], { stdout: "pipe", stderr: "pipe" });
          const id = (await new Response(run.stdout).text()).trim();
          if ((await run.exited) !== 0) throw new Error(`run -d failed: ${await new Response(run.stderr).text()}`);
          await Bun.spawn([TSNET, "wait", id], { stdout: "ignore" }).exited;
          await Bun.spawn([TSNET, "rm", id], { stdout: "ignore" }).exited;
        };
        for (let i = from; i < from + n; i += 8) await Promise.all(Array.from({ length: Math.min(8, from + n - i) }, (_, k) => one(i + k)));
      };
      const settled = async () => {
        // The supervisor collects its garbage 200 ms after a container ends.
        await Bun.sleep(1500);
        return rssKiB(sup);
      };
      // Warm up: code paths compiled, heap grown to its working size. Measured here, the
      // supervisor's RSS grows for the first ~250 detached cycles (54.2 -> 58.2 MB) and then
      // stays within half a MiB across 800 more: a shorter warm-up measures the growth, not a leak.
      await cycles(250, 0);
      const before = await settled();
      await cycles(400, 1000);
      const after = await settled();
      expect(up.asked().filter((a) => a.name.startsWith("leak1")).length).toBeGreaterThanOrEqual(100); // they did look up
      expect(managerPid("keeper")).toBe(sup);
      expect(after - before).toBeLessThan(3 * 1024);
    } finally {
      await up.stop();
    }
  }, 900_000);
});
