// Fault containment for the processes that manage containers for as long as they run (the
// supervisor; a foreground `tsnet run` once its command has started). There, an error nobody
// caught (a bug, or a socket error some path forgot) concerns at most the one container whose
// event raised it: it is logged, with its stack, and counted, and the process goes on serving
// every other container. Ending the process would end them all, which is what a fault in one
// container must never do. Elsewhere (a command's setup, a short-lived command) an internal
// error still ends the command with 125, after its undo.
import { log, logLines } from "./notice.ts";

let where: string | undefined;
let count = 0;
let withStack = false;

/** From now on, uncaught errors in this process are logged and counted, not fatal. */
export function containFaults(what: string, opts: { stack?: boolean } = {}): void {
  where = what;
  withStack = opts.stack === true || !!process.env.TSNET_DEBUG;
}

/** Uncaught errors are fatal again (the command is back to its own cleanup). */
export function stopContainingFaults(): void {
  where = undefined;
}

export function faultsContained(): boolean {
  return where !== undefined;
}

/** How many faults this process has contained. */
export function containedFaults(): number {
  return count;
}

/** Logs a contained fault: one line, and its stack where it is wanted (the supervisor's log). */
export function noteFault(e: unknown): void {
  count++;
  const what = e instanceof Error ? `${e.name === "Error" ? "" : `${e.name}: `}${e.message}` : String(e);
  log.error(`internal error in the ${where}, contained (${count} so far): ${what}`);
  if (withStack && !process.env.TSNET_DEBUG) {
    // notice.ts prints stacks only with TSNET_DEBUG; the supervisor's log always wants them.
    const stack = e instanceof Error && e.stack ? e.stack : new Error("(no stack: thrown from here)").stack;
    logLines(`  ${stack?.split("\n").join("\n  ")}`);
  }
}

// Fault injection for the containment tests, as crashpoint.ts does for kill -9:
// TSNET_FAULT_AT=NAME throws an uncaught error from the event loop at that point. Unset, it
// costs a string comparison.
const faultAt = process.env.TSNET_FAULT_AT;

export function faultPoint(name: string): void {
  if (faultAt === name) setTimeout(() => { throw new Error(`injected fault at ${name}`); }, 0);
}
