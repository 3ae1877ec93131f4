// `npm run release` (which npm test runs before entering the sandbox, since fetching Bun's arm64
// runtime needs the npm registry): executables for linux x64 and arm64, their archives, and the
// checksums of all four. The arm64 one is run under qemu-user, with Debian's arm64 C library as
// its root (which has no libmnl: the executable's own copy is the only one it can load).
import { beforeAll, describe, expect, test } from "bun:test";
import { openSync, readSync, closeSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { TSNET, assertThrowawayHost, sh } from "./helpers.ts";

const DIST = resolve(import.meta.dir, "../dist");
const VERSION = (JSON.parse(readFileSync(resolve(import.meta.dir, "../package.json"), "utf8")) as { version: string }).version;
const arm64 = (args: string[]) => sh(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", `${DIST}/tsnet-linux-arm64`, ...args]);
const SUBREAPER_WARNING =
  "tsnet: warning: prctl PR_SET_CHILD_SUBREAPER: EINVAL (qemu-user, or a kernel before 3.4): a container's orphaned processes are reaped by init instead of tsnet\n";

/**
 * Runs `script` (bash) in a mount namespace of its own where every libmnl.so.0* of the system is
 * an empty file: nothing named libmnl.so.0 can be loaded from disk there.
 */
function withoutSystemLibmnl(script: string): ReturnType<typeof sh> {
  return sh([
    "unshare", "--mount", "--propagation", "private", "--", "bash", "-c",
    `set -e; empty=$(mktemp); for f in /usr/lib/*/libmnl.so.0* /usr/aarch64-linux-gnu/lib/libmnl.so.0*; do [[ -e $f ]] && mount --bind "$empty" "$f"; done; ${script}`,
  ]);
}

/** One word for bash, whatever it holds. */
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Run in a container: the files libmnl is mapped from in its tsnet (the parent's /proc/PID/maps). */
const MAPS = "grep libmnl /proc/$PPID/maps | sed -E 's/^([^ ]+ +){5}//' | sort -u";

/** e_machine of an ELF file: 62 is x86-64, 183 AArch64. */
function elfMachine(path: string): number {
  const fd = openSync(path, "r");
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  expect(b.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  return b.readUInt16LE(18);
}

beforeAll(() => assertThrowawayHost());

describe("npm run release", () => {
  const archives = ["x64", "arm64"].map((a) => `tsnet-${VERSION}-linux-${a}.tar.xz`);

  test("SHA256SUMS names both executables and both archives, and sha256sum -c agrees", () => {
    const sums = readFileSync(`${DIST}/SHA256SUMS`, "utf8");
    const names = ["tsnet-linux-x64", "tsnet-linux-arm64", ...archives];
    expect(sums).toMatch(new RegExp(`^${names.map((n) => `[0-9a-f]{64} {2}${n.replaceAll(".", "\\.")}\n`).join("")}$`));
    const check = sh(["bash", "-c", `cd ${DIST} && sha256sum -c SHA256SUMS`]);
    expect(check).toEqual({ code: 0, stdout: names.map((n) => `${n}: OK\n`).join(""), stderr: "" });
  });

  test("each archive holds the executable, README.md and the licence notices, libmnl's among them", () => {
    for (const arch of ["x64", "arm64"]) {
      const name = `tsnet-${VERSION}-linux-${arch}`;
      const tarball = `${DIST}/${name}.tar.xz`;
      // Decompressed once (xz is most of the time this takes), then listed and unpacked.
      const dir = mkdtempSync("/tmp/release-");
      expect(sh(["bash", "-c", `xz -dc ${quote(tarball)} > ${quote(`${dir}/${name}.tar`)}`])).toEqual({ code: 0, stdout: "", stderr: "" });
      const list = sh(["tar", "-tf", `${dir}/${name}.tar`]);
      expect(list.code).toBe(0);
      expect(list.stdout.split("\n").filter(Boolean).sort()).toEqual(
        [`${name}/`, `${name}/LICENSE`, `${name}/LICENSES/`, `${name}/LICENSES/LGPL-2.1`, `${name}/LICENSES/libmnl.copyright`, `${name}/README.md`, `${name}/tsnet`].sort(),
      );
      expect(sh(["tar", "-xf", `${dir}/${name}.tar`, "-C", dir]).code).toBe(0);
      const member = (m: string) => readFileSync(`${dir}/${name}/${m}`, "utf8");
      // The executable in the archive is the bare file, byte for byte, and as executable.
      expect(readFileSync(`${dir}/${name}/tsnet`).equals(readFileSync(`${DIST}/tsnet-linux-${arch}`))).toBe(true);
      expect(statSync(`${dir}/${name}/tsnet`).mode & 0o777).toBe(0o755);
      expect(member("README.md")).toBe(readFileSync(resolve(import.meta.dir, "../README.md"), "utf8"));
      expect(member("LICENSES/libmnl.copyright")).toBe(readFileSync("/usr/share/doc/libmnl0/copyright", "utf8"));
      expect(member("LICENSES/LGPL-2.1")).toBe(readFileSync("/usr/share/common-licenses/LGPL-2.1", "utf8"));
      const notice = member("LICENSE");
      expect(notice).toContain(`tsnet ${VERSION}`);
      expect(notice).toContain("GNU Lesser General Public License 2.1");
      expect(notice).toContain(`TSNET_LIBMNL_${arch.toUpperCase()}=/path/to/libmnl.so.0 npm run release`);
      expect(notice).toMatch(new RegExp(`Debian's libmnl0 \\S+ \\(${arch === "x64" ? "amd64" : "arm64"}\\)`));
      rmSync(dir, { recursive: true });
    }
  });

  test("x64: a container runs where no libmnl.so.0 is on disk, with libmnl mapped from a memfd", () => {
    const r = withoutSystemLibmnl(
      `python3 -c 'import ctypes; ctypes.CDLL("libmnl.so.0")' 2>/dev/null && echo "libmnl.so.0 still loads"; ` +
        `exec ${DIST}/tsnet-linux-x64 run --rm -- bash -c ${quote(MAPS)}`,
    );
    expect(r).toEqual({ code: 0, stdout: "/memfd:libmnl.so.0 (deleted)\n", stderr: "" });
  });

  test("x64: an x86-64 executable reporting the same version and commit as dist/tsnet", () => {
    expect(elfMachine(`${DIST}/tsnet-linux-x64`)).toBe(62);
    const want = sh([TSNET, "--version"]);
    expect(want.stdout).toMatch(/^tsnet version \S+, build [0-9a-f]{12}/);
    expect(sh([`${DIST}/tsnet-linux-x64`, "--version"])).toEqual(want);
  });

  test("arm64: under qemu-user a container starts (its own libmnl, a warning for the subreaper)", () => {
    // Debian's arm64 C library root has no libmnl; the system's x86-64 copy is hidden too.
    const r = withoutSystemLibmnl(
      `exec qemu-aarch64 -L /usr/aarch64-linux-gnu ${DIST}/tsnet-linux-arm64 run --rm --network none -- bash -c ${quote(MAPS)}`,
    );
    expect(r).toEqual({ code: 0, stdout: "/memfd:libmnl.so.0 (deleted)\n", stderr: SUBREAPER_WARNING });
    expect(arm64(["run", "--rm", "--network", "none", "--", "true"])).toEqual({ code: 0, stdout: "", stderr: SUBREAPER_WARNING });
  });

  test("arm64: what qemu-user cannot do fails in one line and leaves nothing", () => {
    const links = () => sh(["ip", "-br", "link"]).stdout;
    const before = links();
    // qemu-user refuses nf_tables netlink sockets itself.
    const bridge = arm64(["run", "--rm", "-p", "8080:80", "--", "true"]);
    expect(bridge.code).toBe(125);
    expect(bridge.stderr).toStartWith(SUBREAPER_WARNING);
    expect(bridge.stderr.slice(SUBREAPER_WARNING.length)).toMatch(/^tsnet: socket nf_tables: EPROTONOSUPPORT .*qemu-user passes no nf_tables netlink.*\n$/);
    expect(links()).toBe(before);
    // Without binfmt_misc, tsnet under qemu cannot start itself again (the supervisor of -d).
    const detached = arm64(["run", "-d", "--network", "none", "--", "sleep", "5"]);
    expect(detached).toEqual({
      code: 125,
      stdout: "",
      stderr: `tsnet: the tsnet supervisor exited with status 127 before it answered (127: ${DIST}/tsnet-linux-arm64 could not be started again; under qemu-user, only binfmt_misc makes that possible): see /run/tsnet/supervisor.log\n`,
    });
    expect(arm64(["ps", "-a", "-q"])).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("arm64: an AArch64 executable that runs (under qemu) and reports the same version", () => {
    expect(elfMachine(`${DIST}/tsnet-linux-arm64`)).toBe(183);
    expect(statSync(`${DIST}/tsnet-linux-arm64`).mode & 0o111).toBe(0o111);
    expect(arm64(["--version"])).toEqual(sh([TSNET, "--version"]));
    expect(arm64(["help", "ps"])).toEqual(sh([TSNET, "help", "ps"]));
  });
});
