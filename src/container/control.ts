// What the object commands (stop, rm, exec, logs, inspect) share: resolving references and
// waiting for a container to end.
import { existsSync } from "node:fs";
import { TsnetError } from "../errors/errors.ts";
import { findContainer, loadRecord, type ContainerRecord } from "../state/containers.ts";
import { recoverOrphans } from "./lifecycle.ts";
import { isSameProcess, signalCommand } from "./proc.ts";

/** Docker's code for a command that failed on an object (no such container, not running...). */
export const OBJECT_ERROR = 1;

export function mustFind(ref: string): ContainerRecord {
  const rec = findContainer(ref);
  if (!rec) throw new TsnetError(`no such container: ${ref}`, OBJECT_ERROR);
  return rec;
}

export function isRunning(rec: ContainerRecord): boolean {
  return rec.status === "running" || rec.status === "created";
}

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
 * TERM (or the given signal), then KILL after `seconds`, as `docker stop` does. Resolves when the
 * container has ended.
 */
export async function stopContainer(rec: ContainerRecord, seconds: number, first = 15): Promise<void> {
  if (!isRunning(rec) || rec.pid === undefined) return;
  signalCommand(rec.pid, rec.pidStart, rec.detached === true, first);
  if (await waitEnded(rec.id, seconds * 1000)) return;
  signalCommand(rec.pid, rec.pidStart, rec.detached === true, 9);
  if (!(await waitEnded(rec.id, 10_000))) {
    throw new TsnetError(`container ${rec.name} did not end after SIGKILL`, OBJECT_ERROR);
  }
}

/** Runs fn for each reference; reports failures one line each and returns Docker's exit code. */
export async function eachRef(refs: string[], fn: (ref: string) => Promise<void> | void, report: (e: Error) => void): Promise<number> {
  let code = 0;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (e) {
      report(e as Error);
      code = e instanceof TsnetError && e.exitCode !== 125 ? e.exitCode : code || 1;
    }
  }
  return code;
}
