// Starting another copy of tsnet: the compiled executable runs itself; from source, bun runs the
// entry script again.
export function selfCommand(args: string[]): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/");
  return compiled ? [process.execPath, ...args] : [process.execPath, Bun.main, ...args];
}

/**
 * Environment for a copy of tsnet: BUN_BE_BUN would turn the executable into the bun CLI,
 * BUN_OPTIONS could preload code into a supervisor that outlives the command that started it, and
 * CNI_COMMAND into a CNI plugin (a plugin's link-deletion helper is started with its
 * environment), so the CNI_ variables go too.
 */
export function selfEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) if (k !== "BUN_BE_BUN" && k !== "BUN_OPTIONS" && !k.startsWith("CNI_")) env[k] = v;
  return env;
}
