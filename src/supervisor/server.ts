// The supervisor: one process for all detached containers, started on demand by `tsnet run -d`
// and gone once none remains. It creates each container (so it holds the container's liveness
// lock and port reservations), starts the command in its cgroup and its own session with stdout
// and stderr going straight into the container's log files (src/logs/watch.ts dates what they
// receive), follows it until its last process has ended, starts it again when its record or
// restart policy says so (src/container/manage.ts), records its exit status, releases its
// network, and reaps the container's orphaned descendants (it is their subreaper). When a
// supervisor dies (kill -9, an OOM kill, a crash) its containers go on running; the next one
// adopts them (src/container/lifecycle.ts, adoptContainer) and manages them as its own. One of
// another build asked to hand over exits the same way, leaving its containers to it. A Bun process
// costs ~25 MiB whatever it does, so one shared process is what keeps the per-container cost
// small; per container it keeps no timer (one only while waiting to restart it), and an inotify
// watch only while the first process has exited and others remain.
import { closeSync, lstatSync, writeAllSync } from "../../ffi/fs.ts";
import { LOCK_EX, O_CREAT, O_RDWR, flock } from "../../ffi/libc.ts";
import { log } from "../cli/log.ts";
import { Managed, type Launch, type ManageHooks } from "../container/manage.ts";
import { adoptContainer, createContainer, finishContainer, followAdopted, recoverOrphans, releaseOrphan, type Live } from "../container/lifecycle.ts";
import { startTime } from "../container/proc.ts";
import { selfIdentity } from "../cli/self.ts";
import { containFaults, faultPoint } from "../errors/contain.ts";
import { TsnetError } from "../errors/errors.ts";
import { LogWatch } from "../logs/watch.ts";
import { adoptOrphans, subreaperWarning } from "../process/children.ts";
import { createExclusive, ensureDir, openOwned, readText, removeFile, writeAtomic } from "../state/files.ts";
import { forgetContainer, loadRecord, releaseName, saveRecord, type ContainerRecord } from "../state/containers.ts";
import { NAMES_DIR, RUN_DIR, SUPERVISOR_BUILD, SUPERVISOR_LOCK, SUPERVISOR_SOCKET, runSpecPath } from "../state/paths.ts";
import { managerId, retireManager } from "../state/managers.ts";
import { Incoming, Outgoing, parseRequest, type Reply, type Request, type RunReply, type RunRequest, type SupervisorBuild } from "./protocol.ts";

/** One connection: the request coming in, then the reply going out. */
interface Conn {
  request: Incoming;
  reply?: Outgoing;
}

/** A detached container being managed, and the clients waiting for its current run to end. */
interface Entry {
  managed: Managed;
  waiters: ((code: number) => void)[];
}

/** How long an idle supervisor waits for new work before it exits. */
const IDLE_MS = 2000;

