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
import { inNetns } from "../netns/netns.ts";

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

/**
 * Hands the deletion to the helper and returns at once, without waiting for the kernel to announce
 * the link gone (CNI DEL: the runtime waits on the plugin, and the namespace usually goes next,
 * which would take the pair with it anyway). Until the helper gets to it the names stay taken:
 * whoever wants one of them again waits for it with `linkGoneWithin`. If the helper cannot be
 * started, the link is deleted here.
 */
export function deleteLinkInBackground(host: NetlinkSocket, name: string): void {
  if (!linkGet(host, name)) return;
  try {
    spawnChild(selfCommand(["_dellink", name]), { stdio: ["ignore", "ignore", "ignore", ...lingeringFds()], env: selfEnv() }).unref();
  } catch {
    deleteLink(host, name);
  }
}

/**
 * True when no link of that name exists (in the namespace `nl` speaks to), or the one there goes
 * within `ms`: a deletion handed to a helper may still be under way. The events socket is opened
 * (in the namespace behind nsFd, if given) only when there is something to wait for.
 */
export function linkGoneWithin(nl: NetlinkSocket, name: string, ms: number, nsFd?: number): boolean {
  if (!linkGet(nl, name)) return true;
  const open = () => new NetlinkSocket(NETLINK_ROUTE, "rtnetlink link events", { groups: RTMGRP_LINK, timeoutMs: ms });
  const events = nsFd === undefined ? open() : inNetns(nsFd, open);
  try {
    // Subscribed before this second look, so a deletion in between cannot be missed.
    const link = linkGet(nl, name);
    if (!link) return true;
    events.waitFor((m) => m.type === RTM_DELLINK && m.view.getInt32(NLMSG_HDRLEN + 4, true) === link.index, Date.now() + ms);
  } catch {
    // A timeout says nothing the next look does not.
  } finally {
    events.close();
  }
  return !linkGet(nl, name);
}

/** Synchronous deletion; a link that is already gone is not an error. */
export function deleteLink(host: NetlinkSocket, name: string): void {
  try {
    linkDel(host, name);
  } catch (e) {
    if (!(e instanceof KernelError && e.errno === ENODEV)) throw e;
  }
}
