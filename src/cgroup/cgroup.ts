// Each container is a cgroup of the unified (v2) hierarchy: <mount>/<parent>/<container id>.
// The command is born inside it (Bun.spawn's `cgroup` option joins it between fork and exec), so
// every process it ever starts is in it too, whatever it does to its process group or session.
// The kernel keeps the count: cgroup.events says `populated 0` once the last process has exited,
// and inotify on that file announces the change; cgroup.kill ends them all at once.
//
// A leaf: reads and writes cgroupfs files with node:fs and signals through ffi, nothing more.
import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "../../ffi/fs.ts";
import { kill } from "../../ffi/libc.ts";
import { KernelError, UsageError } from "../errors/errors.ts";
import { EACCES, EBUSY, EPERM, EROFS } from "../errors/errno.ts";

/** The parent cgroup of every container, relative to the hierarchy's mount. */
export const DEFAULT_PARENT = "tsnet";

let mountPoint: string | null | undefined;

/** Where the unified hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
 * host), from /proc/self/mountinfo; undefined when it is mounted nowhere. */
export function cgroup2Mount(): string | undefined {
  if (mountPoint === undefined) {
    let text: string;
    try {
      text = readFileSync("/proc/self/mountinfo", "utf8");
    } catch (e) {
      // Not remembered as "no cgroup v2": a long-lived supervisor out of descriptors for a moment
      // would otherwise give up cgroups for good.
      if (typeof (e as NodeJS.ErrnoException).errno !== "number") throw e;
      throw asKernelError(e, "read", "/proc/self/mountinfo");
    }
    mountPoint = null;
    for (const line of text.split("\n")) {
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
      const dash = line.indexOf(" - ");
      if (dash < 0 || !line.startsWith("cgroup2 ", dash + 3)) continue;
      const field = line.slice(0, dash).split(" ")[4];
      if (field) {
        mountPoint = unescapeOctal(field);
        break;
      }
    }
  }
  return mountPoint ?? undefined;
}

/** mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

const SEGMENT = /^[A-Za-z0-9_.@:+-]+$/;

/** TSNET_CGROUP_PARENT, or "tsnet": a relative path such as `tsnet` or `ci/tsnet-42`. */
export function parentName(): string {
  const v = process.env.TSNET_CGROUP_PARENT;
  if (v === undefined || v === "") return DEFAULT_PARENT;
  const parts = v.split("/");
  if (parts.some((p) => !SEGMENT.test(p) || p === "." || p === "..")) {
    throw new UsageError(
      `TSNET_CGROUP_PARENT="${v}" is not a cgroup path tsnet can use: give a relative path such as tsnet or ci/tsnet-1 (letters, digits, _ . - @ : +)`,
    );
  }
  return v;
}

export type Placement = { path: string } | { fallback: string | undefined };

/**
 * Where a container's cgroup goes, with its parent made if need be; or why there is none
 * (`fallback` is the reason for the user's warning, undefined when TSNET_NO_CGROUP=1 asked for it).
 */
export function placeContainer(id: string): Placement {
  if (process.env.TSNET_NO_CGROUP === "1") return { fallback: undefined };
  const parentRel = parentName();
  const root = cgroup2Mount();
  if (!root) return { fallback: "no cgroup v2 hierarchy is mounted" };
  const parent = `${root}/${parentRel}`;
  try {
    mkdirSync(parent, { recursive: true, mode: 0o755 });
  } catch (e) {
    const errno = -((e as NodeJS.ErrnoException).errno ?? 0);
    // A read-only or foreign hierarchy (inside another container, say) is as good as none.
    if (errno === EROFS || errno === EACCES || errno === EPERM) {
      return { fallback: `cannot make cgroups under ${root} (${(e as NodeJS.ErrnoException).code})` };
    }
    throw asKernelError(e, "make cgroup", parent);
  }
  return { path: `${parent}/${id}` };
}

export function createCgroup(path: string): void {
  try {
    mkdirSync(path, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw asKernelError(e, "make cgroup", path);
  }
}

function asKernelError(e: unknown, op: string, path: string): KernelError {
  const x = e as NodeJS.ErrnoException;
  const errno = -(x.errno ?? 0);
  return new KernelError(op, path, errno > 0 ? errno : 0, x.code);
}

/** A cgroup's files answer ENODEV while the cgroup is being removed, ENOENT once it is gone. */
function gone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENODEV";
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if (gone(e)) return undefined;
    throw e;
  }
}

