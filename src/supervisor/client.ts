// The clients' side: `tsnet run -d` hands the run to the supervisor, starting one if none is
// listening; `wait`, `stop`, `kill` and `restart` ask the one that is there; every command's
// recovery (`recover`) has containers whose manager died adopted by one, and a supervisor of
// another build hand its containers over first.
import { closeSync } from "../../ffi/fs.ts";
import { O_APPEND, O_CREAT, O_RDONLY, O_WRONLY, tryLock } from "../../ffi/libc.ts";
import { selfCommand, selfEnv, selfIdentity } from "../cli/self.ts";
import { recoverOrphans } from "../container/lifecycle.ts";
import { startTime } from "../container/proc.ts";
import { TsnetError } from "../errors/errors.ts";
import { log } from "../cli/log.ts";
import { spawnChild } from "../process/children.ts";
import { openOwned, readText, trustSocket, withLockAsync } from "../state/files.ts";
import { SUPERVISOR_BUILD, SUPERVISOR_LOCK, SUPERVISOR_LOG, SUPERVISOR_SOCKET, runSpecPath } from "../state/paths.ts";
import { newId, type ContainerRecord } from "../state/containers.ts";
import { Incoming, Outgoing, type Reply, type Request, type RunReply, type RunRequest, type SupervisorBuild, type WaitReply } from "./protocol.ts";

const START_WAIT_MS = 5000;

/** Sends the request and reads the reply; undefined when no supervisor took it. */
function ask<R extends Reply>(req: Request, delivery?: { sent: boolean }): Promise<R | undefined> {
  // Only a socket root alone could have made is told the environment.
  if (!trustSocket(SUPERVISOR_SOCKET)) return Promise.resolve(undefined);
  const request = new Outgoing(req);
  return new Promise((resolve, reject) => {
    const reply = new Incoming();
    let settled = false;
    const settle = (v: R | undefined, e?: unknown) => {
      if (settled) return;
      settled = true;
      if (e === undefined) resolve(v);
      else reject(e);
    };
    Bun.connect({
      unix: SUPERVISOR_SOCKET,
      socket: {
        open(s) {
          // From here on the supervisor may act on it, whether or not an answer comes back.
          if (delivery) delivery.sent = true;
          request.pump(s);
        },
        // The socket took part of the request: the rest goes as it drains.
        drain(s) {
          request.pump(s);
        },
        data(s, chunk) {
          try {
            const line = reply.add(chunk);
            if (line === undefined) return;
            // Settled before end(), which may run close() at once.
            settle(JSON.parse(line) as R);
          } catch (e) {
            settle(undefined, new TsnetError(`the tsnet supervisor's reply could not be read (${(e as Error).message}): see ${SUPERVISOR_LOG}`));
          }
          s.end();
        },
        close() {
          settle(undefined);
        },
        error() {
          settle(undefined);
        },
        connectError() {
          settle(undefined);
        },
      },
    }).catch(() => settle(undefined));
  });
}

function connectable(): Promise<boolean> {
  if (!trustSocket(SUPERVISOR_SOCKET)) return Promise.resolve(false);
  return new Promise((resolve) => {
    Bun.connect({
      unix: SUPERVISOR_SOCKET,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        data() {},
        connectError() {
          resolve(false);
        },
        error() {
          resolve(false);
        },
      },
    }).catch(() => resolve(false));
  });
}

async function startSupervisor(): Promise<void> {
  // One starter at a time: fifty `run -d` at once start one supervisor, not fifty.
  await withLockAsync("supervisor-start", async () => {
    if (await connectable()) return;
    const out = openOwned(SUPERVISOR_LOG, O_WRONLY | O_CREAT | O_APPEND)!;
    let child: Bun.Subprocess;
    try {
      child = spawnChild(selfCommand(["_supervise"]), { stdio: ["ignore", out, out], env: selfEnv(), cwd: "/", detached: true });
      child.unref();
    } finally {
      closeSync(out);
    }
    const deadline = Date.now() + START_WAIT_MS;
    while (Date.now() < deadline) {
      if (await connectable()) return;
      // One that ended before it answered is not waited for: what it said is in the log.
      if (child.exitCode !== null || child.signalCode !== null) {
        const how = child.signalCode !== null ? `was killed by ${child.signalCode}` : `exited with status ${child.exitCode}`;
        // 127 with nothing logged: tsnet could not start its own executable again. Under qemu-user
        // (which runs the one program it is given) that needs binfmt_misc to hand it to qemu.
        const why = child.exitCode === 127 ? ` (127: ${process.execPath} could not be started again; under qemu-user, only binfmt_misc makes that possible)` : "";
        throw new TsnetError(`the tsnet supervisor ${how} before it answered${why}: see ${SUPERVISOR_LOG}`);
      }
      await Bun.sleep(5);
    }
    throw new TsnetError(`the tsnet supervisor did not start: see ${SUPERVISOR_LOG}`);
  });
}

