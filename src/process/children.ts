// The processes tsnet is parent of: the ones Bun spawned for it, and the orphans it adopts as a
// child subreaper (a container's daemons, whose own parent has exited). Bun reaps its own
// children itself and crashes (an uncaught ECHILD) when someone else reaps one first, so the
// orphan reaper must know them all: every spawn in tsnet goes through spawnChild.
//
// Reaping is driven by SIGCHLD and costs nothing per container: waitid(WNOWAIT) names one exited
// child at a time; an orphan is reaped on the spot, and a child of Bun's ends the round (Bun
// reaps it, and the round resumes when its `exited` settles).
import { argMax, becomeSubreaper, peekExitedChild, reapChild } from "../../ffi/libc.ts";
import { TsnetError } from "../errors/errors.ts";

const bunChildren = new Set<number>();
let reaping = false;

type SpawnOptions = NonNullable<Parameters<typeof Bun.spawn>[1]>;

/** Bun.spawn, remembering the child as Bun's own until Bun has reaped it. */
export function spawnChild(cmd: string[], options: SpawnOptions): Bun.Subprocess {
  let child: Bun.Subprocess;
  try {
    child = Bun.spawn(cmd, options);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "E2BIG") throw tooBig(cmd, options.env ?? process.env);
    throw e;
  }
  bunChildren.add(child.pid);
  void child.exited.finally(() => {
    bunChildren.delete(child.pid);
    if (reaping) reapOrphans();
  });
  return child;
}

/** Why this process is not its containers' subreaper, for a one-line warning; undefined when it is. */
export let subreaperWarning: string | undefined;

/**
 * From now on orphaned descendants are re-parented to this process instead of to init, and
 * reaped here as they exit. Where the kernel (or qemu-user, which refuses the call itself) will
 * not make this process a subreaper, they go to init as anywhere else, which reaps them: the
 * container is still followed through its cgroup or process group, never through parenthood.
 */
export function adoptOrphans(): void {
  if (reaping) return;
  if (!becomeSubreaper()) {
    subreaperWarning = "prctl PR_SET_CHILD_SUBREAPER: EINVAL (qemu-user, or a kernel before 3.4): a container's orphaned processes are reaped by init instead of tsnet";
  }
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

/** The kernel's ceiling for one argument or environment string (MAX_ARG_STRLEN: 32 pages). */
const MAX_ARG_STRLEN = 32 * 4096;

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

/**
 * execve's E2BIG, said the way the kernel counts (fs/exec.c): every string with its NUL, plus a
 * pointer for each, must fit in ARG_MAX (a quarter of the stack limit, at most 6 MiB), and no one
 * string may pass 128 KiB.
 */
function tooBig(cmd: string[], env: Record<string, string | undefined>): TsnetError {
  const strings = [...cmd, ...Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)];
  const what = `cannot run "${cmd[0]}"`;
  const longest = strings.reduce((m, s) => Math.max(m, Buffer.byteLength(s) + 1), 0);
  if (longest > MAX_ARG_STRLEN) {
    return new TsnetError(`${what}: one of its arguments or environment variables is ${kib(longest)}, over the kernel's limit of 128 KiB for one string (E2BIG)`, 126);
  }
  const total = strings.reduce((n, s) => n + Buffer.byteLength(s) + 1 + 8, 0);
  return new TsnetError(
    `${what}: its arguments and environment take ${kib(total)}, over the kernel's limit of ${kib(argMax())} here (E2BIG; ARG_MAX is a quarter of the stack limit, ulimit -s)`,
    126,
  );
}
