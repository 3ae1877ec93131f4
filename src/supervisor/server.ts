// The supervisor: one process for all detached containers, started on demand by `tsnet run -d`
// and gone once none remains. It creates each container (so it holds the container's liveness
// lock and port reservations), starts the command in its cgroup and its own session with stdout
// and stderr going to the container's log, follows it until its last process has ended, records
// its exit status, releases its network, and reaps the container's orphaned descendants (it is
// their subreaper). A Bun process costs ~25 MiB whatever it does, so one shared process is what
// keeps the per-container cost small; per container it keeps no timer, and an inotify watch only
// while the first process has exited and others remain.
import { closeSync } from "node:fs";
import { LOCK_EX, O_APPEND, O_CREAT, O_RDWR, O_WRONLY, flock } from "../../ffi/libc.ts";
import { log } from "../cli/log.ts";
import { createContainer, finishContainer, recoverOrphans, spawnIn, started, track, type Live } from "../container/lifecycle.ts";
import { TsnetError } from "../errors/errors.ts";
import { adoptOrphans } from "../process/children.ts";
import { ensureDir, openOwned, removeFile } from "../state/files.ts";
import { RUN_DIR, SUPERVISOR_LOCK, SUPERVISOR_SOCKET } from "../state/paths.ts";
import { retireManager } from "../state/managers.ts";
import { Incoming, Outgoing, logPath, type RunReply, type RunRequest } from "./protocol.ts";

/** One connection: the request coming in, then the reply going out. */
interface Conn {
  request: Incoming;
  reply?: Outgoing;
}

/** How long an idle supervisor waits for new work before it exits. */
const IDLE_MS = 2000;

export async function supervise(): Promise<number> {
  ensureDir(RUN_DIR);
  const lockFd = openOwned(SUPERVISOR_LOCK, O_RDWR | O_CREAT)!;
  // Started only when none answers; one that is still on its way out holds this until it is gone.
  flock(lockFd, LOCK_EX, "supervisor.lock");
  adoptOrphans();
  removeFile(SUPERVISOR_SOCKET);

  const running = new Set<Live>();
  let clients = 0;
  let idleTimer: Timer | undefined;

  // The supervisor lives long and idles between bursts: give memory back after each burst, so
  // the resident cost per container stays near what the containers themselves need.
  let gcTimer: Timer | undefined;
  const collectSoon = () => {
    clearTimeout(gcTimer);
    gcTimer = setTimeout(() => Bun.gc(true), 200);
  };

  const maybeExit = () => {
    collectSoon();
    clearTimeout(idleTimer);
    if (running.size || clients) return;
    idleTimer = setTimeout(() => {
      if (running.size || clients) return;
      // Stop listening first: a client that cannot connect starts a new supervisor.
      server.stop(true);
      removeFile(SUPERVISOR_SOCKET);
      retireManager();
      process.exit(0);
    }, IDLE_MS);
  };

  const startContainer = (req: RunRequest): RunReply => {
    recoverOrphans();
    let live: Live;
    try {
      live = createContainer({ ...req.opts, detached: true });
    } catch (e) {
      return { ok: false, message: (e as Error).message, exitCode: e instanceof TsnetError ? e.exitCode : 125 };
    }
    const id = live.rec.id;
    let child: Bun.Subprocess;
    try {
      const out = openOwned(logPath(id), O_WRONLY | O_CREAT | O_APPEND)!;
      try {
        child = spawnIn(live, req.opts.command, ["ignore", out, out], { env: req.env, cwd: req.cwd });
      } finally {
        closeSync(out);
      }
    } catch (e) {
      const code = e instanceof TsnetError ? e.exitCode : 125;
      finishContainer(live, code);
      return { ok: false, message: (e as Error).message, exitCode: code };
    }
    const { ended } = track(live, child);
    started(live, child);
    running.add(live);
    const finish = (code: number) => {
      running.delete(live);
      try {
        finishContainer(live, code);
      } catch (e) {
        log.error(`releasing ${live.rec.name}: ${(e as Error).message}`);
      }
      maybeExit();
    };
    ended.then(finish, (e: unknown) => {
      log.error(`following ${live.rec.name}: ${(e as Error).message}`);
      finish(125);
    });
    return { ok: true, id, warning: live.warning };
  };

  const answer = (s: Bun.Socket<Conn>, reply: RunReply) => {
    s.data.reply = new Outgoing(reply);
    if (s.data.reply.pump(s)) s.end();
  };

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
          let reply: RunReply;
          try {
            reply = startContainer(JSON.parse(text) as RunRequest);
          } catch (e) {
            reply = { ok: false, message: `supervisor: ${(e as Error).message}`, exitCode: 125 };
          }
          answer(s, reply);
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

  maybeExit();
  return await new Promise<number>(() => {});
}
