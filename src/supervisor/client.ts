// `tsnet run -d`'s side: hand the run to the supervisor, starting one if none is listening.
import { closeSync, openSync } from "node:fs";
import { selfCommand, selfEnv } from "../cli/self.ts";
import { TsnetError } from "../errors/errors.ts";
import { spawnChild } from "../process/children.ts";
import { withLockAsync } from "../state/files.ts";
import { RUN_DIR, SUPERVISOR_SOCKET } from "../state/paths.ts";
import type { RunReply, RunRequest } from "./protocol.ts";

const START_WAIT_MS = 5000;

function ask(req: RunRequest): Promise<RunReply | undefined> {
  return new Promise((resolve) => {
    let buf = "";
    Bun.connect({
      unix: SUPERVISOR_SOCKET,
      socket: {
        open(s) {
          s.write(`${JSON.stringify(req)}\n`);
        },
        data(_s, chunk) {
          buf += chunk.toString();
        },
        close() {
          const line = buf.split("\n")[0];
          resolve(line ? (JSON.parse(line) as RunReply) : undefined);
        },
        error() {
          resolve(undefined);
        },
        connectError() {
          resolve(undefined);
        },
      },
    }).catch(() => resolve(undefined));
  });
}

function connectable(): Promise<boolean> {
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
    const out = openSync(`${RUN_DIR}/supervisor.log`, "a", 0o600);
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
    throw new TsnetError(`the tsnet supervisor did not start: see ${RUN_DIR}/supervisor.log`);
  });
}

/** Hands the run to the supervisor; resolves to the container's id and any warning for the user. */
export async function runDetached(req: RunRequest): Promise<{ id: string; warning?: string }> {
  let reply = await ask(req);
  if (!reply) {
    await startSupervisor();
    reply = await ask(req);
  }
  if (!reply) throw new TsnetError(`the tsnet supervisor did not answer: see ${RUN_DIR}/supervisor.log`);
  if (!reply.ok) throw new TsnetError(reply.message, reply.exitCode);
  return { id: reply.id, warning: reply.warning };
}
