// A made container under its manager (the supervisor for `run -d`, or a foreground `tsnet run`):
// start its command, follow it to its last process, then, as its record says, start the command
// again in the same container or finish it:
//   - `tsnet restart` marked it (restartRequested): at once;
//   - its restart policy says so (`--restart`, detached only): after Docker's backoff, with the
//     record saying `restarting` meanwhile; a container stopped by hand (`stopped`) never is.
// Starting again keeps the container whole: the same record, id and name, network namespace,
// veth, address and MAC, published ports (nf_tables elements and the sockets reserving the host
// ports), resolver, /etc files and cgroup (empty between runs, the new command born in it). Only
// the processes are new. Every decision is made under the container's lock, reading the record
// afresh, so a `stop` racing a restart either finds the new run and stops it, or marks the
// container stopped before the new run could start.
import { createCgroup, removeCgroup } from "../cgroup/cgroup.ts";
import { loadRecord, saveRecord, withRecordLock, type ContainerRecord } from "../state/containers.ts";
import { TsnetError } from "../errors/errors.ts";
import { containerAlive, finishContainer, spawnIn, started, track, type Live, type Running, type Stdio } from "./lifecycle.ts";
import { startTime } from "./proc.ts";
import { mark } from "../errors/trace.ts";
import { Backoff, shouldRestart } from "./restart.ts";

/** What the command is: the same for every run. */
export interface Launch {
  command: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  uid?: number;
  gid?: number;
}

export interface ManageHooks {
  /** The command's stdio for one run; `done` once the command has it (the caller's fds can close). */
  stdio(): { stdio: Stdio; done(): void; terminal?: Bun.TerminalOptions };
  /** A run has started (a foreground manager routes forwarded signals to it). */
  started?(running: Running): void;
  /** A run has ended with `code`; `final`: the container is finished (its record says so). */
  ended?(code: number, final: boolean): void;
  /** The container is about to be finished (its network released, its record written). */
  finishing?(): void;
}

type Next = "finish" | "now" | number;

export class Managed {
  private readonly backoff = new Backoff();
  private startedAt = 0;
  private wakeUp: (() => void) | undefined;
  /** finishContainer has been called (a failure of its own does not call for another). */
  finished = false;

  constructor(readonly live: Live, private readonly launch: Launch, private readonly hooks: ManageHooks) {}

  get id(): string {
    return this.live.rec.id;
  }

  /**
   * Starts the command the first time and follows the container until it is finished; resolves
   * to the last run's exit status. Throws at once if the command cannot be started (the caller
   * finishes the container then).
   */
  start(): Promise<number> {
    const { child, running } = this.spawn();
    started(this.live, child);
    this.hooks.started?.(running);
    return this.follow(running);
  }

  /**
   * Follows a container adopted from a manager that died, whose run is under way (`running`, from
   * followAdopted); from its end on, as any other: its restart policy, `tsnet restart`, finishing.
   */
  adopt(running: Running): Promise<number> {
    this.startedAt = Date.parse(this.live.rec.startedAt ?? "") || Date.now();
    this.hooks.started?.(running);
    return this.follow(running);
  }

  /** Acts on the record now, instead of after the delay before a restart (a stop, a restart). */
  wake(): void {
    this.wakeUp?.();
  }

  private spawn(): { child: Bun.Subprocess; running: Running } {
    const { stdio, done, terminal } = this.hooks.stdio();
    let child: Bun.Subprocess;
    try {
      const { env, cwd, uid, gid } = this.launch;
      child = spawnIn(this.live, this.launch.command, stdio, { env, cwd, uid, gid, terminal });
    } finally {
      done();
    }
    this.startedAt = Date.now();
    mark("spawned");
    return { child, running: track(this.live, child) };
  }

