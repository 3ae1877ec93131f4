import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { crashPoint } from "../errors/crashpoint.ts";
import { LOCK_EX, LOCK_UN, flock } from "../../ffi/libc.ts";
import { LOCKS_DIR } from "./paths.ts";

export function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
}

/**
 * Writes via a temporary file and rename(2), so a reader never sees half a file. The temporary
 * name carries the writer's token (pid and start time), so that after a crash the one who
 * recovers the dead writer's containers removes exactly its leftovers (sweepTemporaries).
 */
export function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.${processToken()}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  crashPoint("tmp-write");
  renameSync(tmp, path);
}

let token: string | undefined;
/** This process's token: pid and start time (clock ticks since boot), unique across pid reuse. */
export function processToken(): string {
  if (token === undefined) {
    const stat = readFileSync("/proc/self/stat", "utf8");
    token = `${process.pid}-${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
  }
  return token;
}

/** Removes the temporary files a dead process (by its token) left in dir. */
export function sweepTemporaries(dir: string, deadToken: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.endsWith(`.${deadToken}.tmp`)) removeFile(`${dir}/${n}`);
}

/** Creates the file only if it does not exist yet (O_EXCL); false when it exists. */
export function createExclusive(path: string, data: string): boolean {
  try {
    writeFileSync(path, data, { flag: "wx", mode: 0o600 });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
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
  ensureDir(LOCKS_DIR);
  const path = `${LOCKS_DIR}/${name}.lock`;
  const fd = openSync(path, "a", 0o600);
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
