// The processes tsnet is parent of: the ones Bun spawned for it, and the orphans it adopts as a
// child subreaper (a container's daemons, whose own parent has exited). Bun reaps its own
// children itself and crashes (an uncaught ECHILD) when someone else reaps one first, so the
// orphan reaper must know them all: every spawn in tsnet goes through spawnChild.
//
// Reaping is driven by SIGCHLD and costs nothing per container: waitid(WNOWAIT) names one exited
// child at a time; an orphan is reaped on the spot, and a child of Bun's ends the round (Bun
// reaps it, and the round resumes when its `exited` settles).
import { becomeSubreaper, peekExitedChild, reapChild } from "../../ffi/libc.ts";

const bunChildren = new Set<number>();
let reaping = false;

type SpawnOptions = NonNullable<Parameters<typeof Bun.spawn>[1]>;

/** Bun.spawn, remembering the child as Bun's own until Bun has reaped it. */
export function spawnChild(cmd: string[], options: SpawnOptions): Bun.Subprocess {
  const child = Bun.spawn(cmd, options);
  bunChildren.add(child.pid);
  void child.exited.finally(() => {
    bunChildren.delete(child.pid);
    if (reaping) reapOrphans();
  });
  return child;
}

/**
 * From now on orphaned descendants are re-parented to this process instead of to init, and
 * reaped here as they exit.
 */
export function adoptOrphans(): void {
  if (reaping) return;
  becomeSubreaper();
  reaping = true;
  process.on("SIGCHLD", reapOrphans);
}

/** Reaps every exited orphan now; returns how many. */
export function reapOrphans(): number {
  let n = 0;
  for (;;) {
    const pid = peekExitedChild();
    if (pid === 0 || bunChildren.has(pid)) return n;
    reapChild(pid);
    n++;
  }
}
