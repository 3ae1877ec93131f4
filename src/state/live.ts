// Liveness without pid files: the process that manages a container (a foreground `tsnet run`
// or the supervisor) holds an flock on /run/tsnet/live/ID for as long as the container's network
// exists. The kernel drops the lock when that process dies, however it dies, so any later tsnet
// can tell a crashed container from a running one by trying the lock.
// The file's content is a mailbox for one fact: the last signal `tsnet stop` sent the container,
// which decides the exit status when the first process had already exited (see stopSignal).
import { closeSync, openSync, readSync, readdirSync, renameSync, writeSync } from "node:fs";
import { LOCK_EX, close, flock, tryLock } from "../../ffi/libc.ts";
import { ensureDir, removeFile } from "./files.ts";
import { LIVE_DIR } from "./paths.ts";

/** Takes the lock. The file appears under its final name already locked (made under a temporary
 * name, then renamed), so no prober ever finds it unlocked while its manager lives. */
export function holdLive(id: string): number {
  ensureDir(LIVE_DIR);
  const tmp = `${LIVE_DIR}/.${id}.${process.pid}`;
  const fd = openSync(tmp, "w+", 0o600);
  try {
    flock(fd, LOCK_EX, tmp);
    renameSync(tmp, `${LIVE_DIR}/${id}`);
    return fd;
  } catch (e) {
    closeSync(fd);
    removeFile(tmp);
    throw e;
  }
}

export function dropLive(id: string, fd: number): void {
  removeFile(`${LIVE_DIR}/${id}`);
  close(fd);
}

/** Containers whose manager has died; each comes with its lock, now held by the caller. */
export function orphanedContainers(): { id: string; fd: number }[] {
  let names: string[];
  try {
    names = readdirSync(LIVE_DIR);
  } catch {
    return [];
  }
  const out: { id: string; fd: number }[] = [];
  for (const id of names) {
    if (id.startsWith(".")) continue;
    let fd: number;
    try {
      fd = openSync(`${LIVE_DIR}/${id}`, "r");
    } catch {
      continue; // released in the meantime
    }
    if (tryLock(fd, id)) out.push({ id, fd });
    else closeSync(fd);
  }
  return out;
}

/** Tells the container's manager that `tsnet stop` (or rm -f) sent it sig. */
export function noteStopSignal(id: string, sig: number): void {
  let fd: number;
  try {
    fd = openSync(`${LIVE_DIR}/${id}`, "r+");
  } catch {
    return; // its manager is already done with it
  }
  try {
    writeSync(fd, `${String(sig).padStart(2, "0")}\n`, 0);
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
