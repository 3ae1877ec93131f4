// What the object commands (stop, rm, exec, logs, inspect, top) share: resolving references,
// a container's processes, ending it and waiting for it to end.
import { existsSync, readdirSync } from "../../ffi/fs.ts";
import { procStat } from "../process/stat.ts";
import { cgroupPids, killCgroup, signalCgroup } from "../cgroup/cgroup.ts";
import { RefusedStateError, TsnetError } from "../errors/errors.ts";
import { findContainer, isContainerRef, loadRecord, saveRecord, withRecordLock, type ContainerRecord } from "../state/containers.ts";
import { containerAlive, recoverOrphans } from "./lifecycle.ts";
import { SIGKILL, SIGTERM, isSameProcess, signalCommand, startTime } from "./proc.ts";

/** Docker's code for a command that failed on an object (no such container, not running...). */
export const OBJECT_ERROR = 1;

/**
 * The container a reference names, if any; a reference no container could ever have (a path,
 * odd characters) is still "no such container", and an ambiguous id prefix still an error.
 */
export function findContainerRef(ref: string): ContainerRecord | undefined {
  if (!isContainerRef(ref)) throw new TsnetError(`no such container: ${ref}`, OBJECT_ERROR);
  return findContainer(ref);
}

export function mustFind(ref: string): ContainerRecord {
  const rec = findContainer(ref);
  if (!rec) throw new TsnetError(`no such container: ${ref}`, OBJECT_ERROR);
  return rec;
}

/** Not exited: being set up, running, or waiting to be started again by its restart policy. */
export function isRunning(rec: ContainerRecord): boolean {
  return rec.status === "running" || rec.status === "created" || rec.status === "restarting";
}

/**
 * Whether a signal sent by hand ends the container for good, so that its restart policy does
 * not start it again: KILL, and TERM (its stop signal), as Docker decides for `docker kill`.
 * Any other signal (HUP to reload, USR1...) leaves the policy in place.
 */
export function stopsForGood(sig: number): boolean {
  return sig === SIGKILL || sig === SIGTERM;
}

/** Asks a container's manager to act on its record now (a stop or restart of a container waiting to restart). */
export type Wake = (rec: ContainerRecord) => Promise<void> | void;

/** The namespace a running container's commands run in (undefined: the host's). */
export function namespaceOf(rec: ContainerRecord): string | undefined {
  return rec.netns ?? rec.joined?.netns;
}

/**
 * The namespace a command run in a running container goes into (undefined: the host's). A
 * container joined to another (--network container:NAME) lives in that one's namespace, whose
 * /run/netns file goes when that container ends: then there is nothing to enter.
 */
export function runningNamespaceOf(rec: ContainerRecord): string | undefined {
  if (!rec.joined) return rec.netns;
  const base = loadRecord(rec.joined.id);
  if (!base || !isRunning(base) || !isSameProcess(base.pid, base.pidStart) || !existsSync(rec.joined.netns)) {
    const name = base?.name ?? rec.joined.id.slice(0, 12);
    throw new TsnetError(
      `container ${rec.name} shares the network of container ${name}, which has ended: stop ${rec.name} and run it again with a running container`,
      OBJECT_ERROR,
    );
  }
  return rec.joined.netns;
}

/** Polls until the container has ended (its manager recorded the exit or forgot it). */
export async function waitEnded(id: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const rec = loadRecord(id);
    if (!rec || rec.status === "exited") return true;
    if (Date.now() >= deadline) return false;
    await Bun.sleep(20);
    recoverOrphans(); // a manager that died meanwhile is cleaned up here
  }
}

/**
 * Sends sig to every process of the container (KILL through cgroup.kill, all at once); without a
 * cgroup, to its first process's group. The record notes the signal first, so that the exit
 * status can say the container was stopped. Under the container's lock, the signal included: a
 * container still being set up is waited for (its manager holds the lock until the command has
 * started), so a signal never misses a container that is about to run; and a manager starts a
 * run again only under that lock, so a signal meant for one run cannot reach the next. Returns
 * the record as it was then; undefined when the container was forgotten meanwhile (its setup
 * failed, or another rm took it).
 * `stops`: the container is stopped by hand, so its restart policy must not start it again; a
 * container waiting to restart has no process, and only that mark is left (its manager must be
 * woken to act on it).
 * `run`: only the run that started then (its startedAt); a later one is left alone (`tsnet
 * restart`'s KILL after -t seconds, when its manager has started the command again meanwhile).
 */
