// Messages for people, from any layer: one line each on stderr, "tsnet: ...", written by consola.
// consola/core brings the logger without consola's fancy reporters (the full package costs tens
// of milliseconds to import; see ARCHITECTURE.md), and even it is loaded only on the first
// message: a command that succeeds says nothing, and pays nothing for it at start-up. Lines are
// written synchronously, so they land where they happen, in order.
import type { ConsolaInstance, ConsolaReporter } from "consola/core";
import { writeSync } from "../../ffi/fs.ts";

const ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * A message made safe to print as one line: control characters (a newline in a name someone
 * typed, a terminal escape sequence) are shown escaped (\n, \x1b), never acted on.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const code = c.charCodeAt(0);
    return ESCAPES[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
  });
}

/** Writes to stderr; if stderr itself is gone there is no one to tell. */
function toStderr(text: string): void {
  let buf = Buffer.from(text);
  try {
    while (buf.length > 0) buf = buf.subarray(writeSync(2, buf));
  } catch {}
}

const oneLine: ConsolaReporter = {
  log(entry) {
    const text = entry.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
    const tag = entry.type === "warn" ? "warning: " : "";
    toStderr(`tsnet: ${tag}${printable(text)}\n`);
    // The stack of an error, only for whoever debugs tsnet.
    const e = entry.args.find((a) => a instanceof Error);
    if (process.env.TSNET_DEBUG && e?.stack) toStderr(`${e.stack}\n`);
  },
};

let instance: ConsolaInstance | undefined;
function consola(): ConsolaInstance {
  instance ??= (require("consola/core") as typeof import("consola/core")).createConsola({
    level: process.env.TSNET_DEBUG ? 4 : 3,
    reporters: [oneLine],
    // consola holds back a message repeated within a second after its fifth time (and prints
    // "(repeated N times)" later, or never if the process exits first): `rm` of eight unknown
    // names said so six times. A message tsnet decided to print is printed, each time, at once.
    throttle: 0,
    throttleMin: Number.POSITIVE_INFINITY,
  });
  return instance;
}

export const log = {
  info: (message: unknown, ...rest: unknown[]) => consola().info(message, ...rest),
  warn: (message: unknown, ...rest: unknown[]) => consola().warn(message, ...rest),
  error: (message: unknown, ...rest: unknown[]) => consola().error(message, ...rest),
  debug: (message: unknown, ...rest: unknown[]) => consola().debug(message, ...rest),
};

/** Lines as they are (a stack), each made printable, for a log that wants them whole. */
export function logLines(text: string): void {
  toStderr(`${text.split("\n").map((l) => printable(l)).join("\n")}\n`);
}

/** A warning from a layer below the commands. */
export function warn(message: string): void {
  log.warn(message);
}
