// A container's private mount and UTS namespaces: its own /etc/hosts, /etc/resolv.conf and
// /etc/hostname (bind-mounted over the host's paths, which are never edited, as `ip netns exec`
// does with /etc/netns/NAME/) and its own hostname. Made on the JS thread around the spawn of the
// container's first process, which inherits them; `tsnet exec` joins them through a live process
// of the container.
//
// Thread rules (see ARCHITECTURE.md): unshare(CLONE_NEWNS) works on one thread of a multithreaded
// process and gives that thread its own fs_struct; setns(CLONE_NEWNS) refuses a thread that
// shares its fs_struct, so the first window unshares CLONE_FS. Like every namespace window, these
// are synchronous and end in try/finally.
import {
  CLONE_FS, CLONE_NEWNS, CLONE_NEWUTS, MS_BIND, MS_REC, MS_SLAVE, O_RDONLY, close, mount, open, sethostname, setns, unshare,
} from "../../ffi/libc.ts";
import { isErrno } from "../errors/errors.ts";
import { EINVAL } from "../errors/errno.ts";

export interface PrivateFiles {
  hostname?: string;
  /** Files bind-mounted over host paths, e.g. { source: ".../hosts", target: "/etc/hosts" }. */
  binds: { source: string; target: string }[];
}

let home: { mnt: number; uts: number } | undefined;

/**
 * tsnet's own mount and UTS namespaces, opened before any window moves the thread. Every window
 * first gives the thread an fs_struct of its own again: a thread Bun starts later (lazily, from
 * the JS thread) shares the JS thread's, and setns(CLONE_NEWNS) refuses a shared one (EINVAL).
 */
function homeNamespaces(): { mnt: number; uts: number } {
  unshare(CLONE_FS, "fs_struct (so the thread may setns into mount namespaces)");
  home ??= { mnt: open("/proc/thread-self/ns/mnt", O_RDONLY), uts: open("/proc/thread-self/ns/uts", O_RDONLY) };
  return home;
}

function goHome(h: { mnt: number; uts: number }): void {
  try {
    setns(h.mnt, CLONE_NEWNS, "tsnet's own mount namespace");
  } catch (e) {
    // A thread Bun started inside the window (a spawn can start one) shares the fs_struct again.
    if (!isErrno(e, EINVAL)) throw e;
    unshare(CLONE_FS, "fs_struct (so the thread may setns into mount namespaces)");
    setns(h.mnt, CLONE_NEWNS, "tsnet's own mount namespace");
  }
  setns(h.uts, CLONE_NEWUTS, "tsnet's own UTS namespace");
}

/** Runs fn (a spawn) in fresh mount and UTS namespaces holding the container's files and hostname. */
export function inPrivateNamespaces<T>(files: PrivateFiles, fn: () => T): T {
  const h = homeNamespaces();
  unshare(CLONE_NEWNS | CLONE_NEWUTS, "mount and UTS namespaces");
  try {
    // Mounts made in the new namespace must not propagate back to the host's (/ is usually a
    // shared mount); slave still lets the host's later mounts (a new /run/netns entry) in.
    mount(null, "/", null, MS_SLAVE | MS_REC);
    for (const b of files.binds) mount(b.source, b.target, null, MS_BIND);
    if (files.hostname !== undefined) sethostname(files.hostname);
    return fn();
  } finally {
    goHome(h);
  }
}

/** Runs fn (a spawn) in the mount and UTS namespaces of a live process of the container. */
export function inNamespacesOf<T>(pid: number, fn: () => T): T {
  const h = homeNamespaces();
  const mnt = open(`/proc/${pid}/ns/mnt`, O_RDONLY);
  let uts: number | undefined;
  try {
    uts = open(`/proc/${pid}/ns/uts`, O_RDONLY);
    setns(uts, CLONE_NEWUTS, `UTS namespace of process ${pid}`);
    try {
      setns(mnt, CLONE_NEWNS, `mount namespace of process ${pid}`);
      return fn();
    } finally {
      goHome(h);
    }
  } finally {
    close(mnt);
    if (uts !== undefined) close(uts);
  }
}
