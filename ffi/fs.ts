// The synchronous file calls tsnet makes, straight through libc, under node:fs's names and with
// the part of node's semantics tsnet relies on: a failure throws an Error carrying `code`
// ("ENOENT"), `errno` (negative, as node's), `syscall` and `path`, with node's message layout
// ("ENOENT: no such file or directory, open '/x'").
//
// Why not node:fs: Bun builds that module on first import, 1.2-2 ms of every process that loads
// it (measured: a compiled hello world 4.1 ms, the same calling existsSync 6.1 ms), a tenth of a
// whole `tsnet run --rm -- true` and of a CNI call. Nothing on a command's usual path imports
// node:fs; test/unit.test.ts holds the bundle to it.
import { FFIType } from "bun:ffi";
import { errnoName } from "../src/errors/errno.ts";
import { O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_TRUNC, O_WRONLY, cstr, errno, group, strerror, waitWritable } from "./libc.ts";

const { i32, u32, i64, u64, ptr } = FFIType;

// Opened in groups on first use, as libc.ts does (dlopen compiles a trampoline per symbol).
const io = group({
  open: { args: [ptr, i32, u32], returns: i32 },
  openat: { args: [i32, ptr, i32, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, ptr, u64], returns: i64 },
  pread: { args: [i32, ptr, u64, i64], returns: i64 },
  write: { args: [i32, ptr, u64], returns: i64 },
  rename: { args: [ptr, ptr], returns: i32 },
  unlink: { args: [ptr], returns: i32 },
  statx: { args: [i32, ptr, i32, u32, ptr], returns: i32 },
});
const dirs = group({
  mkdir: { args: [ptr, u32], returns: i32 },
  rmdir: { args: [ptr], returns: i32 },
  getdents64: { args: [i32, ptr, u64], returns: i64 },
});
const links = group({
  symlink: { args: [ptr, ptr], returns: i32 },
  readlink: { args: [ptr, ptr, u64], returns: i64 },
  realpath: { args: [ptr, ptr], returns: ptr },
  access: { args: [ptr, i32], returns: i32 },
});

// errno.h; sys/stat.h. (fcntl.h's flags come from libc.ts: two of them differ on arm64.)
const EINTR = 4, ENOENT = 2, EEXIST = 17, EISDIR = 21;
const AT_FDCWD = -100, AT_SYMLINK_NOFOLLOW = 0x100, AT_EMPTY_PATH = 0x1000;
const STATX_BASIC_STATS = 0x7ff;
const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFIFO = 0o010000, S_IFCHR = 0o020000,
  S_IFBLK = 0o060000, S_IFSOCK = 0o140000;
const PATH_MAX = 4096;

export const constants = { F_OK: 0, X_OK: 1, W_OK: 2, R_OK: 4 } as const;

/** The Error node:fs would throw for this call; errno is read right after it. */
function fail(syscall: string, path?: string, e = errno()): never {
  const code = errnoName(e);
  const text = strerror(e);
  const lower = text.charAt(0).toLowerCase() + text.slice(1);
  throw Object.assign(new Error(`${code}: ${lower}, ${syscall}${path === undefined ? "" : ` '${path}'`}`), { code, errno: -e, syscall, path });
}

export function openSync(path: string, flags: number, mode = 0o666): number {
  const fd = io().open(cstr(path), flags | O_CLOEXEC, mode);
  if (fd < 0) fail("open", path);
  return fd;
}

export function closeSync(fd: number): void {
  io().close(fd);
}

/** One read (at `position` when given, else at the file offset); the byte count, 0 at its end. */
export function readSync(fd: number, buf: Uint8Array, offset = 0, length = buf.byteLength - offset, position: number | null = null): number {
  for (;;) {
    const into = buf.subarray(offset, offset + length);
    const n = Number(position === null ? io().read(fd, into, length) : io().pread(fd, into, length, position));
    if (n >= 0) return n;
    if (errno() !== EINTR) fail("read");
  }
}