/** Whether any process lives in the cgroup or below it. A cgroup that is gone holds none. */
export function isPopulated(path: string): boolean {
  const events = readOrUndefined(`${path}/cgroup.events`);
  return events !== undefined && /^populated 1$/m.test(events);
}

/** Every process of the cgroup and of the cgroups its processes made below it. */
export function cgroupPids(path: string): number[] {
  const out: number[] = [];
  const procs = readOrUndefined(`${path}/cgroup.procs`);
  if (procs === undefined) return out;
  for (const p of procs.split("\n")) if (p) out.push(Number(p));
  for (const sub of subgroups(path)) out.push(...cgroupPids(sub));
  return out;
}

function subgroups(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${path}/${d.name}`);
  } catch (e) {
    if (gone(e)) return [];
    throw e;
  }
}

/**
 * Sends sig to every process of the cgroup. A process forked while the list was read is caught
 * by reading it again, until a pass finds nobody new. Returns how many were signalled.
 */
export function signalCgroup(path: string, sig: number): number {
  const done = new Set<number>();
  for (let pass = 0; pass < 5; pass++) {
    let fresh = 0;
    for (const pid of cgroupPids(path)) {
      if (done.has(pid)) continue;
      done.add(pid);
      fresh++;
      kill(pid, sig);
    }
    if (fresh === 0) break;
  }
  return done.size;
}

/** SIGKILL to every process at once (cgroup.kill, Linux 5.14); older kernels get one by one. */
export function killCgroup(path: string): void {
  try {
    writeFileSync(`${path}/cgroup.kill`, "1");
    return;
  } catch (e) {
    // Being removed (its manager saw it empty): nothing left to kill.
    if ((e as NodeJS.ErrnoException).code === "ENODEV") return;
    if (!gone(e)) throw asKernelError(e, "write", `${path}/cgroup.kill`);
  }
  signalCgroup(path, 9); // no cgroup.kill on this kernel (or no cgroup: then nobody to signal)
}

/** Waits (blocking) until the cgroup is empty; false after `ms`. */
export function waitEmptySync(path: string, ms: number): boolean {
  const deadline = Date.now() + ms;
  while (isPopulated(path)) {
    if (Date.now() >= deadline) return false;
    Bun.sleepSync(1);
  }
  return true;
}

/**
 * Resolves once the cgroup is empty. Costs one inotify watch on cgroup.events while it waits
 * (Bun shares one inotify instance among all watches) and nothing once it has resolved.
 */
export function whenEmpty(path: string): Promise<void> {
  if (!isPopulated(path)) return Promise.resolve();
  // node:fs only here, where a container outlives its first process: building that module costs
  // every process that imports it over a millisecond (ffi/fs.ts).
  const { watch } = require("node:fs") as typeof import("node:fs");
  return new Promise((resolve) => {
    let w: ReturnType<typeof watch> | undefined;
    const check = () => {
      if (isPopulated(path)) return;
      w?.close();
      resolve();
    };
    try {
      w = watch(`${path}/cgroup.events`, check);
      w.on("error", () => {
        w?.close();
        resolve();
      });
    } catch {
      resolve(); // the cgroup went away between the check and the watch
      return;
    }
    check(); // the last process may have gone before the watch was in place
  });
}

const KILL_WAIT_MS = 10_000;

/**
 * Ends every process of the cgroup and removes it and whatever its processes made below it.
 * A cgroup that is already gone is not an error: teardown is idempotent.
 */
export function removeCgroup(path: string): void {
  if (isPopulated(path)) {
    killCgroup(path);
    if (!waitEmptySync(path, KILL_WAIT_MS)) {
      throw new KernelError("remove cgroup", path, EBUSY, `processes ${cgroupPids(path).join(" ")} survived SIGKILL`);
    }
  }
  for (const sub of subgroups(path)) removeCgroup(sub);
  try {
    rmdirSync(path);
  } catch (e) {
    if (!gone(e)) throw asKernelError(e, "remove cgroup", path);
  }
}
