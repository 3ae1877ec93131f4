// `npm run release` (which npm test runs before entering the sandbox, since fetching Bun's arm64
// runtime needs the npm registry): executables for linux x64 and arm64 with their checksums.
// The arm64 one is run under qemu-user, with Debian's arm64 C library as its root.
import { describe, expect, test } from "bun:test";
import { openSync, readSync, closeSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { TSNET, sh } from "./helpers.ts";

const DIST = resolve(import.meta.dir, "../dist");
const arm64 = (args: string[]) => sh(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", `${DIST}/tsnet-linux-arm64`, ...args]);

/** e_machine of an ELF file: 62 is x86-64, 183 AArch64. */
function elfMachine(path: string): number {
  const fd = openSync(path, "r");
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  expect(b.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  return b.readUInt16LE(18);
}

describe("npm run release", () => {
  test("SHA256SUMS names both executables, and sha256sum -c agrees", () => {
    const sums = readFileSync(`${DIST}/SHA256SUMS`, "utf8");
    expect(sums).toMatch(/^[0-9a-f]{64} {2}tsnet-linux-x64\n[0-9a-f]{64} {2}tsnet-linux-arm64\n$/);
    const check = sh(["bash", "-c", `cd ${DIST} && sha256sum -c SHA256SUMS`]);
    expect(check).toEqual({ code: 0, stdout: "tsnet-linux-x64: OK\ntsnet-linux-arm64: OK\n", stderr: "" });
  });

  test("x64: an x86-64 executable reporting the same version and commit as dist/tsnet", () => {
    expect(elfMachine(`${DIST}/tsnet-linux-x64`)).toBe(62);
    const want = sh([TSNET, "--version"]);
    expect(want.stdout).toMatch(/^tsnet version \S+, build [0-9a-f]{12}/);
    expect(sh([`${DIST}/tsnet-linux-x64`, "--version"])).toEqual(want);
  });

  test("arm64: an AArch64 executable that runs (under qemu) and reports the same version", () => {
    expect(elfMachine(`${DIST}/tsnet-linux-arm64`)).toBe(183);
    expect(statSync(`${DIST}/tsnet-linux-arm64`).mode & 0o111).toBe(0o111);
    expect(arm64(["--version"])).toEqual(sh([TSNET, "--version"]));
    expect(arm64(["help", "ps"])).toEqual(sh([TSNET, "help", "ps"]));
  });
});