export function signalContainer(found: ContainerRecord, sig: number, stops = stopsForGood(sig), run?: string): ContainerRecord | undefined {
  return withRecordLock(found.id, () => {
    const now = loadRecord(found.id);
    if (!now || !isRunning(now) || (run !== undefined && now.startedAt !== run)) return now;
    if (now.status !== "restarting") now.stopSignal = sig;
    if (stops) {
      now.stopped = true;
      now.restartRequested = undefined;
    }
    saveRecord(now);
    if (now.status === "restarting") return now;
    // A cgroup tsnet cannot see here (its hierarchy is not mounted in this mount namespace) leaves
    // the first process's group as the next best thing.
    if (now.cgroup && existsSync(now.cgroup)) {
      if (sig === SIGKILL) killCgroup(now.cgroup);
      else signalCgroup(now.cgroup, sig);
    } else if (now.pid !== undefined) {
      signalCommand(now.pid, now.pidStart, sig);
    }
    return now;
  });
}

/**
 * TERM (or the given signal) to every process, then KILL after `seconds`, as `docker stop` does;
 * the container is marked stopped by hand, so no restart policy starts it again. Resolves when
 * the container has ended. A container waiting to restart has nothing to signal: its manager is
 * woken (`wake`) to end it now.
 */
export async function stopContainer(found: ContainerRecord, seconds: number, first = SIGTERM, wake?: Wake): Promise<void> {
  if (!isRunning(found)) return;
  const rec = signalContainer(found, first, true);
  if (!rec || !isRunning(rec)) return;
  if (rec.status === "restarting") await wake?.(rec);
  if (await waitEnded(rec.id, seconds * 1000)) return;
  if (first !== SIGKILL) signalContainer(rec, SIGKILL, true);
  if (!(await waitEnded(rec.id, 10_000))) {
    throw new TsnetError(`container ${rec.name} did not end after SIGKILL`, OBJECT_ERROR);
  }
}

/**
 * Runs fn for each reference; reports failures one line each and returns Docker's exit code: 1 for
 * a failure with one object, as Docker's CLI exits, unless it carries a code of its own; 125 when
 * tsnet refused its state (RefusedStateError), whatever else failed.
 */
export async function eachRef(refs: string[], fn: (ref: string) => Promise<void> | void, report: (e: Error) => void): Promise<number> {
  let code = 0;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (e) {
      report(e as Error);
      if (e instanceof RefusedStateError) code = 125;
      else if (code !== 125) code = e instanceof TsnetError && e.exitCode !== 125 ? e.exitCode : code || 1;
    }
  }
  return code;
}

/**
 * eachRef for all the references at once, as Docker's stop does them: a command that ignores
 * TERM costs its -t seconds once, not once per container. Output comes in the order they finish.
 */
export async function eachRefAtOnce(refs: string[], fn: (ref: string) => Promise<void> | void, report: (e: Error) => void): Promise<number> {
  const codes = await Promise.all(refs.map((ref) => eachRef([ref], fn, report)));
  return codes.find((c) => c !== 0) ?? 0;
}

/**
 * The pids of a running container: its cgroup's processes; without a cgroup, its first
 * process's group, found in /proc.
 */
export function containerPids(rec: ContainerRecord): number[] {
  if (!containerAlive(rec)) return [];
  if (rec.cgroup) {
    const pids = cgroupPids(rec.cgroup);
    if (pids.length) return pids.sort((a, b) => a - b);
  }
  if (rec.pid === undefined || !isSameProcess(rec.pid, rec.pidStart)) return [];
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (procStat(Number(name)).ppid === rec.pid) out.push(Number(name));
    } catch {} // gone meanwhile
  }
  return out.sort((a, b) => a - b);
}

/**
 * The container's main pid (inspect's State.Pid): its first process while that lives, then the
 * longest-running of the processes that remain; 0 when none does.
 */
export function mainPid(rec: ContainerRecord, pids: number[]): number {
  if (rec.pid !== undefined && isSameProcess(rec.pid, rec.pidStart)) return rec.pid;
  let best = 0;
  let bestStart = Infinity;
  for (const pid of pids) {
    const t = startTime(pid);
    if (t !== undefined && t < bestStart) [best, bestStart] = [pid, t];
  }
  return best;
}