/** One write; the byte count written (it may be short: callers write the rest). */
export function writeSync(fd: number, data: string | Uint8Array, offset = 0, length?: number): number {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const len = length ?? bytes.byteLength - offset;
  if (len === 0) return 0;
  for (;;) {
    const n = Number(io().write(fd, bytes.subarray(offset, offset + len), len));
    if (n >= 0) return n;
    if (errno() !== EINTR) fail("write");
  }
}

/**
 * All of data to fd, waiting for room when it is full: a descriptor inherited from the caller
 * (a pipe, a terminal) may have been made non-blocking by someone else and say EAGAIN.
 */
export function writeAllSync(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === "string" ? Buffer.from(data) : data;
  for (let off = 0; off < buf.byteLength; ) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      waitWritable(fd);
    }
  }
}

function writeAll(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  for (let off = 0; off < bytes.byteLength; ) off += writeSync(fd, bytes, off);
}

function readAll(fd: number, path?: string): Buffer {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const buf = new Uint8Array(size < 65536 ? 4096 : 65536);
    let n: number;
    try {
      n = readSync(fd, buf);
    } catch (e) {
      fail("read", path, -(e as { errno: number }).errno);
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
    size += n;
  }
  return Buffer.concat(chunks, size);
}

/** A whole file (or what a descriptor yields from its offset to its end): text with "utf8", else bytes. */
export function readFileSync(path: string | number): Buffer;
export function readFileSync(path: string | number, encoding: "utf8"): string;
export function readFileSync(path: string | number, encoding?: "utf8"): string | Buffer {
  const fd = typeof path === "number" ? path : openSync(path, O_RDONLY);
  try {
    const b = readAll(fd, typeof path === "string" ? path : undefined);
    return encoding ? b.toString("utf8") : b;
  } finally {
    if (typeof path === "string") closeSync(fd);
  }
}

/** Writes all of data to a descriptor, or to a file made or truncated (0666 before the umask). */
export function writeFileSync(path: string | number, data: string | Uint8Array): void {
  if (typeof path === "number") return writeAll(path, data);
  const fd = openSync(path, O_WRONLY | O_CREAT | O_TRUNC, 0o666);
  try {
    writeAll(fd, data);
  } finally {
    closeSync(fd);
  }
}

export function renameSync(from: string, to: string): void {
  if (io().rename(cstr(from), cstr(to)) < 0) fail("rename", from);
}

export function unlinkSync(path: string): void {
  if (io().unlink(cstr(path)) < 0) fail("unlink", path);
}

export function rmdirSync(path: string): void {
  if (dirs().rmdir(cstr(path)) < 0) fail("rmdir", path);
}

/** mkdir; with `recursive`, every missing parent too, and an existing directory is no error. */
export function mkdirSync(path: string, options: { recursive?: boolean; mode?: number } = {}): void {
  const mode = options.mode ?? 0o777;
  if (!options.recursive) {
    if (dirs().mkdir(cstr(path), mode) < 0) fail("mkdir", path);
    return;
  }
  const parts = path.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join("/");
    if (p === "" || p === ".") continue;
    if (dirs().mkdir(cstr(p), mode) < 0) {
      const e = errno();
      if (e !== EEXIST) fail("mkdir", p, e);
    }
  }
  if (!statSync(path).isDirectory()) fail("mkdir", path, EEXIST);
}

export function symlinkSync(target: string, path: string): void {
  if (links().symlink(cstr(target), cstr(path)) < 0) fail("symlink", path);
}

export function readlinkSync(path: string): string {
  const buf = new Uint8Array(PATH_MAX);
  const n = Number(links().readlink(cstr(path), buf, buf.byteLength));
  if (n < 0) fail("readlink", path);
  return Buffer.from(buf.buffer, 0, n).toString("utf8");
}

export function realpathSync(path: string): string {
  const buf = new Uint8Array(PATH_MAX);
  if (links().realpath(cstr(path), buf) === null) fail("realpath", path);
  return Buffer.from(buf.buffer, 0, buf.indexOf(0)).toString("utf8");
}

export function accessSync(path: string, mode: number = constants.F_OK): void {
  if (links().access(cstr(path), mode) < 0) fail("access", path);
}

export function existsSync(path: string): boolean {
  return links().access(cstr(path), constants.F_OK) === 0;
}

