// Deleting a link returns only after the kernel's rcu_barrier() (15-40 ms on this kind of
// machine, see ARCHITECTURE.md), although the link has left every view of the namespace well
// before that. So tsnet hands the deletion to a short-lived copy of itself (`tsnet _dellink`),
// waits only for the kernel's RTM_DELLINK announcement, and exits while the copy sits out the
// barrier. If the copy cannot start or stays silent, tsnet deletes the link itself.
import { selfCommand, selfEnv } from "../cli/self.ts";
import { KernelError } from "../errors/errors.ts";
import { ENODEV } from "../errors/errno.ts";
import { NETLINK_ROUTE, NLMSG_HDRLEN } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { lingeringFds } from "../netlink/linger.ts";
import { spawnChild } from "../process/children.ts";
import { RTM_DELLINK, RTMGRP_LINK } from "../rtnetlink/constants.ts";
import { linkDel, linkGet } from "../rtnetlink/link.ts";

const WAIT_MS = 3000;

export function deleteLinkQuickly(host: NetlinkSocket, name: string): void {
  const link = linkGet(host, name);
  if (!link) return;
  // Subscribe before the deletion starts, so its announcement cannot be missed.
  const events = new NetlinkSocket(NETLINK_ROUTE, "rtnetlink link events", { groups: RTMGRP_LINK, timeoutMs: WAIT_MS });
  try {
    let gone = false;
    try {
      // It also takes over sockets whose last close would make tsnet wait (src/netlink/linger.ts).
      spawnChild(selfCommand(["_dellink", name]), { stdio: ["ignore", "ignore", "ignore", ...lingeringFds()], env: selfEnv() }).unref();
      const deadline = Date.now() + WAIT_MS;
      gone = events.waitFor(
        (m) => m.type === RTM_DELLINK && m.view.getInt32(NLMSG_HDRLEN + 4, true) === link.index,
        deadline,
      );
    } catch {
      gone = false;
    }
    if (!gone) deleteLink(host, name);
  } finally {
    events.close();
  }
}

/** Synchronous deletion; a link that is already gone is not an error. */
export function deleteLink(host: NetlinkSocket, name: string): void {
  try {
    linkDel(host, name);
  } catch (e) {
    if (!(e instanceof KernelError && e.errno === ENODEV)) throw e;
  }
}
