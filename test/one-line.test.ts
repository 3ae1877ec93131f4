// One line, always (issue 9, item 7): a full or read-only file system, odd references and
// missing privileges each give one precise line on stderr naming the operation and the path, with
// Docker's exit codes (125 tsnet failed, 1 no such container), and leave nothing behind.
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { TSNET, assertThrowawayHost, sh, tsnet } from "./helpers.ts";
import { NestedHost } from "./nested-host.ts";

beforeAll(() => assertThrowawayHost());

let hosts: NestedHost[] = [];
afterEach(async () => {
  for (const h of hosts) await h.close();
  hosts = [];
});
async function host(): Promise<NestedHost> {
  const h = await NestedHost.start();
  hosts.push(h);
  return h;
}

/** Nothing of a container is left: no record, name, liveness file, namespace or veth. */
function expectNothingLeft(h: NestedHost) {
  expect(h.must("ls -A /run/tsnet/containers /run/tsnet/names /run/tsnet/managers 2>/dev/null || true")).not.toMatch(/[0-9a-f]{64}|^[a-z]+_[a-z]+(_[0-9]+)?$/m);
  expect(h.must("ls -A /run/netns 2>/dev/null || true")).toBe("");
  expect(h.must("ip -o link show type veth | wc -l")).toBe("0\n");
}

const ENOSPC_LINE = (file: string, root: string) =>
  new RegExp(`^tsnet: write ${file}: ENOSPC \\(no space left on device\\): free space on the file system holding ${root}\\n$`);

describe("a full or read-only file system", () => {
  test("ENOSPC on /run/tsnet: run, run -d and run -p name the file they could not write, exit 125, and leave nothing", async () => {
    const h = await host();
    h.must("mkdir -m 0700 /run/tsnet && mount -t tmpfs -o size=64k,mode=0700 tsnet-full /run/tsnet; dd if=/dev/zero of=/run/tsnet/fill bs=4k count=16 2>/dev/null || true");
    for (const args of [["run", "--rm", "--", "true"], ["run", "-d", "--", "true"], ["run", "--rm", "--name", "web", "-p", "8080:80", "--", "true"]]) {
      const r = h.tsnet(args);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 125, stdout: "" });
      expect(r.stderr).toMatch(ENOSPC_LINE("/run/tsnet/containers/[0-9a-f]{64}\\.json", "/run/tsnet"));
    }
    expectNothingLeft(h);
    // The stack only for whoever debugs tsnet: the same first line, then where it came from.
    const debug = h.tsnet(["run", "--rm", "--", "true"], { env: { TSNET_DEBUG: "1" } });
    const [first, ...rest] = debug.stderr.trimEnd().split("\n");
    expect(`${first}\n`).toMatch(ENOSPC_LINE("/run/tsnet/containers/[0-9a-f]{64}\\.json", "/run/tsnet"));
    expect(rest.some((l) => /^\s+at /.test(l))).toBe(true);
    // With space again, the same command works.
    h.must("rm /run/tsnet/fill");
    expect(h.tsnet(["run", "--rm", "--", "true"]).code).toBe(0);
  });

  test("ENOSPC on the state directory: network create names the record, exit 125", async () => {
    const h = await host();
    h.must("mkdir -m 0700 /run/full-state && mount -t tmpfs -o size=16k,mode=0700 full-state /run/full-state; dd if=/dev/zero of=/run/full-state/fill bs=4k count=8 2>/dev/null || true");
    const r = h.tsnet(["network", "create", "foo"], { env: { TSNET_STATE_DIR: "/run/full-state" } });
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 125, stdout: "" });
    expect(r.stderr).toMatch(ENOSPC_LINE("/run/full-state/networks/[a-z]+\\.[0-9a-f]{64}\\.json", "/run/full-state"));
    expect(h.must("ip -o link show type bridge | wc -l")).toBe("0\n");
  });

  test("a read-only state directory: run and network commands say so in one line, exit 125, and leave nothing", async () => {
    const h = await host();
    h.must("mkdir -m 0700 /run/ro-state && mount -t tmpfs -o ro,mode=0700 ro-state /run/ro-state");
    const env = { TSNET_STATE_DIR: "/run/ro-state" };
    const want = {
      code: 125, stdout: "",
      stderr: "tsnet: make directory /run/ro-state/networks: EROFS (read-only file system): make /run/ro-state writable, or set TSNET_STATE_DIR to a writable directory\n",
    };
    for (const args of [["run", "--rm", "--", "true"], ["run", "-d", "--name", "web", "--", "true"], ["network", "create", "foo"], ["network", "ls"]]) {
      expect({ args, ...h.tsnet(args, { env }) }).toEqual({ args, ...want });
    }
    expectNothingLeft(h);
  });

  test("a read-only /run/tsnet: one line naming the directory, exit 125", async () => {
    const h = await host();
    h.must("mkdir -m 0700 /run/tsnet && mount -t tmpfs -o ro,mode=0700 ro-run /run/tsnet");
    expect(h.tsnet(["run", "--rm", "--", "true"])).toEqual({
      code: 125, stdout: "",
      stderr: "tsnet: make directory /run/tsnet/locks: EROFS (read-only file system): make /run/tsnet writable\n",
    });
  });
});

