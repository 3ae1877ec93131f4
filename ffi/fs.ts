// Synchronous file calls straight through libc, under node:fs's names and with the part of its
// semantics tsnet uses (a failure is an Error carrying node's `code`, `errno`, `syscall` and
// `path`). Why not node:fs: Bun builds that module on first import, which costs 1.2 ms in every
// process that loads it (measured: a CNI VERSION call takes 7.9 ms with it, 6.7 without), a tenth
// of a CNI ADD. The modules on the CNI plugin's path import these instead; test/unit.test.ts holds
// that path to it.
import { CString, dlopen, FFIType, type Pointer } from "bun:ffi";
import { errnoName } from "../src/errors/errno.ts";
import { close, errno, strerror } from "./libc.ts";

const { i32, u32, i64, u64, ptr } = FFIType;

// Opened in two groups on first use, as libc.ts does (dlopen compiles a trampoline per symbol):
// reading and writing files, and listing directories.
let files: ReturnType<typeof openFiles> | undefined;
function openFiles() {
  return dlopen("libc.so.6", {
    open: { args: [ptr, i32, u32], returns: i32 },
    read: { args: [i32, ptr, u64], returns: i64 },
    write: { args: [i32, ptr, u64], returns: i64 },
    rename: { args: [ptr, ptr], returns: i32 },
    unlink: { args: [ptr], returns: i32 },
    mkdir: { args: [ptr, u32], returns: i32 },
    access: { args: [ptr, i32], returns: i32 },
    readlink: { args: [ptr, ptr, u64], returns: i64 },
  }).symbols;
}
let dirs: ReturnType<typeof openDirs> | undefined;
function openDirs() {
  return dlopen("libc.so.6", {
    opendir: { args: [ptr], returns: ptr },
    readdir64: { args: [ptr], returns: ptr },
    closedir: { args: [ptr], returns: i32 },
  }).symbols;
}
const libc = () => (files ??= openFiles());
const libcDirs = () => (dirs ??= openDirs());

// fcntl.h: the same numbers on x86_64 and arm64 (asm-generic) for these flags.
const O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000, O_APPEND = 0o2000, O_CLOEXEC = 0o2000000;
const EINTR = 4, EEXIST = 17;
export const constants = { F_OK: 0, X_OK: 1, W_OK: 2, R_OK: 4 } as const;

function z(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

/** The Error node:fs would throw for this call, errno read right after it. */
function fail(syscall: string, path?: string): never {
  const e = errno();
  const code = errnoName(e);
  throw Object.assign(new Error(`${code}: ${strerror(e)}, ${syscall}${path === undefined ? "" : ` '${path}'`}`), { code, errno: -e, syscall, path });
}

const FLAGS: Record<string, number> = {
  r: O_RDONLY,
  w: O_WRONLY | O_CREAT | O_TRUNC,
  wx: O_WRONLY | O_CREAT | O_EXCL,
  a: O_WRONLY | O_CREAT | O_APPEND,
};

export function openSync(path: string, flags: "r" | "w" | "wx" | "a" = "r", mode = 0o666): number {
  const fd = libc().open(z(path), FLAGS[flags]! | O_CLOEXEC, mode);
  if (fd < 0) fail("open", path);
  return fd;
}

export function closeSync(fd: number): void {
  close(fd);
}

/** Writes all of it (retrying short writes and EINTR); the bytes written. */
export function writeSync(fd: number, data: Uint8Array, offset = 0, length = data.length - offset): number {
  let done = 0;
  while (done < length) {
    const n = Number(libc().write(fd, data.subarray(offset + done, offset + length), length - done));
    if (n < 0) {
      if (errno() === EINTR) continue;
      fail("write");
    }
    done += n;
  }
  return done;
}

/** The whole file (or what a descriptor yields until end of file) as UTF-8 text. */
export function readFileSync(path: string | number, _encoding: "utf8"): string {
  const fd = typeof path === "number" ? path : openSync(path, "r");
  try {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const buf = new Uint8Array(size < 65536 ? 4096 : 65536);
      const n = Number(libc().read(fd, buf, buf.length));
      if (n < 0) {
        if (errno() === EINTR) continue;
        fail("read", typeof path === "string" ? path : undefined);
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      size += n;
    }
    return Buffer.concat(chunks, size).toString("utf8");
  } finally {
    if (typeof path === "string") close(fd);
  }
}

export function writeFileSync(path: string, data: string | Uint8Array, options: { flag?: "w" | "wx" | "a"; mode?: number } = {}): void {
  const fd = openSync(path, options.flag ?? "w", options.mode ?? 0o666);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data, "utf8") : data);
  } finally {
    close(fd);
  }
}

export function renameSync(from: string, to: string): void {
  if (libc().rename(z(from), z(to)) < 0) fail("rename", from);
}

export function unlinkSync(path: string): void {
  if (libc().unlink(z(path)) < 0) fail("unlink", path);
}

/** mkdir; with `recursive`, every missing parent too, and an existing directory is no error. */
export function mkdirSync(path: string, options: { recursive?: boolean; mode?: number } = {}): void {
  const mode = options.mode ?? 0o777;
  if (!options.recursive) {
    if (libc().mkdir(z(path), mode) < 0) fail("mkdir", path);
    return;
  }
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join("/");
    if (p === "" || p === ".") continue;
    if (libc().mkdir(z(p), mode) < 0 && errno() !== EEXIST) fail("mkdir", p);
  }
}

export function accessSync(path: string, mode: number = constants.F_OK): void {
  if (libc().access(z(path), mode) < 0) fail("access", path);
}

export function readlinkSync(path: string): string {
  const buf = new Uint8Array(4096);
  const n = Number(libc().readlink(z(path), buf, buf.length));
  if (n < 0) fail("readlink", path);
  return Buffer.from(buf.subarray(0, n)).toString("utf8");
}

// struct dirent64 (x86_64 and arm64 alike): | d_ino u64 | d_off i64 | d_reclen u16 | d_type u8 | d_name[] @19 |
const D_NAME = 19;

/** The names in a directory, without "." and "..". */
export function readdirSync(path: string): string[] {
  const dir = libcDirs().opendir(z(path)) as Pointer | null;
  if (dir === null) fail("opendir", path);
  try {
    const out: string[] = [];
    for (;;) {
      const ent = libcDirs().readdir64(dir) as Pointer | null;
      if (ent === null) break;
      const name = new CString(ent, D_NAME).toString();
      if (name !== "." && name !== "..") out.push(name);
    }
    return out;
  } finally {
    libcDirs().closedir(dir);
  }
}

