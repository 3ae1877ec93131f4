// Liveness without pid files, and without looking at every container: each process that manages
// containers (a foreground `tsnet run`, or the supervisor of detached ones) holds an flock on
// /run/tsnet/managers/ID for as long as it lives, and every container record names its manager.
// The kernel drops the lock when the process dies, however it dies, so a later tsnet finds the
// dead managers by trying a handful of locks (one per live manager, not one per container) and
// only then reads the records of the containers a dead one left behind.
import { closeSync, renameSync } from "../../ffi/fs.ts";
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

/** Managers that have died; each comes with its lock, now held by the caller until released. */
export function deadManagers(): { id: string; fd: number }[] {
  const out: { id: string; fd: number }[] = [];
  for (const id of listDir(MANAGERS_DIR)) {
    // Only names tsnet makes: PID-STARTTIME, or that with a leading dot while being made.
    if (id === mine?.id || !/^\.?\d+-\d+$/.test(id)) continue;
    const fd = openOwned(`${MANAGERS_DIR}/${id}`, O_RDONLY);
    if (fd === undefined) continue; // released in the meantime
    if (!tryLock(fd, id)) closeSync(fd);
    // A manager killed while registering left only its temporary name: it managed nothing yet.
    else if (id.startsWith(".")) releaseManager(id, fd);
    else out.push({ id, fd });
  }
  return out;
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
