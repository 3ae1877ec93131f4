// Fault injection for the crash-safety tests: TSNET_CRASH_AT=NAME makes tsnet SIGKILL itself at
// that point of setup or teardown, exactly as a kill -9 from outside would land there. Unset, it
// costs a string comparison.
const at = process.env.TSNET_CRASH_AT;

export function crashPoint(name: string): void {
  if (at === name) process.kill(process.pid, "SIGKILL");
}
