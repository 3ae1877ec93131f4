// Owned state. tsnet acts, as root, on what its state says: it kills the processes a record
// names, deletes the links, files and namespaces it lists. So it believes a directory, file or
// socket under its roots (/run/tsnet, the state directory, /run/netns) only when nobody but root
// can have written it:
// - every directory from the root down is root's and writable by no one else; the directories
//   above a root are root's and, when anyone may write to them, sticky (a 1777 /run: others can
//   add entries there but cannot rename or remove root's);
// - a file or socket is root's, writable by no one else, and of the kind expected; a final
//   component is never followed through a symbolic link (O_NOFOLLOW).
// Whoever made /run/tsnet first (a user, where /run is 1777 or a container's tmpfs) would
// otherwise decide what root kills. Anything else is refused with one line naming the path.
// Cost: one lstat per directory per process (cached; only root can change them afterwards),
// one fstat per file opened.
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, realpathSync, statSync, type Stats } from "../../ffi/fs.ts";
import { O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } from "../../ffi/libc.ts";
import { KernelError, RefusedStateError, TsnetError } from "../errors/errors.ts";
import { NETNS_DIR, RUN_DIR, STATE_DIR } from "./paths.ts";

const S_IFMT = 0o170000, S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFSOCK = 0o140000, S_IFLNK = 0o120000;
const S_ISVTX = 0o1000;
/** Writable by its group or by everyone. */
const W_OTHERS = 0o022;


const ROOTS = [RUN_DIR, STATE_DIR, NETNS_DIR];

/** Directories already checked by this process. */
const trusted = new Set<string>();

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function rootOf(path: string): string {
  let best: string | undefined;
  for (const r of ROOTS) if ((path === r || path.startsWith(`${r}/`)) && (best === undefined || r.length > best.length)) best = r;
  if (best === undefined) throw new Error(`${path} is not under tsnet's state directories`);
  return best;
}

function kindOf(mode: number): string {
  switch (mode & S_IFMT) {
    case S_IFDIR: return "a directory";
    case S_IFREG: return "a regular file";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "a device or pipe";
  }
}

function modeText(mode: number): string {
  return `mode ${(mode & 0o7777).toString(8).padStart(4, "0")}`;
}

function writers(mode: number): string {
  return mode & 0o002 ? "everyone" : "its group";
}

/** Why st cannot be trusted as a `want` (S_IFDIR, S_IFREG, S_IFSOCK), or undefined. */
function distrust(st: Stats, want: number): string | undefined {
  if ((st.mode & S_IFMT) !== want) return `it is ${kindOf(st.mode)}, not ${kindOf(want)}`;
  if (st.uid !== 0) return `it is owned by uid ${st.uid}, not root`;
  if (st.mode & W_OTHERS) return `it is writable by ${writers(st.mode)} (${modeText(st.mode)})`;
  return undefined;
}

/** Throws the refusal a state file at path earns (not a regular file, not root's, writable by others). */
export function checkOwnedFile(path: string, st: Stats): void {
  const why = distrust(st, S_IFREG);
  if (why) throw refusal(path, why);
}

function refusal(path: string, why: string, todo = "remove it"): RefusedStateError {
  return new RefusedStateError(`refusing ${path}: ${why}, so what it holds may have been forged: ${todo}`);
}

/** What to do about a file system error on a path under root. */
function hint(errno: number, root: string): string | undefined {
  const elsewhere = root === STATE_DIR ? ", or set TSNET_STATE_DIR to a writable directory" : "";
  switch (errno) {
    case 28: // ENOSPC
    case 122: // EDQUOT
      return `free space on the file system holding ${root}`;
    case 30: // EROFS
      return `make ${root} writable${elsewhere}`;
    case 13: // EACCES
    case 1: // EPERM
      return `tsnet's state is root's: run tsnet as root`;
    default:
      return undefined;
  }
}

/**
 * A failed file system call on a state path as one line: the operation, the path, the errno's
 * name and text, and what to do. Anything that is not an errno error passes through.
 */
export function fsError(op: string, path: string, e: unknown): Error {
  if (e instanceof TsnetError) return e;
  const x = e as NodeJS.ErrnoException;
  if (typeof x?.errno !== "number") return e as Error;
  const errno = Math.abs(x.errno);
  // Node's text: "ENOSPC: no space left on device, write"
  const text = /^[A-Z0-9]+: ([^,]+)/.exec(x.message)?.[1];
  const k = new KernelError(op, path, errno, text);
  let root: string | undefined;
  try {
    root = rootOf(path);
  } catch {}
  const todo = root === undefined ? undefined : hint(errno, root);
  if (todo) k.message += `: ${todo}`;
  return k;
}

