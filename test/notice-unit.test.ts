// Messages are never throttled (issue 17, part 4): consola, left to its defaults, holds back a
// message repeated within a second after its fifth time, so eight identical warnings printed six.
import { expect, test } from "bun:test";
import { resolve } from "node:path";

test("8 identical warnings print 8 lines, each at once", () => {
  const notice = resolve(import.meta.dir, "../src/errors/notice.ts");
  const script = `import { warn } from ${JSON.stringify(notice)}; for (let i = 0; i < 8; i++) warn("the same warning");`;
  const p = Bun.spawnSync([process.execPath, "-e", script], { stderr: "pipe", stdout: "pipe" });
  expect(p.exitCode).toBe(0);
  expect(p.stderr.toString()).toBe("tsnet: warning: the same warning\n".repeat(8));
});
