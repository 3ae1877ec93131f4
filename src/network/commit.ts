// How the network layer commits a plan (src/plan/commit.ts) on the host: the host's rtnetlink
// socket, tsnet's nf_tables socket, the loopback guard; namespaces only those the caller holds.
import { TsnetError } from "../errors/errors.ts";
import { natSocket } from "../nat/portmap.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { commit, type CommitEnv } from "../plan/commit.ts";
import type { NetnsRef, Plan } from "../plan/ops.ts";
import { addLoopbackGuard } from "./guard.ts";
import { hostRtnl } from "./host.ts";

/** One namespace a plan may name besides the host: its name in the plan, its socket and fd. */
export interface HeldNetns {
  name: NetnsRef;
  rtnl: NetlinkSocket;
  fd: number;
}

/** The host's sockets, and the one namespace held (if any); ifindexes already known by linkKey. */
export function hostCommitEnv(held?: HeldNetns, known?: Record<string, number>): CommitEnv {
  return {
    rtnl: (ns) => (ns === undefined ? hostRtnl() : ns === held?.name ? held.rtnl : refuse(ns)),
    nft: (ns) => (ns === undefined ? natSocket() : refuse(ns)),
    nsFd: (ns) => (ns === held?.name ? held.fd : refuse(ns)),
    guard: addLoopbackGuard,
    ...(known && { known }),
  };
}

/** Commits a plan of host operations whole. */
export function commitOnHost(plan: Plan): void {
  if (plan.ops.length) commit(hostCommitEnv(), plan);
}

function refuse(ns: string): never {
  throw new TsnetError(`a plan named namespace ${ns}, which this commit does not hold`);
}
