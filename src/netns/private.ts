// A container's private mount and UTS namespaces: its own /etc/hosts, /etc/resolv.conf and
// /etc/hostname (bind-mounted over the host's paths, which are never edited, as `ip netns exec`
// does with /etc/netns/NAME/), its own /sys (a sysfs mounted from inside its network namespace)
// and its own hostname. Made on the JS thread around the spawn of the container's first process,
// which inherits them; `tsnet exec` joins them through a live process of the container.
//
// Thread rules (see ARCHITECTURE.md): unshare(CLONE_NEWNS) works on one thread of a multithreaded
// process and gives that thread its own fs_struct; setns(CLONE_NEWNS) refuses a thread that
// shares its fs_struct, so the first window unshares CLONE_FS. Like every namespace window, these
// are synchronous and end in try/finally.
//
// Roots: setns(CLONE_NEWNS) puts the thread at the root of the namespace it enters, which is not
// tsnet's own root when tsnet runs in a chroot (or a container's root, or anything but the
// namespace's root). Every switch is therefore followed by a chroot to the root that belongs
// there, held as an fd: tsnet's own when it comes back, the container's when it joins one.
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "../../ffi/fs.ts";
import {
  CLONE_FS, CLONE_NEWNS, CLONE_NEWUTS, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_SLAVE, O_DIRECTORY, O_PATH,
  O_RDONLY, chrootTo, close, fchdir, mount, open, sethostname, setns, unshare,
} from "../../ffi/libc.ts";
import { isErrno } from "../errors/errors.ts";
import { EINVAL, ENOENT } from "../errors/errno.ts";

export interface PrivateFiles {
  hostname?: string;
  /** Files bind-mounted over host paths, e.g. { source: ".../hosts", target: "/etc/hosts" }. */
  binds: { source: string; target: string }[];
  /** A sysfs of the container's network namespace on /sys (false: the host's /sys stays). */
  sysfs?: boolean;
}

interface Home {
  mnt: number;
  uts: number;
  /** tsnet's root and working directory, as it started: where a switch back must land. */
  root: number;
  cwd: number;
}

let home: Home | undefined;

/**
 * tsnet's own mount and UTS namespaces, root and working directory, opened before any window
 * moves the thread. Every window first gives the thread an fs_struct of its own again: a thread
 * Bun starts later (lazily, from the JS thread) shares the JS thread's, and setns(CLONE_NEWNS)
 * refuses a shared one (EINVAL).
 */
function homeNamespaces(): Home {
  unshare(CLONE_FS, "fs_struct (so the thread may setns into mount namespaces)");
  home ??= {
    mnt: open("/proc/thread-self/ns/mnt", O_RDONLY),
    uts: open("/proc/thread-self/ns/uts", O_RDONLY),
    // The thread's root through /proc, not "/": an emulator's path translation (qemu-user -L
    // maps "/" to its prefix) would otherwise hand over another directory to come back to.
    root: open("/proc/thread-self/root", O_PATH | O_DIRECTORY),
    cwd: open(".", O_PATH | O_DIRECTORY),
  };
  return home;
}

/**
 * setns(CLONE_NEWNS), once more after unsharing the fs_struct if it was refused: a thread Bun
 * started from the JS thread since the last unshare (a spawn, or a collector's helper thread that
 * an allocation woke) shares it again.
 */
function enterMountNamespace(fd: number, what: string): void {
  try {
    setns(fd, CLONE_NEWNS, what);
  } catch (e) {
    if (!isErrno(e, EINVAL)) throw e;
    unshare(CLONE_FS, "fs_struct (so the thread may setns into mount namespaces)");
    setns(fd, CLONE_NEWNS, what);
  }
}

function goHome(h: Home): void {
  enterMountNamespace(h.mnt, "tsnet's own mount namespace");
  // Back to tsnet's root (setns left the thread at the namespace's) and directory.
  chrootTo(h.root, "tsnet's own root");
  fchdir(h.cwd, "tsnet's working directory");
  setns(h.uts, CLONE_NEWUTS, "tsnet's own UTS namespace");
}

