// Reading and writing state files. Every path goes through src/state/owned.ts first (directories
// root's alone, no symbolic links followed, files checked), and every failure is one line naming
// the operation and the path (ENOSPC, EROFS...).
import { closeSync, readFileSync, readSync, readdirSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from "../../ffi/fs.ts";
import { procStat } from "../process/stat.ts";
import { crashPoint } from "../errors/crashpoint.ts";
import { LOCK_EX, LOCK_UN, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, flock } from "../../ffi/libc.ts";
import { LOCKS_DIR } from "./paths.ts";
import { ensureDir, fsError, openOwned, trustDir } from "./owned.ts";

export { checkNetnsPath, ensureDir, forgetDir, fsError, openOwned, trustDir, trustSocket } from "./owned.ts";

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

/**
 * Writes via a temporary file and rename(2), so a reader never sees half a file. The temporary
 * name carries the writer's token (pid and start time), so that after a crash the one who
 * recovers the dead writer's containers removes exactly its leftovers (sweepTemporaries).
 */
export function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${processToken()}.tmp`;
  const fd = openOwned(tmp, O_WRONLY | O_CREAT | O_TRUNC)!;
  try {
    writeFileSync(fd, data);
  } catch (e) {
    closeSync(fd);
    removeQuietly(tmp);
    throw fsError("write", path, e);
  }
  closeSync(fd);
  crashPoint("tmp-write");
  try {
    renameSync(tmp, path);
  } catch (e) {
    removeQuietly(tmp);
    throw fsError("write", path, e);
  }
}

/** Writes the file in place (the same inode: a bind mount of it stays valid). */
export function writeText(path: string, data: string, mode = 0o600): void {
  const fd = openOwned(path, O_WRONLY | O_CREAT | O_TRUNC, mode)!;
  try {
    writeFileSync(fd, data);
  } catch (e) {
    throw fsError("write", path, e);
  } finally {
    closeSync(fd);
  }
}

let token: string | undefined;
/** This process's token: pid and start time (clock ticks since boot), unique across pid reuse. */
export function processToken(): string {
  if (token === undefined) {
    let start: number;
    try {
      start = procStat("self").startTime;
    } catch (e) {
      throw fsError("read", "/proc/self/stat", e);
    }
    token = `${process.pid}-${start}`;
  }
  return token;
}

/**
 * The names in a state directory: none when it does not exist (yet); refused, as every state
 * directory is, when it is not root's alone; a failure to read it is one line naming it.
 */
export function listDir(dir: string): string[] {
  if (!trustDir(dir)) return [];
  try {
    return readdirSync(dir);
  } catch (e) {
    throw fsError("read directory", dir, e);
  }
}

/** Removes the temporary files a dead process (by its token) left in dir. */
export function sweepTemporaries(dir: string, deadToken: string): void {
  for (const n of listDir(dir)) if (n.endsWith(`.${deadToken}.tmp`)) removeFile(`${dir}/${n}`);
}

/** Creates the file only if it does not exist yet (O_EXCL); false when it exists. */
export function createExclusive(path: string, data: string): boolean {
  const fd = openOwned(path, O_WRONLY | O_CREAT | O_EXCL);
  if (fd === undefined) return false;
  try {
    writeFileSync(fd, data);
  } catch (e) {
    // A name file left empty (ENOSPC) would hold the name for nobody.
    closeSync(fd);
    removeQuietly(path);
    throw fsError("write", path, e);
  }
  closeSync(fd);
  return true;
}

// State files are small: one buffer, reused, reads most of them in one read(2) (what `ps` does
// thousands of times).
const READ_BUF = Buffer.alloc(64 * 1024);

export function readText(path: string): string | undefined {
  const fd = openOwned(path, O_RDONLY);
  if (fd === undefined) return undefined;
  try {
    const n = readSync(fd, READ_BUF, 0, READ_BUF.length, 0);
    if (n < READ_BUF.length) return READ_BUF.toString("utf8", 0, n);
    return readFileSync(fd, "utf8");
  } catch (e) {
    throw fsError("read", path, e);
  } finally {
    closeSync(fd);
  }
}

export function removeFile(path: string): void {
  if (!trustDir(parentOf(path))) return;
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fsError("remove", path, e);
  }
}

/** Removes a directory if it is empty; one that is not (someone is using it) or gone stays as it is. */
export function removeEmptyDir(path: string): void {
  if (!trustDir(parentOf(path))) return;
  try {
    rmdirSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTEMPTY" && code !== "EEXIST") throw fsError("remove", path, e);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}

/**
 * Holds an flock(2) on /run/tsnet/locks/NAME while fn runs. The kernel drops the lock when the
 * holder dies, so a kill -9 never leaves a stale lock behind.
 */
export function withLock<T>(name: string, fn: () => T): T {
  const { fd, path } = lock(name);
  try {
    return fn();
  } finally {
    unlock(fd, path);
  }
}

/** withLock for a critical section that awaits (the flock belongs to the open file, not a thread). */
export async function withLockAsync<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const { fd, path } = lock(name);
  try {
    return await fn();
  } finally {
    unlock(fd, path);
  }
}

/** A lock held across steps that are not one function (a container's setup, until it is started). */
export function takeLock(name: string): { fd: number; path: string } {
  return lock(name);
}

export function releaseLock(held: { fd: number; path: string }): void {
  unlock(held.fd, held.path);
}

function lock(name: string): { fd: number; path: string } {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`bad lock name ${JSON.stringify(name)}`);
  ensureDir(LOCKS_DIR);
  const path = `${LOCKS_DIR}/${name}.lock`;
  const fd = openOwned(path, O_RDWR | O_CREAT)!;
  try {
    flock(fd, LOCK_EX, path);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return { fd, path };
}

function unlock(fd: number, path: string): void {
  try {
    flock(fd, LOCK_UN, path);
  } finally {
    closeSync(fd);
  }
}
