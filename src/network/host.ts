// The host's side of every network: one rtnetlink socket in tsnet's own namespace, opened once
// per process. (Sysctls are written by src/plan/commit.ts's writeSysctl.)
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";

let hostSocket: NetlinkSocket | undefined;

/** rtnetlink in tsnet's own (host) namespace. */
export function hostRtnl(): NetlinkSocket {
  hostSocket ??= new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (host)");
  return hostSocket;
}
