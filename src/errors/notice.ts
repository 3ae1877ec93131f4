// Warnings from layers below the CLI (a network layer noticing an ignored setting, a cleanup that
// half failed): one line each on stderr through whatever sink the CLI installs, so lower layers
// never import the CLI's logger.
let sink: (message: string) => void = (m) => process.stderr.write(`tsnet: warning: ${m}\n`);

export function setWarningSink(fn: (message: string) => void): void {
  sink = fn;
}

export function warn(message: string): void {
  sink(message);
}
