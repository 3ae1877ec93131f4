// Liveness without pid files, and without looking at every container: each process that manages
// containers (a foreground `tsnet run`, or the supervisor of detached ones) holds an flock on
// /run/tsnet/managers/ID for as long as it lives, and every container record names its manager.
// The kernel drops the lock when the process dies, however it dies, so a later tsnet finds the
// dead managers by trying a handful of locks (one per live manager, not one per container) and
// only then reads the records of the containers a dead one left behind.
import { closeSync, fstatSync, lstatSync, renameSync } from "../../ffi/fs.ts";
import { procStat } from "../process/stat.ts";
import { LOCK_EX, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY, close, flock, tryLock } from "../../ffi/libc.ts";
import { ensureDir, fsError, listDir, openOwned, processToken, removeFile } from "./files.ts";
import { MANAGERS_DIR } from "./paths.ts";

let mine: { id: string; fd: number } | undefined;

/**
 * Registers this process as a manager (once) and returns its id. The lock file appears under its
 * final name already locked (made under a temporary name, then renamed), so no prober ever finds
 * it unlocked while the manager lives.
 */
export function managerId(): string {
  if (mine) return mine.id;
  // The token (pid and start time) also names every temporary file this process writes, so
  // whoever finds the manager dead knows which ones it left (sweepTemporaries).
  const token = processToken();
  ensureDir(MANAGERS_DIR);
  const tmp = `${MANAGERS_DIR}/.${token}`;
  const fd = openOwned(tmp, O_WRONLY | O_CREAT | O_TRUNC)!;
  try {
    flock(fd, LOCK_EX, tmp);
    try {
      renameSync(tmp, `${MANAGERS_DIR}/${token}`);
    } catch (e) {
      throw fsError("rename", tmp, e);
    }
  } catch (e) {
    closeSync(fd);
    removeFile(tmp);
    throw e;
  }
  mine = { id: token, fd };
  return mine.id;
}

/**
 * Managers that have died; each comes with its lock, now held by the caller until released.
 * Several commands look at once (every command does, first): each dead manager is handed to
 * exactly one of them.
 */
export function deadManagers(): { id: string; fd: number }[] {
  const out: { id: string; fd: number }[] = [];
  for (const id of listDir(MANAGERS_DIR)) {
    // Only names tsnet makes: PID-STARTTIME, or that with a leading dot while being made.
    if (id === mine?.id || !/^\.?\d+-\d+$/.test(id)) continue;
    const path = `${MANAGERS_DIR}/${id}`;
    const fd = openOwned(path, O_RDONLY);
    if (fd === undefined) continue; // released in the meantime
    if (!tryLock(fd, id) || !stillNamed(path, fd)) {
      closeSync(fd);
    } else if (id.startsWith(".")) {
      // The temporary name is created before it is locked: a manager registering right now is
      // found unlocked here, so it is told apart by its token (pid and start time) instead.
      // Removing its file would fail its rename (ENOENT). One killed while registering managed
      // nothing yet: its file just goes.
      if (tokenAlive(id.slice(1))) closeSync(fd);
      else releaseManager(id, fd);
    } else {
      out.push({ id, fd });
    }
  }
  return out;
}

/**
 * Whether the locked fd is still the file at path. Whoever releases a dead manager removes its
 * file before letting go of its lock, so a command that opened the file before that and locks it
 * after holds a lock on a removed file: that manager was released already, and must not be
 * recovered twice.
 */
function stillNamed(path: string, fd: number): boolean {
  try {
    // One directory, one file system: the inode number says whether it is the same file.
    const now = lstatSync(path, { throwIfNoEntry: false });
    return now !== undefined && now.ino === fstatSync(fd).ino;
  } catch (e) {
    throw fsError("examine", path, e);
  }
}

/** Whether the process a token (PID-STARTTIME) names is alive: that pid, with that start time. */
function tokenAlive(token: string): boolean {
  const [pid, start] = token.split("-");
  try {
    return String(procStat(Number(pid)).startTime) === start;
  } catch {
    return false;
  }
}

/** Forgets a dead manager once everything it held has been released. */
export function releaseManager(id: string, fd: number): void {
  removeFile(`${MANAGERS_DIR}/${id}`);
  close(fd);
}

/** A manager that has let go of all its containers unregisters before it exits. */
export function retireManager(): void {
  if (!mine) return;
  removeFile(`${MANAGERS_DIR}/${mine.id}`);
  close(mine.fd);
  mine = undefined;
}