/**
 * Refuses a root whose parents let someone else replace it: each directory above it (as the
 * kernel resolves them) must be root's and, if others may write to it, sticky.
 */
function checkAbove(root: string): void {
  let dir = parentOf(root);
  let real: string | undefined;
  while (real === undefined) {
    try {
      real = realpathSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fsError("resolve", dir, e);
      dir = parentOf(dir); // made below, root's, with the root
    }
  }
  for (let p = real; ; p = parentOf(p)) {
    let st: Stats;
    try {
      st = statSync(p);
    } catch (e) {
      throw fsError("examine", p, e);
    }
    const todo = root === STATE_DIR ? "keep it under directories only root can change (TSNET_STATE_DIR)" : `make ${p} root's and not writable by others`;
    if (st.uid !== 0) throw refusal(root, `its parent ${p} is owned by uid ${st.uid}, not root`, todo);
    if (st.mode & W_OTHERS && !(st.mode & S_ISVTX)) {
      throw refusal(root, `its parent ${p} is writable by ${writers(st.mode)} without the sticky bit (${modeText(st.mode)})`, `chmod +t ${p}, or ${todo}`);
    }
    if (p === "/") return;
  }
}

/**
 * Checks dir and every directory between it and its root (once per process). Missing: false,
 * unless `create`, which makes it (root's, `mode`). Throws a one-line refusal for a directory
 * that is not root's alone.
 */
export function trustDir(dir: string, create = false, mode = 0o700): boolean {
  if (trusted.has(dir)) return true;
  const root = rootOf(dir);
  if (dir === root) checkAbove(root);
  else if (!trustDir(parentOf(dir), create)) return false;
  let st: Stats | undefined;
  try {
    st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st) {
      if (!create) return false;
      try {
        // A root's missing parents are made with it (mkdir -p), root's too.
        mkdirSync(dir, { mode, recursive: dir === root });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw fsError("make directory", dir, e);
      }
      st = lstatSync(dir);
    }
  } catch (e) {
    throw fsError("examine", dir, e);
  }
  const why = distrust(st, S_IFDIR);
  if (why) throw refusal(dir, why, dir === RUN_DIR || dir === STATE_DIR ? "remove it (tsnet makes its own, root's, mode 0700)" : "remove it");
  trusted.add(dir);
  return true;
}

/** A directory tsnet has removed: trusted again only once checked (or made) again. */
export function forgetDir(dir: string): void {
  trusted.delete(dir);
}

/** trustDir(dir, create=true): the directory exists, root's, and is trusted. */
export function ensureDir(dir: string, mode = 0o700): void {
  trustDir(dir, true, mode);
}

/**
 * open(2) of a state file: its directory trusted first, never through a symbolic link, and a
 * file that existed before checked with fstat. undefined when it does not exist (and flags do
 * not create it) or, with O_EXCL, when it already exists.
 */
export function openOwned(path: string, flags: number, mode = 0o600): number | undefined {
  const create = (flags & O_CREAT) !== 0;
  if (!trustDir(parentOf(path), create)) return undefined;
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted at a state file's path opens at once, to be refused below,
    // instead of blocking every command that reads it.
    fd = openSync(path, flags | O_NOFOLLOW | O_NONBLOCK, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !create) return undefined;
    if (code === "EEXIST" && flags & O_EXCL) return undefined;
    if (code === "ELOOP") throw refusal(path, "it is a symbolic link, where tsnet keeps only files of its own");
    throw fsError(create ? "create" : "open", path, e);
  }
  if (!(flags & O_EXCL)) {
    let why: string | undefined;
    try {
      why = distrust(fstatSync(fd), S_IFREG);
    } catch (e) {
      closeSync(fd);
      throw fsError("examine", path, e);
    }
    if (why) {
      closeSync(fd);
      throw refusal(path, why);
    }
  }
  return fd;
}

/** A unix socket of tsnet's: false when absent; refused unless root's alone. */
export function trustSocket(path: string): boolean {
  if (!trustDir(parentOf(path))) return false;
  let st: Stats | undefined;
  try {
    st = lstatSync(path, { throwIfNoEntry: false });
  } catch (e) {
    throw fsError("examine", path, e);
  }
  if (!st) return false;
  const why = distrust(st, S_IFSOCK);
  if (why) throw refusal(path, why);
  return true;
}

/** A persisted namespace tsnet may open or remove: one name directly under /run/netns. */
export function checkNetnsPath(path: string): string {
  const name = path.startsWith(`${NETNS_DIR}/`) ? path.slice(NETNS_DIR.length + 1) : "";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`not a namespace under ${NETNS_DIR}: ${JSON.stringify(path)}`);
  trustDir(NETNS_DIR);
  return path;
}
