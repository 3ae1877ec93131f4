// Network namespaces as `ip netns` keeps them: a file under /run/netns bind-mounted over the
// namespace, so `ip netns list` and `ip netns exec NAME` work on tsnet's namespaces too.
//
// unshare()/setns() move only the calling thread. Bun runs JavaScript on the main thread, so a
// switched window must stay synchronous (no await inside): anything scheduled in between would
// run in the wrong namespace.
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import {
  CLONE_NEWNET, MNT_DETACH, MS_BIND, MS_REC, MS_SHARED, O_NOFOLLOW, O_RDONLY, close, mount, open, setns, umount2, unshare,
} from "../../ffi/libc.ts";
import { KernelError, isErrno } from "../errors/errors.ts";
import { EEXIST, EINVAL, ENOENT } from "../errors/errno.ts";
import { checkNetnsPath, ensureDir, fsError } from "../state/files.ts";
import { NETNS_DIR } from "../state/paths.ts";

export const NETNS_RUN_DIR = NETNS_DIR;

let home: number | undefined;

/** fd of the namespace tsnet started in; every switched window returns here. */
export function homeNetns(): number {
  home ??= open("/proc/thread-self/ns/net", O_RDONLY);
  return home;
}

/** Runs fn with this thread in the namespace behind fd, then comes back, even on throw. */
export function inNetns<T>(fd: number, fn: () => T, what = "container namespace"): T {
  const back = homeNetns();
  setns(fd, CLONE_NEWNET, what);
  try {
    return fn();
  } finally {
    setns(back, CLONE_NEWNET, "tsnet's own namespace");
  }
}

/** Where namespace NAME is persisted; the directory is made (and checked) first, so a refusal
 * comes before anything names a path in it. */
export function netnsPath(name: string): string {
  prepareRunDir();
  return checkNetnsPath(`${NETNS_RUN_DIR}/${name}`);
}

// Like iproute2: /run/netns is a shared mount point so that namespace mounts made later also
// appear in mount namespaces cloned earlier (other `ip netns exec` sessions, a supervisor).
let runDirReady = false;
function prepareRunDir(): void {
  if (runDirReady) return;
  // 0755 as iproute2 makes it; refused unless root's alone (src/state/owned.ts).
  ensureDir(NETNS_RUN_DIR, 0o755);
  try {
    mount("none", NETNS_RUN_DIR, null, MS_SHARED | MS_REC);
  } catch (e) {
    if (!isErrno(e, EINVAL)) throw e;
    mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC);
    mount("none", NETNS_RUN_DIR, null, MS_SHARED | MS_REC);
  }
  runDirReady = true;
}

export interface Netns {
  name: string;
  path: string;
  /** Open fd on the namespace (for setns and IFLA_NET_NS_FD); close() releases it. */
  fd: number;
}

/**
 * Creates a namespace persisted at /run/netns/NAME and runs `inside` once within it, to open the
 * sockets that must live there. The file is made first with O_EXCL and holds `owner` until the
 * namespace is mounted over it: an existing namespace of that name (someone's `ip netns add`) is
 * refused and never touched, and `created` runs (to record it) only once the file is ours. After a
 * crash before the record says so, reclaimNetnsFile tells our file by its content. On any failure
 * nothing of ours is left: no mount, no file.
 */
export function createNetns<T>(name: string, owner: string, created: (path: string) => void, inside: () => T): { ns: Netns; result: T } {
  const path = netnsPath(name);
  try {
    writeFileSync(path, owner, { flag: "wx", mode: 0o444 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") {
      throw new KernelError("create namespace", path, EEXIST, "a namespace of that name exists and is not this container's: remove it (ip netns del) or choose another --name");
    }
    throw fsError("create namespace", path, e);
  }
  try {
    created(path);
  } catch (e) {
    tryUnlink(path);
    throw e;
  }
  const back = homeNetns();
  let mounted = false;
  try {
    let result: T;
    unshare(CLONE_NEWNET, "network namespace");
    try {
      mount("/proc/thread-self/ns/net", path, "none", MS_BIND);
      mounted = true;
      result = inside();
    } finally {
      setns(back, CLONE_NEWNET, "tsnet's own namespace");
    }
    const fd = open(path, O_RDONLY);
    return { ns: { name, path, fd }, result };
  } catch (e) {
    if (mounted) tryUmount(path);
    tryUnlink(path);
    throw e;
  }
}

/** Opens a persisted namespace by path (for exec, joining another container). */
export function openNetns(path: string): number {
  return open(checkNetnsPath(path), O_RDONLY | O_NOFOLLOW);
}

/**
 * Removes the persisted namespace. The kernel frees it (and the veth end inside it) once no
 * process, mount or fd holds it any more. Missing pieces are not an error: teardown is idempotent.
 */
export function deleteNetns(path: string): void {
  checkNetnsPath(path);
  tryUmount(path);
  tryUnlink(path);
}

function tryUmount(path: string): void {
  try {
    umount2(path, MNT_DETACH);
  } catch (e) {
    if (!isErrno(e, EINVAL, ENOENT)) throw e;
  }
}

function tryUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fsError("remove", path, e);
  }
}

/**
 * Removes /run/netns/NAME if it is still the unmounted file a crashed createNetns made for owner
 * (a mounted namespace reads as nothing like an id); anything else is left alone.
 */
export function reclaimNetnsFile(name: string, owner: string): void {
  const path = netnsPath(name);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return;
  }
  if (text === owner) tryUnlink(path);
}

export function closeNetns(ns: Netns): void {
  close(ns.fd);
}
