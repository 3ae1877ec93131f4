// Veth pairs set aside (detachEndpoint in sandbox.ts: down, bare, renamed gone-tsnetN at both
// ends) are deleted later, by whoever can pay the deletion's rcu_barrier() off a caller's path:
//   - a container's manager (long-lived) watches its container's namespace for links renamed so
//     and deletes the pair soon after `network disconnect` returns (watchSetAside);
//   - the next set-aside, CNI ADD or disconnect into the same namespace deletes an older one it
//     finds there (paying the barrier then, only when the namespace is reused that way), so a
//     namespace never holds more than one set-aside pair (reapSetAside);
//   - CNI GC deletes every set-aside pair the host has (reapHostSetAside);
//   - and the kernel's cleanup worker destroys whatever is left with its namespace.
// A pair counts as set aside only when both ends say so: veths, down, named gone-tsnet*, each the
// other's peer, the host end on no bridge. Nobody else's link is ever deleted here.
import { warn } from "../errors/notice.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { watchSocket, type Watch } from "../netlink/watch.ts";
import { inNetns } from "../netns/netns.ts";
import { IFF_UP, RTM_NEWLINK, RTMGRP_LINK } from "../rtnetlink/constants.ts";
import { linkDelIndex, linkGetIndex, linkList, linkOf, type LinkInfo } from "../rtnetlink/link.ts";
import { hostRtnl } from "./host.ts";

/** The name set-aside ends start with (SET_ASIDE_NAME in sandbox.ts is this and a kernel-numbered %d). */
export const SET_ASIDE_PREFIX = "gone-tsnet";

/** Host lookups one scan of a namespace may make (a real namespace holds one set-aside pair at most). */
const MAX_LOOKS = 4;

function setAsideEnd(l: LinkInfo | undefined): l is LinkInfo {
  return l !== undefined && l.kind === "veth" && l.name.startsWith(SET_ASIDE_PREFIX) && !(l.flags & IFF_UP);
}

/**
 * Host-end ifindexes of the set-aside pairs in the namespace `inside` speaks to. `unready`: inside
 * ends renamed whose host end is not set aside yet (a set-aside under way in another process).
 */
function pairsIn(inside: NetlinkSocket, host: NetlinkSocket): { hostEnds: number[]; unready: number } {
  const hostEnds: number[] = [];
  let unready = 0;
  let looked = 0;
  for (const l of linkList(inside)) {
    // A set-aside end's peer is in another namespace (the host). A root container can name and
    // take down links of its own as it likes: it gets a few looks at the host per scan, no more,
    // so a namespace full of look-alikes costs its manager a dump, not a query per link.
    if (!setAsideEnd(l) || !l.peer || l.peerNetnsId === undefined) continue;
    if (++looked > MAX_LOOKS) break;
    const h = linkGetIndex(host, l.peer);
    if (setAsideEnd(h) && !h.master && h.peer === l.index && h.peerNetnsId !== undefined) hostEnds.push(h.index);
    else unready++;
  }
  return { hostEnds, unready };
}

/**
 * Deletes up to `limit` set-aside pairs in the namespace behind nsFd, each by its host end on the
 * host socket (one request, which blocks for the barrier). Returns how many were deleted and how
 * many are left (those not yet set aside at both ends included).
 */