/**
 * Makes every mount of the thread's new mount namespace a slave: mounts made in it must not
 * propagate back to the host's (/ is usually a shared mount), while the host's later mounts (a new
 * /run/netns entry) still come in. mount(2) changes propagation only at the root of a mount: when
 * tsnet's "/" is not one (a chroot into a plain directory: EINVAL), the namespace's own root is,
 * and setns into the namespace the thread is already in puts it there; then back to tsnet's root,
 * which unshare carried over into the new namespace.
 */
function enslaveNamespace(): void {
  // The common case, tsnet's "/" the namespace's root: one call.
  try {
    mount(null, "/", null, MS_SLAVE | MS_REC);
    return;
  } catch (e) {
    if (!isErrno(e, EINVAL)) throw e;
  }
  const root = open("/proc/thread-self/root", O_PATH | O_DIRECTORY);
  try {
    const self = open("/proc/thread-self/ns/mnt", O_RDONLY);
    try {
      enterMountNamespace(self, "the container's mount namespace");
    } finally {
      close(self);
    }
    mount(null, "/", null, MS_SLAVE | MS_REC);
    chrootTo(root, "tsnet's root in the container's mount namespace");
  } finally {
    close(root);
  }
}

/** A field of /proc/PID/mountinfo, whose spaces, tabs, newlines and backslashes are octal escapes. */
function unescapeField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

interface MountLine {
  id: string;
  parent: string;
  point: string;
  options: string[];
  type: string;
}

function mountTable(): MountLine[] {
  const out: MountLine[] = [];
  for (const line of readFileSync("/proc/thread-self/mountinfo", "utf8").split("\n")) {
    // id parent major:minor root point options [optional fields...] - type source super-options
    const f = line.split(" ");
    const dash = f.indexOf("-");
    if (dash < 6) continue;
    out.push({ id: f[0]!, parent: f[1]!, point: unescapeField(f[4]!), options: f[5]!.split(","), type: f[dash + 1]! });
  }
  return out;
}

/**
 * Puts a sysfs of the thread's network namespace (the container's) on /sys: sysfs shows the
 * network namespace of whoever mounts it, so /sys/class/net then lists the container's links,
 * with their MACs and MTUs. What the host mounted below /sys (the cgroup hierarchies, bpf,
 * tracing, security, fuse, debug, config, pstore) is put back over it, each recursively and from
 * fds opened before the new sysfs hides them. A root without a sysfs on /sys is left as it is.
 */
function ownSysfs(): void {
  const table = mountTable();
  // The visible /sys is the last sysfs mounted there (mounts stacked on one point: the last wins).
  const sys = table.findLast((m) => m.point === "/sys");
  if (!sys || sys.type !== "sysfs") return;
  const below = [...new Set(table.filter((m) => m.parent === sys.id && m.point.startsWith("/sys/")).map((m) => m.point))];
  const held: { point: string; fd: number }[] = [];
  try {
    for (const point of below) held.push({ point, fd: open(point, O_PATH) });
    let flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (sys.options.includes("ro")) flags |= MS_RDONLY;
    mount("sysfs", "/sys", "sysfs", flags);
    for (const { point, fd } of held) {
      try {
        mount(`/proc/thread-self/fd/${fd}`, point, null, MS_BIND | MS_REC);
      } catch (e) {
        // A mount point the new sysfs does not have (made by hand below a device's directory).
        if (!isErrno(e, ENOENT)) throw e;
      }
    }
  } finally {
    for (const { fd } of held) close(fd);
  }
}

/**
 * Bind-mounts the container's files over their paths. A path that is missing (or a link to
 * nowhere, as /etc/resolv.conf is when systemd-resolved is not running) cannot be mounted on,
 * and tsnet does not create it on the host: its directory is then shadowed instead.
 */
