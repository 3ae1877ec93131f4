// Committing a plan (src/plan/ops.ts): the operations go to the kernel in order, and as few
// round trips as the kernel allows. rtnetlink operations on one socket (the host's, or one inside
// a namespace) are queued and sent together, one write, their acks read once (NetlinkSocket's
// batch); the queue is sent first whenever an operation needs an answer (an ifindex no earlier
// answer gave), or is not a request on that socket (a sysctl, another socket's request, an
// nf_tables transaction), so the kernel sees them in the plan's order. A link made with
// NLM_F_ECHO comes back with its ifindex; a link changed by name needs none. Each nf_tables
// operation is one transaction.
import { readFileSync, writeFileSync } from "../../ffi/fs.ts";
import { KernelError, TsnetError } from "../errors/errors.ts";
import { ENODEV } from "../errors/errno.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { inNetns } from "../netns/netns.ts";
import { Batch, batchChanges, planTable, transaction } from "../nftables/index.ts";
import { addElements, deleteElements } from "../nftables/set.ts";
import { addrAdd, addrDel } from "../rtnetlink/addr.ts";
import { bridgePortHairpin, linkAdd, linkDelIfExists, linkDel, linkGet, linkSet, linkSetNamed } from "../rtnetlink/link.ts";
import { routeAdd } from "../rtnetlink/route.ts";
import { fsError } from "../state/files.ts";
import type { NftChange, TableSpec } from "../nftables/ensure.ts";
import { linkKey, macBytes, sysctlPath, type NetnsRef, type Op, type Plan } from "./ops.ts";

/** lo is the first link of every network namespace. */
export const LOOPBACK_IFINDEX = 1;

/** What committing needs from the layer that owns sockets and policies (src/network/). */
export interface CommitEnv {
  /** rtnetlink in the namespace (undefined: the host's). */
  rtnl(netns?: NetnsRef): NetlinkSocket;
  /** nf_tables in the namespace (undefined: the host's). */
  nft(netns?: NetnsRef): NetlinkSocket;
  /** An open fd on a namespace the plan names (for IFLA_NET_NS_FD and /proc/sys windows). */
  nsFd(netns: NetnsRef): number;
  /** Puts the loopback guard on a link (src/network/guard.ts); false when the kernel cannot carry it. */
  guard(nl: NetlinkSocket, ifindex: number, dev: string): boolean;
  /** ifindexes the caller already knows (a bridge networkUp found), by linkKey. */
  known?: Record<string, number>;
  /**
   * Removes a namespace's name (the owner of namespaces, src/netns/, does it: an unmount and an
   * unlink); without it a plan naming netns-del is refused.
   */
  netnsDel?(name: NetnsRef): void;
}

type Queued = { nl: NetlinkSocket; emit: () => void };

/**
 * Runs plans against the kernel, keeping what it learned (ifindexes) from one call to the next,
 * so a caller may commit a plan in steps (writing its record between them) at the cost of one
 * flush per step.
 */
export class Committer {
  private readonly indexes: Map<string, number>;
  private queue: Queued[] = [];

  constructor(private readonly env: CommitEnv, plan?: Pick<Plan, "context">) {
    this.indexes = new Map(Object.entries({ ...env.known, ...plan?.context?.indexes }));
  }

  /** The ifindex the commit knows for a link, if any. */
  known(netns: NetnsRef | undefined, name: string): number | undefined {
    return this.indexes.get(linkKey(netns, name));
  }

  /** Commits the operations in order; everything is sent and acknowledged when it returns. */
  run(ops: readonly Op[]): void {
    try {
      for (const op of ops) this.one(op);
    } finally {
      this.flush();
    }
  }

  private flush(): void {
    const q = this.queue;
    this.queue = [];
    if (q.length) sendQueue(q);
  }

  /** Queues a request on nl; whatever is queued on another socket is sent first (order). */
  private enqueue(nl: NetlinkSocket, emit: () => void): void {
    if (this.queue.length && this.queue[0]!.nl !== nl) this.flush();
    this.queue.push({ nl, emit });
  }

  /** The link's ifindex: known, or asked of the kernel (after what is queued has been sent). */
  private index(netns: NetnsRef | undefined, name: string): number {
    if (name === "lo") return LOOPBACK_IFINDEX;
    const k = linkKey(netns, name);
    const known = this.indexes.get(k);
    if (known !== undefined) return known;
    this.flush();
    const link = linkGet(this.env.rtnl(netns), name);
    if (!link) throw new KernelError("find link", netns ? `${name} in ${netns}` : name, ENODEV);
    this.indexes.set(k, link.index);
    return link.index;
  }

