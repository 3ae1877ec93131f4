// What the command sees of tsnet: stdio passed through, exit status, signals forwarded.
import { beforeAll, describe, expect, test } from "bun:test";
import { TSNET, assertThrowawayHost, leases, netnsNames, records, tsnet, veths, waitFor } from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

describe("stdio and exit status", () => {
  test("stdin, stdout and stderr pass through untouched", () => {
    const r = tsnet(["run", "--rm", "--", "wc", "-l"], { stdin: "a\nb\n" });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("2");
    const e = tsnet(["run", "--rm", "--", "sh", "-c", "echo out; echo err >&2"]);
    expect(e.stdout).toBe("out\n");
    expect(e.stderr).toBe("err\n");
  });

  test("tsnet exits with the command's status", () => {
    expect(tsnet(["run", "--rm", "--", "sh", "-c", "exit 7"]).code).toBe(7);
    expect(tsnet(["run", "--rm", "--network", "none", "--", "false"]).code).toBe(1);
  });

  test("128+N when signal N killed the command", () => {
    expect(tsnet(["run", "--rm", "--", "sh", "-c", "kill -KILL $$"]).code).toBe(137);
  });

  test("127 when the command is not found, 126 when it cannot be executed; nothing is left", () => {
    const nf = tsnet(["run", "--rm", "--", "no-such-command-here"]);
    expect(nf.code).toBe(127);
    expect(nf.stderr.trim().split("\n").length).toBe(1);
    expect(nf.stderr).toContain("no-such-command-here");
    expect(tsnet(["run", "--rm", "--", "/etc/hostname"]).code).toBe(126);
    expect(veths()).toEqual([]);
    expect(netnsNames()).toEqual([]);
    expect(leases()).toEqual([]);
  });

  test("options end at the first word that is not an option", () => {
    const r = tsnet(["run", "--rm", "--network", "none", "sh", "-c", "echo $0 $1", "--rm", "--network"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("--rm --network");
  });

  test("without --rm the exited container's record stays, with its exit code", () => {
    expect(tsnet(["run", "--name", "kept", "--", "sh", "-c", "exit 3"]).code).toBe(3);
    const rec = records().find((r) => r.name === "kept");
    expect(rec).toMatchObject({ status: "exited", exitCode: 3 });
    expect(veths()).toEqual([]);
    expect(leases()).toEqual([]);
    // The name stays taken while the record exists, as in Docker.
    const again = tsnet(["run", "--name", "kept", "--", "true"]);
    expect(again.code).toBe(125);
    expect(again.stderr).toContain('"kept" is already in use');
  });
});

describe("signals", () => {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const) {
    test(`${sig} to tsnet reaches the command, and everything is cleaned up`, async () => {
      const name = `sig-${sig.toLowerCase()}`;
      // The command reports the signal it got and exits 3, so its status proves delivery.
      const script = `trap 'echo got ${sig.slice(3)}; exit 3' ${sig.slice(3)}; echo ready; while :; do sleep 0.05; done`;
      const p = Bun.spawn([TSNET, "run", "--rm", "--name", name, "--", "sh", "-c", script], { stdout: "pipe", stderr: "pipe" });
      const reader = p.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain("ready");
      await waitFor("record", () => records().find((r) => r.name === name && r.status === "running"));
      p.kill(sig);
      expect(await p.exited).toBe(3);
      const rest = new TextDecoder().decode((await reader.read()).value);
      expect(first + rest).toContain(`got ${sig.slice(3)}`);
      expect(veths()).toEqual([]);
      expect(netnsNames()).toEqual([]);
      expect(records().find((r) => r.name === name)).toBeUndefined();
    });
  }
});
