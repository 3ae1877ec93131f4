import { geteuid } from "../../ffi/libc.ts";
import { TsnetError } from "../errors/errors.ts";

/**
 * Namespaces, links and nf_tables need CAP_SYS_ADMIN and CAP_NET_ADMIN, and tsnet's records
 * under /run/tsnet are root's (mode 0700): in practice, root. Says which command needs it, why,
 * and the command line to run instead.
 */
export function requireRoot(what: string, why = "it creates namespaces, links and addresses"): void {
  if (geteuid() !== 0) {
    throw new TsnetError(`${what} needs root (${why}): run it as root, e.g. sudo tsnet ${process.argv.slice(2).join(" ")}`);
  }
}

/** Why the commands that only read and signal containers need root too. */
export const STATE_IS_ROOTS = "tsnet's records under /run/tsnet are root's, and it cleans up after crashed containers";