function bindFiles(binds: PrivateFiles["binds"]): void {
  const byDir = new Map<string, PrivateFiles["binds"]>();
  for (const b of binds) {
    const dir = b.target.slice(0, b.target.lastIndexOf("/")) || "/";
    byDir.set(dir, [...(byDir.get(dir) ?? []), b]);
  }
  for (const [dir, list] of byDir) {
    if (list.every((b) => statSync(b.target, { throwIfNoEntry: false }) !== undefined)) {
      for (const b of list) mount(b.source, b.target, null, MS_BIND);
    } else {
      shadowDir(dir, list);
    }
  }
}

/**
 * A tmpfs over dir holding what dir holds: each entry bind-mounted from the original (recursively,
 * so writes to existing files and below existing directories reach the host's as before), each
 * symbolic link made again with its text, and the container's files in their places. A file
 * created directly in dir by the container stays in its tmpfs. A missing dir is left missing
 * (there is nothing to mount on); the container then has none of these files, as the host has
 * none.
 */
function shadowDir(dir: string, binds: PrivateFiles["binds"]): void {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return;
  const ours = new Map(binds.map((b) => [b.target.slice(dir.length + 1), b.source]));
  const entries = readdirSync(dir).filter((n) => !ours.has(n));
  const links = new Map<string, string>();
  const dirs = new Set<string>();
  for (const name of entries) {
    const l = lstatSync(`${dir}/${name}`, { throwIfNoEntry: false });
    if (l?.isSymbolicLink()) links.set(name, readlinkSync(`${dir}/${name}`));
    else if (l?.isDirectory()) dirs.add(name);
  }
  const fd = open(dir, O_PATH | O_DIRECTORY);
  try {
    mount("tsnet-etc", dir, "tmpfs", MS_NOSUID | MS_NODEV, `mode=${(st.mode & 0o7777).toString(8)}`);
    for (const name of entries) {
      const at = `${dir}/${name}`;
      const link = links.get(name);
      if (link !== undefined) {
        symlinkSync(link, at);
        continue;
      }
      if (dirs.has(name)) mkdirSync(at);
      else writeFileSync(at, "");
      mount(`/proc/thread-self/fd/${fd}/${name}`, at, null, MS_BIND | MS_REC);
    }
    for (const [name, source] of ours) {
      writeFileSync(`${dir}/${name}`, "");
      mount(source, `${dir}/${name}`, null, MS_BIND);
    }
  } finally {
    close(fd);
  }
}

/** Runs fn (a spawn) in fresh mount and UTS namespaces holding the container's files and hostname. */
export function inPrivateNamespaces<T>(files: PrivateFiles, fn: () => T): T {
  const h = homeNamespaces();
  unshare(CLONE_NEWNS | CLONE_NEWUTS, "mount and UTS namespaces");
  try {
    enslaveNamespace();
    if (files.sysfs) ownSysfs();
    bindFiles(files.binds);
    if (files.hostname !== undefined) sethostname(files.hostname);
    return fn();
  } finally {
    goHome(h);
  }
}

/** Runs fn (a spawn) in the mount and UTS namespaces, and at the root, of a live process of the container. */
export function inNamespacesOf<T>(pid: number, fn: () => T): T {
  const h = homeNamespaces();
  const mnt = open(`/proc/${pid}/ns/mnt`, O_RDONLY);
  let uts: number | undefined;
  let root: number | undefined;
  try {
    uts = open(`/proc/${pid}/ns/uts`, O_RDONLY);
    // The process's own root, in its namespace: where setns(CLONE_NEWNS) does not put the thread.
    root = open(`/proc/${pid}/root`, O_PATH | O_DIRECTORY);
    setns(uts, CLONE_NEWUTS, `UTS namespace of process ${pid}`);
    try {
      enterMountNamespace(mnt, `mount namespace of process ${pid}`);
      chrootTo(root, `the root of process ${pid}`);
      return fn();
    } finally {
      goHome(h);
    }
  } finally {
    close(mnt);
    if (uts !== undefined) close(uts);
    if (root !== undefined) close(root);
  }
}
