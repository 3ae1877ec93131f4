// The host's side of every network: one rtnetlink socket in tsnet's own namespace, opened once
// per process, and the few sysctls networks need.
import { readFileSync, writeFileSync } from "../../ffi/fs.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { fsError } from "../state/files.ts";

let hostSocket: NetlinkSocket | undefined;

/** rtnetlink in tsnet's own (host) namespace. */
export function hostRtnl(): NetlinkSocket {
  hostSocket ??= new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (host)");
  return hostSocket;
}

/**
 * Sets a boolean /proc/sys file unless it already holds that value; false when the file does
 * not exist (a per-link setting of a link that is gone).
 */
export function setSysctl(path: string, on: boolean): boolean {
  const want = on ? "1" : "0";
  try {
    if (readFileSync(path, "utf8").trim() !== want) writeFileSync(path, `${want}\n`);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw fsError("set", path, e);
  }
}