describe("references a name cannot be: no such container, exit 1", () => {
  const long = "a".repeat(300);
  const odd = [long, "a\nb", "web\n", "\u001b[2Jx", "a b", "-", ".", "..", "é"];
  const shown = (ref: string) => ref.replace("\n", "\\n").replace("\u001b", "\\x1b");

  test("logs, inspect, stop, rm, top, exec", () => {
    for (const ref of odd) {
      const none = { code: 1, stderr: `tsnet: no such container: ${shown(ref)}\n` };
      for (const cmd of [["logs"], ["stop"], ["rm"], ["rm", "-f"], ["top"], ["exec"]]) {
        const args = cmd[0] === "exec" ? [...cmd, ref, "--", "true"] : [...cmd, "--", ref];
        expect({ args, ...tsnet(args) }).toEqual({ args, ...none, stdout: "" });
      }
      expect({ ref, ...tsnet(["inspect", "--", ref]) }).toEqual({ ref, ...none, stdout: "[]\n" });
    }
  });

  test("run --name and network create refuse a name with a newline in one line, exit 125", () => {
    expect(tsnet(["run", "--rm", "--name", "a\nb", "--", "true"])).toEqual({
      code: 125, stdout: "",
      stderr: "tsnet: invalid container name \"a\\nb\": use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit\n",
    });
    expect(tsnet(["network", "create", "a\nb"])).toEqual({
      code: 125, stdout: "",
      stderr: "tsnet: invalid network name \"a\\nb\": use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit\n",
    });
    expect(tsnet(["network", "inspect", "a\nb"])).toEqual({ code: 1, stdout: "[]\n", stderr: "tsnet: no such network: a\\nb (see tsnet network ls)\n" });
  });
});

describe("without root", () => {
  test("run --network host and the object commands: one line each, exit 125", () => {
    const nobody = (args: string[]) => sh(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TSNET, ...args]);
    expect(nobody(["run", "--rm", "--network", "host", "--", "true"])).toEqual({
      code: 125, stdout: "",
      stderr: "tsnet: tsnet run --network host needs root (it records the container under /run/tsnet, which is root's): run it as root, e.g. sudo tsnet run --rm --network host -- true\n",
    });
    for (const args of [["run", "-d", "--network", "host", "--", "true"], ["logs", "a".repeat(300)], ["network", "create", "x"]]) {
      const r = nobody(args);
      expect({ args, code: r.code, stdout: r.stdout, lines: r.stderr.split("\n").length }).toEqual({ args, code: 125, stdout: "", lines: 2 });
      expect(r.stderr).toMatch(/^tsnet: .* needs root \(/);
    }
  });
});
