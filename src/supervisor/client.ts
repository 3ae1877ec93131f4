// `tsnet run -d`'s side: hand the run to the supervisor, starting one if none is listening.
import { closeSync } from "node:fs";
import { O_APPEND, O_CREAT, O_WRONLY } from "../../ffi/libc.ts";
import { selfCommand, selfEnv } from "../cli/self.ts";
import { TsnetError } from "../errors/errors.ts";
import { spawnChild } from "../process/children.ts";
import { openOwned, trustSocket, withLockAsync } from "../state/files.ts";
import { SUPERVISOR_LOG, SUPERVISOR_SOCKET } from "../state/paths.ts";
import { Incoming, Outgoing, type RunReply, type RunRequest } from "./protocol.ts";

const START_WAIT_MS = 5000;

/** Sends the request and reads the reply; undefined when no supervisor took it. */
function ask(req: RunRequest): Promise<RunReply | undefined> {
  // Only a socket root alone could have made is told the environment.
  if (!trustSocket(SUPERVISOR_SOCKET)) return Promise.resolve(undefined);
  const request = new Outgoing(req);
  return new Promise((resolve, reject) => {
    const reply = new Incoming();
    let settled = false;
    const settle = (v: RunReply | undefined, e?: unknown) => {
      if (settled) return;
      settled = true;
      if (e === undefined) resolve(v);
      else reject(e);
    };
    Bun.connect({
      unix: SUPERVISOR_SOCKET,
      socket: {
        open(s) {
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
            settle(JSON.parse(line) as RunReply);
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
    try {
      spawnChild(selfCommand(["_supervise"]), { stdio: ["ignore", out, out], env: selfEnv(), cwd: "/", detached: true }).unref();
    } finally {
      closeSync(out);
    }
    const deadline = Date.now() + START_WAIT_MS;
    while (Date.now() < deadline) {
      if (await connectable()) return;
      await Bun.sleep(5);
    }
    throw new TsnetError(`the tsnet supervisor did not start: see ${SUPERVISOR_LOG}`);
  });
}

/** Hands the run to the supervisor; resolves to the container's id and any warning for the user. */
export async function runDetached(req: RunRequest): Promise<{ id: string; warning?: string }> {
  let reply = await ask(req);
  if (!reply) {
    await startSupervisor();
    reply = await ask(req);
  }
  if (!reply) throw new TsnetError(`the tsnet supervisor did not answer: see ${SUPERVISOR_LOG}`);
  if (!reply.ok) throw new TsnetError(reply.message, reply.exitCode);
  return { id: reply.id, warning: reply.warning };
}