  private one(op: Op): void {
    const env = this.env;
    switch (op.op) {
      case "link-add": {
        const nl = env.rtnl(op.netns);
        const master = op.master === undefined ? undefined : this.index(op.netns, op.master);
        const peer = op.peer;
        const key = linkKey(op.netns, op.name);
        if (peer?.index !== undefined) this.indexes.set(linkKey(peer.netns ?? op.netns, peer.name), peer.index);
        this.enqueue(nl, () =>
          linkAdd(nl, {
            name: op.name, kind: op.kind, up: op.up, mtu: op.mtu, mac: op.mac ? macBytes(op.mac) : undefined, master,
            ...(peer && {
              peer: {
                name: peer.name, mtu: peer.mtu, mac: peer.mac ? macBytes(peer.mac) : undefined,
                ...(peer.netns !== undefined && peer.netns !== op.netns && { nsFd: env.nsFd(peer.netns) }),
                ...(peer.index !== undefined && { index: peer.index }),
              },
            }),
          }, (link) => this.indexes.set(key, link.index)),
        );
        return;
      }
      case "link-set": {
        const nl = env.rtnl(op.netns);
        if (op.moveTo !== undefined || op.master !== undefined || op.mtu !== undefined || op.mac !== undefined || op.up !== undefined) {
          const master = op.master === undefined ? undefined : this.index(op.netns, op.master);
          if (op.moveTo !== undefined) {
            // A move takes the link's index out of this namespace: by index, and forgotten here.
            const index = this.index(op.netns, op.dev);
            const nsFd = env.nsFd(op.moveTo);
            this.enqueue(nl, () => linkMove(nl, index, nsFd, op.dev));
            this.indexes.delete(linkKey(op.netns, op.dev));
          } else {
            const mac = op.mac ? macBytes(op.mac) : undefined;
            this.enqueue(nl, () => linkSetNamed(nl, op.dev, { up: op.up, master, mtu: op.mtu, mac }));
          }
        }
        if (op.hairpin !== undefined) {
          const index = this.index(op.netns, op.dev);
          this.enqueue(nl, () => bridgePortHairpin(nl, index, op.hairpin!, op.dev));
        }
        return;
      }
      case "link-del": {
        const nl = env.rtnl(op.netns);
        this.indexes.delete(linkKey(op.netns, op.dev));
        this.enqueue(nl, () => (op.ifExists ? linkDelIfExists : linkDel)(nl, op.dev));
        // A missing link is tolerated only on its own: its error would end a shared batch.
        if (op.ifExists) this.flush();
        return;
      }
      case "addr-add": {
        const nl = env.rtnl(op.netns);
        const index = this.index(op.netns, op.dev);
        this.enqueue(nl, () => addrAdd(nl, index, op.address, op.prefix, op.dev));
        return;
      }
      case "addr-del": {
        const nl = env.rtnl(op.netns);
        const index = this.index(op.netns, op.dev);
        this.flush();
        addrDel(nl, index, op.address, op.prefix, op.dev);
        return;
      }
      case "route-add": {
        const nl = env.rtnl(op.netns);
        const oif = this.index(op.netns, op.dev);
        const what = op.netns ?? "the host";
        const dst = op.dst;
        this.enqueue(nl, () =>
          routeAdd(nl, { ...(dst && { dst: { family: dst.family, value: dst.net } }), dstLen: dst?.prefix ?? 0, gateway: op.gateway, oif }, what),
        );
        return;
      }
      case "guard": {
        const nl = env.rtnl(op.netns);
        const index = this.index(op.netns, op.dev);
        this.flush();
        env.guard(nl, index, op.dev);
        return;
      }
      case "sysctl": {
        this.flush();
        const write = () => writeSysctl(op.key, op.value, op.ifMissing);
        if (op.netns === undefined) write();
        else inNetns(env.nsFd(op.netns), write);
        return;
      }
      case "nft-table": {
        this.flush();
        const nl = env.nft(op.netns);
        const { family, name } = op.spec;
        if (!op.changes) {
          const b = new Batch();
          batchChanges(b, family, name, wholeTable(op.spec));
          b.commitUnconditional(nl);
        } else if (op.changes.length) {
          // Planned from what was read: a concurrent change (ERESTART) is for the planner to read
          // again; here the changes go once, under the generation read before the table was (or,
          // without one, the current generation).
          if (op.generation !== undefined) {
            const b = new Batch();
            batchChanges(b, family, name, op.changes);
            b.commit(nl, op.generation);
          } else transaction(nl, (b) => batchChanges(b, family, name, op.changes!));
        }
        return;
      }
      case "nft-elements": {
        this.flush();
        const b = new Batch();
        for (const d of op.delete ?? []) deleteElements(b, op.family, op.table, d.set, d.elements);
        for (const a of op.add ?? []) addElements(b, op.family, op.table, a.set, a.elements);
        b.commitUnconditional(env.nft(op.netns));
        return;
      }
      case "netns-del":
        if (env.netnsDel) {
          this.flush();
          env.netnsDel(op.name);
          return;
        }
        throw new TsnetError(`netns-del ${op.name}: this commit cannot remove namespaces`);
      case "netns-add":
        throw new TsnetError(`${op.op} ${op.name} is made by its owner (src/netns/), not by a plan's commit`);
    }
  }
}

/** The whole spec as changes: planTable's difference from a table that does not exist. */
function wholeTable(spec: TableSpec): NftChange[] {
  return planTable({ exists: false, rules: [], held: new Map() }, spec).changes;
}

/** Sends what is queued on one socket: one write, the acks read once. */
function sendQueue(q: readonly Queued[]): void {
  const nl = q[0]!.nl;
  if (q.length === 1) return q[0]!.emit();
  nl.batch(() => {
    for (const e of q) e.emit();
  });
}

function linkMove(nl: NetlinkSocket, index: number, nsFd: number, what: string): void {
  linkSet(nl, index, { nsFd }, what);
}

/**
 * Writes a /proc/sys value unless the file already holds it (a write of an unchanged value still
 * costs the kernel work, and some settings cannot be written at all where they are fixed).
 */
export function writeSysctl(key: string, value: string, ifMissing?: string): boolean {
  const path = sysctlPath(key);
  try {
    if (readFileSync(path, "utf8").trim() !== value) writeFileSync(path, `${value}\n`);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      if (ifMissing !== undefined) throw new TsnetError(ifMissing);
      return false;
    }
    throw fsError("set", path, e);
  }
}

/** Commits a plan whole. */
export function commit(env: CommitEnv, plan: Plan): void {
  new Committer(env, plan).run(plan.ops);
}