export function reapSetAside(nsFd: number, limit = Infinity, what = "container namespace"): { deleted: number; left: number } {
  const inside = inNetns(nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${what})`), what);
  try {
    const host = hostRtnl();
    const { hostEnds, unready } = pairsIn(inside, host);
    let deleted = 0;
    for (const index of hostEnds.slice(0, limit)) if (linkDelIndex(host, index, `set-aside veth (ifindex ${index})`)) deleted++;
    return { deleted, left: hostEnds.length - Math.min(limit, hostEnds.length) + unready };
  } finally {
    inside.close();
  }
}

/**
 * Deletes every set-aside pair whose host end is on this host, wherever its other end is (CNI GC:
 * the pairs of attachments DEL'd into namespaces their runtime keeps). The peer is read in its own
 * namespace by the id the host knows it by (IFLA_TARGET_NETNSID), without entering it.
 */
export function reapHostSetAside(): number {
  const host = hostRtnl();
  let deleted = 0;
  for (const h of linkList(host)) {
    if (!setAsideEnd(h) || h.master || !h.peer || h.peerNetnsId === undefined) continue;
    const peer = linkGetIndex(host, h.peer, h.peerNetnsId);
    if (setAsideEnd(peer) && peer.peer === h.index && linkDelIndex(host, h.index, `set-aside veth ${h.name}`)) deleted++;
  }
  return deleted;
}

// The manager's watch. One subscription per container (its namespace's link announcements, which
// are rare: its own interfaces changing), started a little after the container (a short `run --rm`
// pays nothing), with a look at once then for what was set aside before. One pair is deleted per
// turn of the event loop, each blocking it for the barrier (20-40 ms; bench/detach.ts "reap"):
// a DNS answer or a forwarded signal is late by that much at worst, never lost.
const SUBSCRIBE_AFTER_MS = 50;
/** Between two deletions, and before looking again at a pair whose host end is not set aside yet. */
const SPACING_MS = 20;
const RETRY_MS = 50;

/**
 * Deletes the set-aside pairs of the namespace behind nsFd (which must stay open until the returned
 * release is called) for as long as it is held. Never throws from the event loop: a failure is
 * reported and the watch tries again later.
 */
export function watchSetAside(nsFd: number, what: string): () => void {
  let released = false;
  let watch: Watch | undefined;
  let sock: NetlinkSocket | undefined;
  let timer: Timer | undefined;
  let failures = 0;
  let retries = 0;

  const schedule = (delay: number) => {
    if (released || timer !== undefined) return;
    timer = setTimeout(scan, delay);
  };
  const scan = () => {
    timer = undefined;
    if (released) return;
    try {
      const { deleted, left } = reapSetAside(nsFd, 1, what);
      failures = 0;
      if (left === 0) retries = 0;
      else if (deleted) schedule(SPACING_MS);
      // Renamed inside but not yet on the host: the set-aside is under way; look again for a while.
      else if (++retries <= 40) schedule(RETRY_MS);
    } catch (e) {
      failures++;
      if (failures === 1 || failures % 10 === 0) warn(`deleting the set-aside interfaces of ${what}: ${(e as Error).message}`);
      schedule(Math.min(10_000, 100 * 2 ** Math.min(failures, 7)));
    }
  };
  const subscribe = () => {
    timer = undefined;
    if (released) return;
    try {
      sock = inNetns(nsFd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink link events (${what})`, { groups: RTMGRP_LINK }), what);
      const s = sock;
      watch = watchSocket(s.fd, {
        messages(ms, overrun) {
          if (overrun || ms.some((m) => m.type === RTM_NEWLINK && linkOf(m).name.startsWith(SET_ASIDE_PREFIX))) {
            retries = 0;
            schedule(0);
          }
        },
        failed(e) {
          s.close();
          if (sock === s) sock = watch = undefined;
          if (released) return;
          warn(`watching ${what} for set-aside interfaces stopped: ${e.message}`);
          timer = setTimeout(subscribe, 1000);
        },
      });
    } catch (e) {
      sock?.close();
      sock = undefined;
      warn(`watching ${what} for set-aside interfaces: ${(e as Error).message}`);
      timer = setTimeout(subscribe, 1000);
      return;
    }
    // Whatever was set aside before the subscription (or while a previous manager was gone).
    schedule(0);
  };
  timer = setTimeout(subscribe, SUBSCRIBE_AFTER_MS);
  return () => {
    released = true;
    clearTimeout(timer);
    timer = undefined;
    watch?.stop();
    sock?.close();
    watch = sock = undefined;
  };
}