export async function supervise(): Promise<number> {
  ensureDir(RUN_DIR);
  const lockFd = openOwned(SUPERVISOR_LOCK, O_RDWR | O_CREAT)!;
  // Started only when none answers; one that is still on its way out holds this until it is gone.
  flock(lockFd, LOCK_EX, "supervisor.lock");
  // Every container's events land in this one process: one container's fault must not end it.
  containFaults("supervisor", { stack: true });
  adoptOrphans();
  removeFile(SUPERVISOR_SOCKET);
  managerId();

  const running = new Map<string, Entry>();
  const logs = new LogWatch();
  let clients = 0;
  let idleTimer: Timer | undefined;

  // The supervisor lives long and idles between bursts: give memory back after each burst, so
  // the resident cost per container stays near what the containers themselves need.
  let gcTimer: Timer | undefined;
  const collectSoon = () => {
    clearTimeout(gcTimer);
    gcTimer = setTimeout(() => Bun.gc(true), 200);
  };

  /** Stops listening, but only on a path that is still this one's (see maybeExit). */
  const stopListening = () => {
    // Bun's stop() unlinks the socket's path, whatever file is there now: with /run/tsnet emptied
    // under a live supervisor (a test's "reboot", an administrator's rm -rf) it may be the next
    // supervisor's socket. So only a path that is still this one's is stopped and removed;
    // otherwise the listening socket just closes as the process exits.
    if (lstatSync(SUPERVISOR_SOCKET, { throwIfNoEntry: false })?.ino === socketIno) {
      server.stop(true);
      removeFile(SUPERVISOR_SOCKET);
    }
    if (buildIno !== undefined && lstatSync(SUPERVISOR_BUILD, { throwIfNoEntry: false })?.ino === buildIno) removeFile(SUPERVISOR_BUILD);
  };

  const maybeExit = () => {
    collectSoon();
    clearTimeout(idleTimer);
    if (running.size || clients) return;
    idleTimer = setTimeout(() => {
      if (running.size || clients) return;
      // Stop listening first: a client that cannot connect starts a new supervisor.
      stopListening();
      retireManager();
      process.exit(0);
    }, IDLE_MS);
  };

  const failed = (e: unknown): RunReply => ({ ok: false, message: (e as Error).message, exitCode: e instanceof TsnetError ? e.exitCode : 125 });

  /** How the supervisor follows one of its containers: stdio on the log files, waiters told of each end. */
  const hooks = (id: string, entry: Entry): ManageHooks => ({
    stdio: () => {
      const fds = logs.open(id);
      if (entry.managed.live.rec.config?.tty !== true) {
        return { stdio: ["ignore", fds.stdout, fds.stderr], done: () => [fds.stdout, fds.stderr].forEach((fd) => closeSync(fd)) };
      }
      // -t: the command's terminal is held here and its output copied to the stdout log (one
      // stream, as Docker's log of a tty container). Nobody types into it (no attach yet).
      let out: number | undefined = fds.stdout;
      const closeOut = () => {
        if (out !== undefined) closeSync(out);
        out = undefined;
      };
      const terminal: Bun.TerminalOptions = {
        cols: 80, rows: 24, name: "xterm",
        data: (_t, d) => {
          if (out === undefined) return;
          try {
            writeAllSync(out, d);
          } catch (e) {
            // A full disk loses this container's output, never the supervisor.
            log.error(`${id.slice(0, 12)}: writing its terminal's output: ${(e as Error).message}`);
            closeOut();
          }
        },
        exit: (t) => {
          closeOut();
          t.close();
        },
      };
      return { stdio: ["ignore", "ignore", "ignore"], terminal, done: () => closeSync(fds.stderr) };
    },
    finishing: () => logs.close(id),
    ended: (code) => {
      for (const w of entry.waiters.splice(0)) w(code);
    },
  });

  /** Keeps the container in `running` until it is finished, then lets the supervisor go idle. */
  const follow = (live: Live, entry: Entry, ended: Promise<number>) => {
    const id = live.rec.id;
    running.set(id, entry);
    const finish = () => {
      running.delete(id);
      maybeExit();
    };
    // A failure to follow it has already ended and released it (Managed.follow).
    ended.then(finish, (e: unknown) => {
      log.error(`following ${live.rec.name}: ${(e as Error).message}`);
      finish();
    });
  };

  /**
   * A container of a dead manager whose processes live on: taken over, and followed from here as
   * if this supervisor had started it (its .spec says how to start it again).
   */
  const adopt = (found: ContainerRecord): void => {
    let spec: RunRequest | undefined;
    try {
      const text = readText(runSpecPath(found.id));
      spec = text === undefined ? undefined : (JSON.parse(text) as RunRequest);
    } catch {}
    if (!spec) {
      log.error(`adopting ${found.name}: what it was started with (${runSpecPath(found.id)}) cannot be read: releasing it`);
      releaseOrphan(found);
      return;
    }
    const live = adoptContainer(found);
    if (!live) return;
    const id = live.rec.id;
    try {
      logs.watch(id);
    } catch (e) {
      // Only the lines' times are lost: the reader dates what no mark covers by the file's mtime.
      log.warn(`${live.rec.name}: its log is not watched: ${(e as Error).message}`);
    }
    const launch: Launch = { command: spec.opts.command, env: spec.env, cwd: spec.cwd, uid: spec.uid, gid: spec.gid };
    const entry: Entry = { managed: undefined!, waiters: [] };
    entry.managed = new Managed(live, launch, hooks(id, entry));
    follow(live, entry, entry.managed.adopt(followAdopted(live)));
    log.info(`adopted container ${live.rec.name} (${id.slice(0, 12)}) from manager ${found.manager}`);
  };

  const recover = () => recoverOrphans(adopt);

  const startContainer = (req: RunRequest): RunReply => {
    recover();
    // An exited container started again (tsnet restart) keeps its id and name; its record comes
    // back as it was if that fails.
    let before: ContainerRecord | undefined;
    if (req.opts.id !== undefined) {
      before = loadRecord(req.opts.id);
      if (!before || before.status !== "exited" || running.has(req.opts.id)) {
        return { ok: false, message: `container ${before?.name ?? req.opts.id} is not an exited container of the supervisor's: it cannot be started again`, exitCode: 1 };
      }
    }
    // The same request again (the supervisor that took it died before answering): the container
    // made under its id is answered for if it runs here (adopted); one left behind half-made or
    // released was never anyone's, and is forgotten before it is made again.
    const fresh = req.opts.id === undefined ? req.newId : undefined;
    if (fresh !== undefined) {
      if (running.has(fresh)) return { ok: true, id: fresh };
      const earlier = loadRecord(fresh);
      if (earlier && earlier.status !== "exited") {
        // Not adopted here, not released: its manager's end is still being dealt with.
        return { ok: false, message: `container ${earlier.name} was being started by a supervisor that ended before it answered: see tsnet ps -a`, exitCode: 125 };
      }
      if (earlier) {
        releaseName(earlier.name, earlier.id);
        forgetContainer(earlier);
      }
    }
    let live: Live;
    try {
      live = createContainer({ ...req.opts, detached: true, ...(fresh !== undefined && { id: fresh }), ...(before && { created: before.created }) });
    } catch (e) {
      if (before) {
        saveRecord(before);
        createExclusive(`${NAMES_DIR}/${before.name}`, before.id);
      }
      return failed(e);
    }
    const id = live.rec.id;
    if (req.config) live.rec.config = req.config;
    const entry: Entry = { managed: undefined!, waiters: [] };
    entry.managed = new Managed(live, { command: req.opts.command, env: req.env, cwd: req.cwd, uid: req.uid, gid: req.gid }, hooks(id, entry));
    let ended: Promise<number>;
    try {
      // What it was started with, to start it again once it has exited (tsnet restart), or by
      // a supervisor that adopts it.
      writeAtomic(runSpecPath(id), JSON.stringify({ ...req, opts: { ...req.opts, id: undefined } }));
      ended = entry.managed.start();
    } catch (e) {
      // Its command never started (the run spec or its /etc files not written, its logs not
      // opened, the command not found): a new container is undone whole, record, name, logs and
      // run spec included; one started again (tsnet restart) is kept, exited, as it was before.
      logs.close(id);
      const code = e instanceof TsnetError ? e.exitCode : 125;
      try {
        finishContainer(live, code, before === undefined);
      } catch (undo) {
        if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
      }
      return failed(e);
    }
    follow(live, entry, ended);
    faultPoint("supervisor-started-container");
    const warnings = [subreaperWarning, live.warning].filter((w) => w !== undefined);
    return { ok: true, id, ...(warnings.length && { warning: warnings.join("\n") }) };
  };

  /**
   * A tsnet of another build asked for the containers: what is still to be marked in the logs is
   * marked, a container waiting out its restart delay is started now (one with no process would
   * be released by the adopter: its namespace lives only in this process), and once the answer is
   * out the process exits without releasing anything. Its manager lock goes with it, so the
   * asking tsnet finds it dead and a supervisor of its own build adopts every container.
   */
  const handOver = () => {
    handingOver = true;
    clearTimeout(idleTimer);
    for (const entry of running.values()) entry.managed.wake();
    // After the woken restarts (promise continuations) and the reply's write.
    setTimeout(() => {
      for (const id of running.keys()) logs.close(id);
      stopListening();
      log.info(`handed ${running.size} container(s) over to another build of tsnet`);
      process.exit(0);
    }, 50);
  };
  let handingOver = false;

  /** Answers now, or (wait) once the container's run has ended. */
  const handle = (req: Request, reply: (r: Reply) => void): void => {
    if (handingOver) return reply({ ok: false, message: "the tsnet supervisor is handing its containers over to another build of tsnet: try again", exitCode: 125 });
    if (req.op === "run") return reply(startContainer(req));
    if (req.op === "adopt") {
      recover();
      return reply({ ok: true });
    }
    if (req.op === "handover") {
      if (req.exe === selfIdentity()) return reply({ ok: false, message: "the supervisor runs this build of tsnet already", exitCode: 125 });
      reply({ ok: true });
      return handOver();
    }
    const entry = running.get(req.id);
    if (req.op === "wake") {
      entry?.managed.wake();
      return reply({ ok: true });
    }
    if (req.op === "wait") {
      if (!entry) return reply({ ok: true, managed: false });
      entry.waiters.push((exitCode) => reply({ ok: true, managed: true, exitCode }));
      return;
    }
    reply({ ok: false, message: `supervisor: unknown request "${(req as { op: string }).op}"`, exitCode: 125 });
  };

  const answer = (s: Bun.Socket<Conn>, reply: Reply) => {
    s.data.reply = new Outgoing(reply);
    if (s.data.reply.pump(s)) s.end();
  };

  // Before listening: a client that started this supervisor to adopt containers (a command that
  // found their manager dead) waits until it answers, and then finds them adopted.
  try {
    recover();
  } catch (e) {
    log.error(`adopting containers: ${(e as Error).message}`);
  }

  // The socket is made root's and 0600 (the umask, while it is bound), though the directory
  // already keeps everyone else out.
  const umask = process.umask(0o077);
  let server: ReturnType<typeof Bun.listen<Conn>>;
  try {
    server = Bun.listen<Conn>({
      unix: SUPERVISOR_SOCKET,
      socket: {
        open(s) {
          clients++;
          clearTimeout(idleTimer);
          s.data = { request: new Incoming() };
        },
        data(s, chunk) {
          if (s.data.reply) return; // one request per connection
          let text: string | undefined;
          try {
            text = s.data.request.add(chunk);
          } catch (e) {
            answer(s, { ok: false, message: `supervisor: request refused: ${(e as Error).message}`, exitCode: 125 });
            return;
          }
          if (text === undefined) return;
          let req: Request;
          try {
            req = parseRequest(text);
          } catch (e) {
            answer(s, { ok: false, message: `supervisor: request refused: ${(e as Error).message}`, exitCode: 125 });
            return;
          }
          try {
            handle(req, (reply) => answer(s, reply));
          } catch (e) {
            answer(s, { ok: false, message: `supervisor: ${(e as Error).message}`, exitCode: 125 });
          }
        },
        // The reply did not fit at once: the rest goes as the socket drains.
        drain(s) {
          if (s.data.reply?.pump(s)) s.end();
        },
        close() {
          clients--;
          maybeExit();
        },
        error() {},
      },
    });
  } finally {
    process.umask(umask);
  }
  const socketIno = lstatSync(SUPERVISOR_SOCKET).ino;
  // Who listens, and which executable it runs: a tsnet of another build asks it to hand over.
  // Without it (a full /run) nothing but the handover is lost: a newer tsnet leaves this one be.
  let buildIno: bigint | undefined;
  try {
    const build: SupervisorBuild = { pid: process.pid, start: startTime(process.pid) ?? 0, exe: selfIdentity() };
    writeAtomic(SUPERVISOR_BUILD, JSON.stringify(build));
    buildIno = lstatSync(SUPERVISOR_BUILD).ino;
  } catch (e) {
    log.warn(`a newer tsnet will not be able to take this supervisor's containers over: ${(e as Error).message}`);
  }

  maybeExit();
  return await new Promise<number>(() => {});
}
