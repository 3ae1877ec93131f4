import { geteuid } from "../../ffi/libc.ts";
import { TsnetError } from "../errors/errors.ts";

/** Namespaces, links and nf_tables need CAP_SYS_ADMIN and CAP_NET_ADMIN: in practice, root. */
export function requireRoot(what: string): void {
  if (geteuid() !== 0) {
    throw new TsnetError(`${what} needs root (it creates namespaces, links and addresses): run it as root, e.g. sudo tsnet ${process.argv.slice(2).join(" ")}`);
  }
}