/** A directory's fd, for readSmallAt; close it with closeSync. */
export function openDirSync(path: string): number {
  const fd = io().open(cstr(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) fail("opendir", path);
  return fd;
}

/**
 * Reads a small file of a directory whole into buf, without the runtime's file machinery (`ps`
 * reads thousands of records): openat (never through a symbolic link), one pread, close. Returns
 * the byte count, undefined when the file does not exist, or null when it does not fit in buf
 * (read it another way). check, given the open file's stat, throws to refuse it unread.
 */
export function readSmallAt(dirfd: number, name: string, buf: Uint8Array, check?: (st: Stats) => void): number | undefined | null {
  // O_NONBLOCK: a FIFO planted here opens at once (and fails check) instead of blocking.
  const fd = io().openat(dirfd, cstr(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    if (e === ENOENT) return undefined;
    fail("open", name, e);
  }
  try {
    check?.(fstatSync(fd));
    const n = Number(io().pread(fd, buf, buf.byteLength, 0));
    if (n < 0) fail("read", name);
    return n === buf.byteLength ? null : n;
  } finally {
    io().close(fd);
  }
}

// struct linux_dirent64, as getdents64 fills the buffer with them, back to back:
//   | d_ino u64 | d_off i64 | d_reclen u16 | d_type u8 | d_name (NUL-terminated, padded to d_reclen) |
const D_RECLEN = 16, D_TYPE = 18, D_NAME = 19, DT_DIR = 4;
// One buffer for every listing: a state directory of 5,000 containers holds 30,000 entries, and
// one getdents64 call per 64 KiB of them costs far less than a libc readdir call per entry.
const DENTS = new Uint8Array(65536);
const DV = new DataView(DENTS.buffer);
const latin = new TextDecoder("utf-8");

export interface Dirent {
  name: string;
  isDirectory(): boolean;
}

/** The names in a directory, without "." and ".."; with withFileTypes, entries that say whether they are directories. */
export function readdirSync(path: string): string[];
export function readdirSync(path: string, options: { withFileTypes: true }): Dirent[];
export function readdirSync(path: string, options?: { withFileTypes: true }): string[] | Dirent[] {
  const fd = openDirSync(path);
  const names: string[] = [];
  const types: number[] = [];
  try {
    scanDir(fd, path, (at, end) => {
      const name = latin.decode(DENTS.subarray(at + D_NAME, end));
      if (name === "." || name === "..") return;
      names.push(name);
      types.push(DENTS[at + D_TYPE]!);
    });
  } finally {
    closeSync(fd);
  }
  if (!options?.withFileTypes) return names;
  return names.map((name, i) => ({ name, isDirectory: () => types[i] === DT_DIR }));
}

/**
 * The names in the directory open at dirfd (just opened: it is read from where it stands) that
 * end in suffix, an ASCII string. The bytes are compared before a name becomes a string, so `ps`
 * of 5,000 containers makes 5,000 strings out of a directory of 15,000 entries.
 */
export function namesEndingIn(dirfd: number, suffix: string, path: string): string[] {
  const tail = Uint8Array.from(suffix, (c) => c.charCodeAt(0));
  const names: string[] = [];
  scanDir(dirfd, path, (at, end) => {
    const from = end - tail.length;
    if (from < at + D_NAME) return;
    for (let i = 0; i < tail.length; i++) if (DENTS[from + i] !== tail[i]) return;
    names.push(latin.decode(DENTS.subarray(at + D_NAME, end)));
  });
  return names;
}

/** Calls entry(offset, end of name) for each entry of the directory at fd, 64 KiB of them per getdents64. */
function scanDir(fd: number, path: string, entry: (at: number, end: number) => void): void {
  for (;;) {
    const n = Number(dirs().getdents64(fd, DENTS, DENTS.byteLength));
    if (n < 0) {
      if (errno() === EINTR) continue;
      fail("scandir", path);
    }
    if (n === 0) return;
    for (let at = 0; at < n; at += DV.getUint16(at + D_RECLEN, true)) entry(at, DENTS.indexOf(0, at + D_NAME));
  }
}

/** rm -r (recursive) and -f (force: a missing path is no error). */
export function rmSync(path: string, options: { recursive?: boolean; force?: boolean } = {}): void {
  if (io().unlink(cstr(path)) === 0) return;
  const e = errno();
  if (e === ENOENT && options.force) return;
  if (e !== EISDIR || !options.recursive) fail("unlink", path, e);
  for (const d of readdirSync(path, { withFileTypes: true })) {
    const p = `${path}/${d.name}`;
    if (d.isDirectory()) rmSync(p, options);
    else unlinkSync(p);
  }
  rmdirSync(path);
}

/** The fields of a stat that tsnet reads, as node:fs names them. */
export class Stats {
  constructor(
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly size: number,
    readonly mtimeMs: number,
    readonly mtimeNs: bigint,
    readonly ino: bigint,
    /** The device the file is on (the kernel's major << 20 | minor, as dev_t is kept inside it). */
    readonly dev: number,
  ) {}
  private is(type: number): boolean {
    return (this.mode & S_IFMT) === type;
  }
  isDirectory(): boolean {
    return this.is(S_IFDIR);
  }
  isFile(): boolean {
    return this.is(S_IFREG);
  }
  isSymbolicLink(): boolean {
    return this.is(S_IFLNK);
  }
  isFIFO(): boolean {
    return this.is(S_IFIFO);
  }
  isCharacterDevice(): boolean {
    return this.is(S_IFCHR);
  }
  isBlockDevice(): boolean {
    return this.is(S_IFBLK);
  }
  isSocket(): boolean {
    return this.is(S_IFSOCK);
  }
}

// struct statx, the same on every architecture:
// | mask u32 | blksize u32 | attributes u64 | nlink u32 @16 | uid u32 @20 | gid u32 @24 | mode u16 @28 | pad u16 |
// | ino u64 @32 | size u64 @40 | blocks u64 | attributes_mask u64 | atime @64 | btime @80 | ctime @96 |
// | mtime @112 { sec i64 | nsec u32 | pad } | rdev_major u32 @128 | rdev_minor u32 @132 | dev_major u32 @136 |
// | dev_minor u32 @140 | ... | 256 bytes
const STATX = new Uint8Array(256);
const SX = new DataView(STATX.buffer);

/** undefined when the path does not exist and missingOk. */
function statx(dirfd: number, path: string, flags: number, syscall: string, missingOk: boolean): Stats | undefined {
  if (io().statx(dirfd, cstr(path), flags, STATX_BASIC_STATS, STATX) < 0) {
    const e = errno();
    if (e === ENOENT && missingOk) return undefined;
    fail(syscall, dirfd === AT_FDCWD ? path : undefined, e);
  }
  const sec = SX.getBigInt64(112, true);
  const nsec = SX.getUint32(120, true);
  return new Stats(
    SX.getUint16(28, true),
    SX.getUint32(20, true),
    SX.getUint32(24, true),
    Number(SX.getBigUint64(40, true)),
    Number(sec) * 1000 + nsec / 1e6,
    sec * 1_000_000_000n + BigInt(nsec),
    SX.getBigUint64(32, true),
    SX.getUint32(136, true) * 2 ** 20 + SX.getUint32(140, true),
  );
}

type StatOptions = { throwIfNoEntry?: boolean };

function stat(path: string, flags: number, syscall: string, o?: StatOptions): Stats | undefined {
  return statx(AT_FDCWD, path, flags, syscall, o?.throwIfNoEntry === false);
}

export function statSync(path: string): Stats;
export function statSync(path: string, o: StatOptions): Stats | undefined;
export function statSync(path: string, o?: StatOptions): Stats | undefined {
  return stat(path, 0, "stat", o);
}

export function lstatSync(path: string): Stats;
export function lstatSync(path: string, o: StatOptions): Stats | undefined;
export function lstatSync(path: string, o?: StatOptions): Stats | undefined {
  return stat(path, AT_SYMLINK_NOFOLLOW, "lstat", o);
}

export function fstatSync(fd: number): Stats {
  return statx(fd, "", AT_EMPTY_PATH, "fstat", false)!;
}
