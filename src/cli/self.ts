// Starting another copy of tsnet: the compiled executable runs itself; from source, bun runs the
// entry script again.
export function selfCommand(args: string[]): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? [process.execPath, ...args] : [process.execPath, Bun.main, ...args];
}

/** Environment for a copy of tsnet: BUN_BE_BUN would turn the executable into the bun CLI. */
export function selfEnv(): Record<string, string | undefined> {
  const { BUN_BE_BUN: _, ...env } = process.env;
  return env;
}
