// Where a command's time goes: with TSNET_TRACE=1, tsnet notes the moment (ms since the process
// started) of each named step and prints them on stderr as it ends, one line. Unset, a mark
// costs a comparison. The benchmark's "where the time goes" figures come from here.
import { writeSync } from "../../ffi/fs.ts";

const on = process.env.TSNET_TRACE === "1";
const marks: string[] = [];

export function mark(step: string): void {
  if (on) marks.push(`${step}=${performance.now().toFixed(2)}`);
}

/** Writes the marks (once); tsnet calls it just before it exits. */
export function flushTrace(): void {
  if (!on || marks.length === 0) return;
  writeSync(2, `tsnet trace: ${marks.join(" ")}\n`);
  marks.length = 0;
}
