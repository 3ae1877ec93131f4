// Delegation (SPEC.md, section 4): an `ipam` section whose type is not tsnet names an IPAM plugin,
// found in CNI_PATH and run with the environment tsnet was given (CNI_COMMAND possibly changed:
// DEL after a failed ADD) and the same configuration on stdin; its stderr is tsnet's stderr, its
// stdout a result or an error.
import { accessSync, constants } from "../../ffi/fs.ts";
import { spawnChild } from "../process/children.ts";
import type { CniCommand, CniEnv } from "./config.ts";
import { CniError, ERR_DECODE, ERR_DELEGATE, ERR_INVALID_CONFIG, ERR_INVALID_ENV } from "./spec.ts";

function findPlugin(type: string, env: CniEnv): string {
  if (!env.path.length) throw new CniError(ERR_INVALID_ENV, `required environment variables missing: CNI_PATH (where to find the IPAM plugin ${type})`);
  for (const dir of env.path) {
    const exe = `${dir}/${type}`;
    try {
      accessSync(exe, constants.X_OK);
      return exe;
    } catch {}
  }
  throw new CniError(ERR_INVALID_CONFIG, `IPAM plugin "${type}" not found in CNI_PATH (${env.path.join(":")}): install it there, or remove "ipam" to use tsnet's own`);
}

/** Runs the delegated plugin; its parsed stdout (a result, or undefined when it printed none). */
export async function delegate(type: string, command: CniCommand, env: CniEnv, stdin: string): Promise<unknown> {
  const exe = findPlugin(type, env);
  const child = spawnChild([exe], {
    stdin: new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, CNI_COMMAND: command },
  });
  const [text, code] = await Promise.all([new Response(child.stdout as ReadableStream).text(), child.exited]);
  let parsed: unknown;
  if (text.trim()) {
    try {
      parsed = JSON.parse(text);
    } catch {
      if (code === 0) throw new CniError(ERR_DECODE, `IPAM plugin ${type} ${command} printed something that is not JSON: ${text.trim().slice(0, 200)}`);
    }
  }
  if (code !== 0) {
    const e = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
    const msg = typeof e?.msg === "string" ? e.msg : `exited with status ${code}`;
    const details = typeof e?.details === "string" ? e.details : "";
    throw new CniError(typeof e?.code === "number" ? e.code : ERR_DELEGATE, `IPAM plugin ${type} ${command}: ${msg}`, details);
  }
  return parsed;
}
