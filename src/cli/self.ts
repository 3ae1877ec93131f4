// Starting another copy of tsnet: the compiled executable runs itself; from source, bun runs the
// entry script again.
import { statSync } from "../../ffi/fs.ts";

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

let identity: string | undefined;

/**
 * Which executable this process runs, as device:inode of /proc/self/exe (from source: bun's and
 * the entry script's). Replacing tsnet (a package upgrade, cp and mv) makes a new inode, while
 * the old file's stays held by the processes running it, so two processes have the same identity
 * exactly when they run the same file. Overwriting a running executable in place is refused by
 * the kernel (ETXTBSY).
 */
export function selfIdentity(): string {
  if (identity === undefined) {
    const of = (path: string) => {
      const st = statSync(path);
      return `${st.dev}:${st.ino}`;
    };
    identity = Bun.main.startsWith("/$bunfs/") ? of("/proc/self/exe") : `${of("/proc/self/exe")}/${of(Bun.main)}`;
  }
  return identity;
}