  /**
   * Follows to the end. If following itself fails (the cgroup cannot be watched: out of
   * descriptors), the container is ended and released here, for whichever manager follows it,
   * rather than left running for the next command's recovery.
   */
  private async follow(first: Running): Promise<number> {
    try {
      return await this.runs(first);
    } catch (e) {
      if (!this.finished) {
        try {
          this.finish(125);
        } catch (undo) {
          if (e instanceof Error && undo instanceof Error) e.message += ` (and releasing it: ${undo.message})`;
        }
      }
      throw e;
    }
  }

  private async runs(first: Running): Promise<number> {
    let running = first;
    for (;;) {
      let code = await running.ended;
      mark("exited");
      for (;;) {
        const next = this.decide(code, Date.now() - this.startedAt);
        if (next === "finish") return this.finish(code);
        this.hooks.ended?.(code, false);
        if (typeof next === "number") await this.sleep(next);
        const again = this.again();
        if (again === undefined) return this.finish(code);
        if (typeof again === "number") {
          // The command could not be started (gone, not executable): a run that failed at once.
          code = again;
          this.startedAt = Date.now();
          continue;
        }
        running = again;
        this.hooks.started?.(running);
        break;
      }
    }
  }

  private finish(code: number): number {
    this.hooks.finishing?.();
    this.finished = true;
    try {
      finishContainer(this.live, code);
      mark("finished");
    } finally {
      this.hooks.ended?.(code, true);
    }
    return code;
  }

  /** Whether, and when, the command starts again; a restart by policy is recorded as `restarting`. */
  private decide(code: number, ranMs: number): Next {
    return withRecordLock(this.id, (): Next => {
      const rec = loadRecord(this.id);
      if (!rec) return "finish";
      this.live.rec = rec;
      if (rec.restartRequested) return "now";
      if (rec.stopped || !shouldRestart(rec.config?.restart, code, rec.restartCount ?? 0) || !baseRuns(rec)) return "finish";
      const delay = this.backoff.next(ranMs);
      rec.status = "restarting";
      rec.exitCode = code;
      rec.finishedAt = new Date().toISOString();
      rec.restartCount = (rec.restartCount ?? 0) + 1;
      rec.stopSignal = undefined;
      saveRecord(rec);
      return delay;
    });
  }

  /**
   * Starts the command again, unless the container was stopped meanwhile (undefined). Under the
   * lock: a stop that comes after finds the new run. A number: the command could not be started.
   */
  private again(): Running | number | undefined {
    return withRecordLock(this.id, () => {
      const rec = loadRecord(this.id);
      if (!rec || (rec.stopped && !rec.restartRequested) || !baseRuns(rec)) return undefined;
      rec.restartRequested = undefined;
      rec.stopped = undefined;
      rec.stopSignal = undefined;
      this.live.rec = rec;
      let spawned: { child: Bun.Subprocess; running: Running };
      try {
        // The same cgroup path, made anew: this kernel kills every process later born into a
        // cgroup (clone3 CLONE_INTO_CGROUP) once cgroup.kill has emptied it (measured, Linux 6.18).
        if (rec.cgroup) {
          removeCgroup(rec.cgroup);
          createCgroup(rec.cgroup);
        }
        spawned = this.spawn();
      } catch (e) {
        rec.status = "restarting";
        saveRecord(rec);
        if (e instanceof TsnetError) return e.exitCode;
        throw e;
      }
      rec.pid = spawned.child.pid;
      rec.pidStart = startTime(spawned.child.pid);
      rec.status = "running";
      rec.startedAt = new Date().toISOString();
      saveRecord(rec);
      return spawned.running;
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = undefined;
        done();
      };
    });
  }
}

/**
 * A container sharing another's network (`--network container:NAME`) can start again only while
 * that one runs: its namespace, address and ports are that container's, released when it ends.
 */
function baseRuns(rec: ContainerRecord): boolean {
  if (!rec.joined) return true;
  const base = loadRecord(rec.joined.id);
  return base !== undefined && containerAlive(base);
}