/**
 * What every command does before it reads or changes anything: a supervisor running another
 * build of tsnet is asked to hand its containers over; containers whose manager died are
 * released, or, when their processes live on, adopted by a supervisor (started if none runs;
 * one that starts adopts before it listens, so they are adopted once it answers).
 */
export async function recover(): Promise<void> {
  await replaceOtherBuild();
  if (!recoverOrphans()) return;
  try {
    if (await ask({ op: "adopt" })) return;
    await startSupervisor();
    // Asked again: a supervisor that was starting while this process held the dead manager's
    // lock (another command's start) found that manager alive, and adopted nothing of it.
    await ask({ op: "adopt" });
  } catch (e) {
    // The containers run on unmanaged; the next command tries again. This one goes on.
    log.warn(`containers whose supervisor died could not be adopted: ${(e as Error).message}`);
  }
}

/** How long the supervisor of another build is given to exit once it has agreed to hand over. */
const HANDOVER_WAIT_MS = 5000;

/**
 * A supervisor that runs another executable than this one (tsnet was upgraded or replaced under
 * it) hands its containers over: it exits leaving them running, and its lock goes with it, so the
 * recovery that follows finds its manager dead and has a supervisor of this build adopt them.
 * Costs one small read per command while a supervisor lives.
 */
async function replaceOtherBuild(): Promise<void> {
  let build: SupervisorBuild;
  try {
    const text = readText(SUPERVISOR_BUILD);
    if (text === undefined) return;
    build = JSON.parse(text) as SupervisorBuild;
  } catch {
    return;
  }
  if (build.exe === selfIdentity() || startTime(build.pid) !== build.start) return;
  const reply = await ask({ op: "handover", exe: selfIdentity() });
  if (!reply?.ok) return;
  // Gone once its supervisor lock is free (a killed process's files close with its last thread).
  const fd = openOwned(SUPERVISOR_LOCK, O_RDONLY);
  if (fd === undefined) return;
  try {
    const deadline = Date.now() + HANDOVER_WAIT_MS;
    while (Date.now() < deadline && startTime(build.pid) === build.start) {
      if (tryLock(fd, SUPERVISOR_LOCK)) return;
      await Bun.sleep(5);
    }
  } finally {
    closeSync(fd);
  }
}

/** Hands the run to the supervisor; resolves to the container's id and the warnings for the user. */
export async function runDetached(req: RunRequest): Promise<{ id: string; warnings: string[] }> {
  await replaceOtherBuild();
  // A new container's id is chosen here, so the request can be sent again when a supervisor that
  // took it died before answering: the next one answers for the container it finds under that id
  // (adopted), or makes it (one that was never answered for is forgotten first), never a second.
  const request: RunRequest = req.opts.id === undefined ? { ...req, newId: newId() } : req;
  const delivery = { sent: false };
  let reply = await ask<RunReply>(request, delivery);
  // None listening, or one that took the request and died before answering, or one found as it
  // was dying (a killed process closes its descriptors one by one: its listening socket may still
  // take a connection after the one it was asked on has closed, and refuse the next): a new one is
  // started and asked again, a few times at most (each answers for what the last one made under
  // the request's id).
  let tries = 1;
  let taken = delivery.sent ? 1 : 0;
  for (; tries <= 4 && !reply; tries++) {
    await startSupervisor();
    delivery.sent = false;
    reply = await ask<RunReply>(request, delivery);
    if (delivery.sent) taken++;
  }
  if (!reply) {
    const how = taken ? `${taken} of ${tries} tries were taken by a supervisor that ended before it answered` : `none of ${tries} tries reached one`;
    throw new TsnetError(`the tsnet supervisor did not answer: ${how}: see ${SUPERVISOR_LOG}`);
  }
  if (!reply.ok) throw new TsnetError(reply.message, reply.exitCode);
  return { id: reply.id, warnings: reply.warning ? reply.warning.split("\n") : [] };
}

/**
 * Waits for a detached container's current run to end; its exit status, or undefined when the
 * supervisor does not manage it (it has ended, or no supervisor is there).
 */
export async function waitDetached(id: string): Promise<number | undefined> {
  const reply = await ask<WaitReply>({ op: "wait", id });
  return reply?.ok && reply.managed ? reply.exitCode : undefined;
}

/** Asks the manager of a container waiting to restart to act on its record now (stopped, or restarted). */
export async function wakeManager(rec: ContainerRecord): Promise<void> {
  if (rec.detached) await ask({ op: "wake", id: rec.id });
}

/** What a detached container was started with (written by the supervisor), to start it again. */
export function readRunSpec(id: string): RunRequest | undefined {
  const text = readText(runSpecPath(id));
  return text === undefined ? undefined : (JSON.parse(text) as RunRequest);
}
