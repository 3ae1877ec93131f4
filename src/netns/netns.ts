// Network namespaces under names `ip netns` knows: /run/netns/NAME, so `ip netns list`,
// `ip netns exec NAME` and `ip -n NAME` work on tsnet's namespaces too (see FD_LINK below).
//
// unshare()/setns() move only the calling thread. Bun runs JavaScript on the main thread, so a
// switched window must stay synchronous (no await inside): anything scheduled in between would
// run in the wrong namespace.
import { lstatSync, readlinkSync, renameSync, symlinkSync, unlinkSync } from "../../ffi/fs.ts";
import {
  CLONE_NEWNET, MNT_DETACH, O_NOFOLLOW, O_RDONLY, close, open, setns, umount2, unshare,
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

let runDirReady = false;
export function prepareRunDir(): void {
  if (runDirReady) return;
  // 0755 as iproute2 makes it; refused unless root's alone (src/state/owned.ts).
  ensureDir(NETNS_RUN_DIR, 0o755);
  runDirReady = true;
}

export interface Netns {
  name: string;
  path: string;
  /** Open fd on the namespace (for setns and IFLA_NET_NS_FD); it keeps the namespace alive. */
  fd: number;
}

// What /run/netns/tsnet-NAME is: a symbolic link to the fd by which the container's manager holds
// its namespace, /proc/PID/fd/N. `ip netns exec`, `ip -n` and nsenter open the name and follow
// the link into the namespace, as they would open a bind mount. It is not a bind mount (what
// `ip netns add` makes) because a mount is copied into every mount namespace made after it: each
// container's own mount namespace would copy every other container's mount, and cost grows with
// the number of containers. A link costs nothing to anyone else. When its manager dies it points
// nowhere; the namespace lives on as long as a process of the container is in it, and the
// supervisor that adopts the container opens it through such a process and points the link at
// its own fd (`adoptNetns`).
const FD_LINK = /^\/proc\/(\d+)\/fd\/\d+$/;

/**
 * Creates a network namespace, held by an fd of this process and named by the link
 * /run/netns/NAME, then runs `inside` once within it, to open the sockets that must live there.
 * An existing entry of that name (someone's `ip netns add`) is refused and never touched;
 * `created` runs (to record it, with the namespace's identity) only once the link is ours. On any
 * failure nothing of ours is left: no link, and the namespace goes with its fd.
 */
export function createNetns<T>(name: string, created: (path: string, identity: string) => void, inside: () => T): { ns: Netns; result: T } {
  const path = netnsPath(name);
  const back = homeNetns();
  unshare(CLONE_NEWNET, "network namespace");
  let fd: number;
  try {
    fd = open("/proc/thread-self/ns/net", O_RDONLY);
  } finally {
    setns(back, CLONE_NEWNET, "tsnet's own namespace");
  }
  try {
    try {
      symlinkSync(`/proc/${process.pid}/fd/${fd}`, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") {
        throw new KernelError("create namespace", path, EEXIST, "a namespace of that name exists and is not this container's: remove it (ip netns del) or choose another --name");
      }
      throw fsError("create namespace", path, e);
    }
    try {
      created(path, readlinkSync(`/proc/self/fd/${fd}`));
      const result = inNetns(fd, inside);
      return { ns: { name, path, fd }, result };
    } catch (e) {
      tryUnlink(path);
      throw e;
    }
  } catch (e) {
    close(fd);
    throw e;
  }
}

/**
 * What is at a namespace path under /run/netns: tsnet's own link to a manager's fd, a bind mount
 * (`ip netns add`'s kind), or nothing. A link of any other form is refused.
 */
function netnsEntry(op: string, path: string): "link" | "mount" | "none" {
  checkNetnsPath(path);
  let target: string;
  try {
    target = readlinkSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "none";
    if (code === "EINVAL") return "mount";
    throw fsError(op, path, e);
  }
  if (!FD_LINK.test(target)) throw new KernelError(op, path, EINVAL, `not a namespace of tsnet's (it links to ${target})`);
  return "link";
}

/** Opens a persisted namespace by path (for exec, joining another container). */
export function openNetns(path: string): number {
  const entry = netnsEntry("open", path);
  if (entry === "none") throw new KernelError("open", path, ENOENT, "no such namespace");
  // tsnet's own link is followed; a bind mount is opened as is.
  return open(path, entry === "mount" ? O_RDONLY | O_NOFOLLOW : O_RDONLY);
}

/**
 * The identity of the network namespace behind fd ("net:[4026532000]", as /proc names it), or
 * undefined when fd is not one (a plain file at a CNI_NETNS path, another kind of namespace):
 * setns(2) says which (EINVAL), and /proc names the namespace entered.
 */
export function netnsIdentity(fd: number): string | undefined {
  try {
    return inNetns(fd, () => readlinkSync("/proc/thread-self/ns/net"));
  } catch (e) {
    if (isErrno(e, EINVAL)) return undefined;
    throw e;
  }
}

/** The identity of the namespace tsnet runs in. */
export function ownNetnsIdentity(): string {
  return readlinkSync("/proc/thread-self/ns/net");
}

/**
 * Removes the persisted namespace. The kernel frees it (and the veths inside it) once no process,
 * mount or fd holds it any more. Missing pieces are not an error: teardown is idempotent.
 */
export function deleteNetns(path: string): void {
  checkNetnsPath(path);
  let link = false;
  try {
    link = lstatSync(path).isSymbolicLink();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw fsError("examine", path, e);
  }
  if (!link) tryUmount(path);
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
 * After a crash before the record named it: removes /run/netns/NAME if it is still the link a
 * crashed manager (pid) made; anything else is left alone.
 */
export function reclaimNetnsLink(name: string, managerPid: number): void {
  const path = netnsPath(name);
  let target: string;
  try {
    target = readlinkSync(path);
  } catch {
    return;
  }
  if (FD_LINK.exec(target)?.[1] === String(managerPid)) tryUnlink(path);
}

/**
 * An fd on the network namespace process pid is in, if that is the namespace named `identity`
 * ("net:[4026532000]"); undefined when the process is gone or is elsewhere. The identity is read
 * from the fd itself, so a pid reused between the choice and the open can only fail the check.
 */
export function openNetnsOf(pid: number, identity: string): number | undefined {
  let fd: number;
  try {
    fd = open(`/proc/${pid}/ns/net`, O_RDONLY);
  } catch {
    return undefined;
  }
  let ok = false;
  try {
    ok = readlinkSync(`/proc/self/fd/${fd}`) === identity;
  } catch {}
  if (ok) return fd;
  close(fd);
  return undefined;
}

/**
 * Adoption: points /run/netns/NAME (the container's, as its record names it) at fd, held by this
 * process, in place of the link a dead manager made (or an adopter that died in turn). Anything
 * but a link of tsnet's form is refused and left alone. Made under a temporary name and renamed
 * over, so `ip netns exec` never finds the name missing.
 */
export function adoptNetns(path: string, fd: number): void {
  if (netnsEntry("adopt namespace", path) === "mount") {
    throw new KernelError("adopt namespace", path, EINVAL, "it is not a link of tsnet's (a bind mount): remove it (ip netns del)");
  }
  const tmp = `${NETNS_RUN_DIR}/.adopt-${process.pid}`;
  tryUnlink(tmp);
  try {
    symlinkSync(`/proc/${process.pid}/fd/${fd}`, tmp);
    renameSync(tmp, path);
  } catch (e) {
    tryUnlink(tmp);
    throw fsError("adopt namespace", path, e);
  }
}

export function closeNetns(ns: Netns): void {
  close(ns.fd);
}
