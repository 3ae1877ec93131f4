// ffi/fs.ts against node:fs as the oracle: the same results and the same error shape, and no
// module of the product importing a node: module that costs start-up time.
import { describe, expect, test } from "bun:test";
import * as node from "node:fs";
import { readdirSync as readdirAll } from "node:fs";
import { tmpdir } from "node:os";
import * as fs from "../ffi/fs.ts";

const errorOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    const x = e as NodeJS.ErrnoException;
    return { code: x.code, errno: x.errno, syscall: x.syscall, path: x.path, message: x.message };
  }
  throw new Error("no error");
};

describe("ffi/fs.ts", () => {
  const dir = node.mkdtempSync(`${tmpdir()}/tsnet-fs-`);

  test("stat, lstat and fstat read what node:fs reads", () => {
    node.writeFileSync(`${dir}/f`, "hello");
    node.symlinkSync(`${dir}/f`, `${dir}/l`);
    for (const p of ["/", "/proc/self/stat", "/etc/hostname", dir, `${dir}/f`, `${dir}/l`]) {
      for (const [mine, theirs] of [[fs.statSync(p), node.statSync(p)], [fs.lstatSync(p), node.lstatSync(p)]] as const) {
        expect([mine.mode, mine.uid, mine.gid, mine.size, mine.isDirectory(), mine.isFile(), mine.isSymbolicLink()])
          .toEqual([theirs.mode, theirs.uid, theirs.gid, theirs.size, theirs.isDirectory(), theirs.isFile(), theirs.isSymbolicLink()]);
        expect(Math.abs(mine.mtimeMs - theirs.mtimeMs)).toBeLessThan(0.001);
        expect(mine.ino).toBe(BigInt(theirs.ino));
      }
    }
    const fd = fs.openSync(`${dir}/f`, 0);
    expect(fs.fstatSync(fd).size).toBe(5);
    expect(fs.fstatSync(fd).mtimeNs).toBe(node.statSync(`${dir}/f`, { bigint: true }).mtimeNs);
    fs.closeSync(fd);
    expect(fs.lstatSync(`${dir}/none`, { throwIfNoEntry: false })).toBeUndefined();
  });

  test("directories: readdir (with types), mkdir -p, rm -rf", () => {
    fs.mkdirSync(`${dir}/a/b/c`, { recursive: true, mode: 0o700 });
    fs.mkdirSync(`${dir}/a/b/c`, { recursive: true }); // exists: no error
    fs.writeFileSync(`${dir}/a/b/x`, "x");
    expect(fs.readdirSync(`${dir}/a/b`).sort()).toEqual(readdirAll(`${dir}/a/b`).sort());
    expect(fs.readdirSync(`${dir}/a/b`, { withFileTypes: true }).map((d) => [d.name, d.isDirectory()]).sort())
      .toEqual([["c", true], ["x", false]]);
    // A directory of many entries (more than one getdents buffer) that nothing changes meanwhile;
    // /proc was used once and raced with processes starting and ending between the two reads.
    expect(fs.readdirSync("/usr/bin").sort()).toEqual(readdirAll("/usr/bin").sort());
    fs.rmSync(`${dir}/a`, { recursive: true, force: true });
    expect(node.existsSync(`${dir}/a`)).toBe(false);
    fs.rmSync(`${dir}/a`, { recursive: true, force: true }); // gone: no error with force
    expect(errorOf(() => fs.rmSync(`${dir}/a`))).toMatchObject({ code: "ENOENT" });
  });

  test("namesEndingIn: the names with that ending, across several 64 KiB reads of the directory", () => {
    fs.mkdirSync(`${dir}/many`);
    // 3,000 entries of 70-odd bytes: more than one getdents64 buffer.
    for (let i = 0; i < 1000; i++) {
      const id = i.toString(16).padStart(64, "0");
      fs.writeFileSync(`${dir}/many/${id}.json`, "{}");
      fs.writeFileSync(`${dir}/many/${id}.spec`, "");
      fs.mkdirSync(`${dir}/many/${id}`);
    }
    fs.writeFileSync(`${dir}/many/.json`, ""); // the ending alone is a name too
    const fd = fs.openDirSync(`${dir}/many`);
    try {
      expect(fs.namesEndingIn(fd, ".json", `${dir}/many`).sort()).toEqual(readdirAll(`${dir}/many`).filter((n) => n.endsWith(".json")).sort());
    } finally {
      fs.closeSync(fd);
    }
    fs.rmSync(`${dir}/many`, { recursive: true });
  });

  test("files: write, read (whole, at an offset, bytes), rename, links, realpath", () => {
    fs.writeFileSync(`${dir}/w`, "één\n");
    expect(fs.readFileSync(`${dir}/w`, "utf8")).toBe("één\n");
    expect(fs.readFileSync(`${dir}/w`)).toEqual(node.readFileSync(`${dir}/w`));
    const big = "x".repeat(200_000);
    fs.writeFileSync(`${dir}/big`, big);
    expect(fs.readFileSync(`${dir}/big`, "utf8")).toBe(big);
    const fd = fs.openSync(`${dir}/w`, 0);
    const buf = new Uint8Array(3);
    expect(fs.readSync(fd, buf, 0, 3, 4)).toBe(2);
    expect(Buffer.from(buf.subarray(0, 2)).toString()).toBe("n\n");
    fs.closeSync(fd);
    fs.renameSync(`${dir}/w`, `${dir}/w2`);
    fs.symlinkSync("w2", `${dir}/s`);
    expect(fs.readlinkSync(`${dir}/s`)).toBe("w2");
    expect(fs.realpathSync(`${dir}/s`)).toBe(node.realpathSync(`${dir}/s`));
    expect(fs.existsSync(`${dir}/s`)).toBe(true);
    fs.unlinkSync(`${dir}/s`);
    expect(fs.existsSync(`${dir}/s`)).toBe(false);
  });

  test("readSmallAt: the bytes, undefined when missing, null when larger than the buffer, never through a link", () => {
    node.writeFileSync(`${dir}/small`, "12345");
    node.symlinkSync(`${dir}/small`, `${dir}/link`);
    const d = fs.openDirSync(dir);
    try {
      const buf = new Uint8Array(8);
      expect(fs.readSmallAt(d, "small", buf)).toBe(5);
      expect(Buffer.from(buf.subarray(0, 5)).toString()).toBe("12345");
      expect(fs.readSmallAt(d, "none", buf)).toBeUndefined();
      expect(fs.readSmallAt(d, "small", new Uint8Array(5))).toBeNull();
      expect(errorOf(() => fs.readSmallAt(d, "link", buf))).toMatchObject({ code: "ELOOP" });
    } finally {
      fs.closeSync(d);
    }
  });

  test("errors carry node's code, errno, syscall and path, and its message layout", () => {
    for (const [mine, theirs] of [
      [() => fs.statSync(`${dir}/none`), () => node.statSync(`${dir}/none`)],
      [() => fs.openSync(`${dir}/none`, 0), () => node.openSync(`${dir}/none`, 0)],
      [() => fs.mkdirSync(dir), () => node.mkdirSync(dir)],
      [() => fs.readlinkSync(dir), () => node.readlinkSync(dir)],
      [() => fs.rmdirSync(`${dir}/none`), () => node.rmdirSync(`${dir}/none`)],
    ] as const) {
      const a = errorOf(mine), b = errorOf(theirs);
      expect({ code: a.code, errno: a.errno, syscall: a.syscall, path: a.path }).toEqual({ code: b.code, errno: b.errno, syscall: b.syscall, path: b.path });
      expect(a.message).toMatch(new RegExp(`^${a.code}: [a-z][^,]*, ${a.syscall} '${a.path}'$`));
    }
    node.rmSync(dir, { recursive: true, force: true });
  });
});

describe("start-up cost", () => {
  test("no module of the product imports node:fs, node:os or node:path at the top (ffi/fs.ts instead)", () => {
    const files = [...new Bun.Glob("{src,ffi}/**/*.ts").scanSync({ cwd: `${import.meta.dir}/..` })];
    const offenders = files.filter((f) => /^import [^;]*from "node:(fs|os|path)"/m.test(node.readFileSync(`${import.meta.dir}/../${f}`, "utf8")));
    expect(offenders).toEqual([]);
  });
});
