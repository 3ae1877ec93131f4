// Liveness without pid files: the process that manages a container (a foreground `tsnet run`
// or the supervisor) holds an flock on /run/tsnet/live/ID for as long as the container's network
// exists. The kernel drops the lock when that process dies, however it dies, so any later tsnet
// can tell a crashed container from a running one by trying the lock.
// The file's content is a mailbox for one fact: the last signal `tsnet stop` sent the container,
// which decides the exit status when the first process had already exited (see stopSignal).
import { closeSync, readSync, readdirSync, renameSync, writeSync } from "node:fs";
import { LOCK_EX, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, close, flock, tryLock } from "../../ffi/libc.ts";
import { ensureDir, fsError, openOwned, removeFile, trustDir } from "./files.ts";
import { ID_RE, LIVE_DIR, checkedId } from "./paths.ts";

/** Takes the lock. The file appears under its final name already locked (made under a temporary
 * name, then renamed), so no prober ever finds it unlocked while its manager lives. */
export function holdLive(id: string): number {
  ensureDir(LIVE_DIR);
  const tmp = `${LIVE_DIR}/.${checkedId(id)}.${process.pid}`;
  const fd = openOwned(tmp, O_RDWR | O_CREAT | O_TRUNC)!;
  try {
    flock(fd, LOCK_EX, tmp);
    try {
      renameSync(tmp, `${LIVE_DIR}/${id}`);
    } catch (e) {
      throw fsError("rename", tmp, e);
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    removeFile(tmp);
    throw e;
  }
}

export function dropLive(id: string, fd: number): void {
  removeFile(`${LIVE_DIR}/${checkedId(id)}`);
  close(fd);
}

/** Containers whose manager has died; each comes with its lock, now held by the caller. */
export function orphanedContainers(): { id: string; fd: number }[] {
  if (!trustDir(LIVE_DIR)) return [];
  let names: string[];
  try {
    names = readdirSync(LIVE_DIR);
  } catch (e) {
    throw fsError("read directory", LIVE_DIR, e);
  }
  const out: { id: string; fd: number }[] = [];
  for (const id of names) {
    // Temporary names (.ID.PID) are not live yet; nothing else is tsnet's.
    if (!ID_RE.test(id)) continue;
    const fd = openOwned(`${LIVE_DIR}/${id}`, O_RDONLY);
    if (fd === undefined) continue; // released in the meantime
    if (tryLock(fd, id)) out.push({ id, fd });
    else closeSync(fd);
  }
  return out;
}

/** Tells the container's manager that `tsnet stop` (or rm -f) sent it sig. */
export function noteStopSignal(id: string, sig: number): void {
  const path = `${LIVE_DIR}/${checkedId(id)}`;
  const fd = openOwned(path, O_RDWR);
  if (fd === undefined) return; // its manager is already done with it
  try {
    writeSync(fd, `${String(sig).padStart(2, "0")}\n`, 0);
  } catch (e) {
    throw fsError("write", path, e);
  } finally {
    closeSync(fd);
  }
}

/** The last signal noted by noteStopSignal, read through the manager's own lock fd. */
export function stopSignal(fd: number): number | undefined {
  const buf = Buffer.alloc(8);
  const n = readSync(fd, buf, 0, buf.length, 0);
  const sig = Number.parseInt(buf.toString("utf8", 0, n), 10);
  return Number.isInteger(sig) && sig > 0 ? sig : undefined;
}
