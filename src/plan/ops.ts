// The vocabulary of kernel changes: each change tsnet makes to the kernel (a container's attach
// and teardown, a network's bring-up, tsnet's nf_tables table and its elements, CNI ADD and DEL)
// is first written as a list of these operations, then committed (src/plan/commit.ts). Each one
// is plain data, close to the command an administrator would type for it (`ip link add ...`,
// `nft add element ...`, `sysctl -w ...`): links, bridges and namespaces are named by NAME, never
// by ifindex, so a plan reads the same before anything exists; the commit resolves names. Each
// carries `why`, one line saying what the step is for, in a tutorial's words (`tsnet explain`
// prints it beside the command).
//
// Addresses are IpAddress values (src/ip/addr.ts: the family with the value as a bigint; text
// through formatIp); nf_tables specs and elements are those of src/nftables/ (keys and data as
// bytes, rendered by the layout their set declares).
import type { IpAddress, IpPrefix } from "../ip/addr.ts";
import type { ElementAdd, NftChange, TableSpec } from "../nftables/ensure.ts";
import type { Family as NftFamily } from "../nftables/nfnl.ts";

/**
 * Where an operation happens: absent for the host (tsnet's own network namespace); otherwise a
 * namespace's name under /run/netns (`tsnet-web`, as `ip netns` and `ip -n` name it) or, for a
 * namespace a CNI runtime gives by path, that absolute path (`/var/run/netns/cni-1234`,
 * `/proc/4242/ns/net`: what `nsenter --net=PATH` takes).
 */
export type NetnsRef = string;

interface OpBase {
  /** One line: what this step is for. */
  why: string;
}

/** A new network namespace, persisted under /run/netns/NAME (`ip netns add NAME`). */
export interface NetnsAddOp extends OpBase {
  op: "netns-add";
  name: string;
}

/**
 * The namespace's name goes (`ip netns del NAME`); the kernel destroys the namespace, and the
 * veth pairs with an end in it, once nothing holds it any more.
 */
export interface NetnsDelOp extends OpBase {
  op: "netns-del";
  name: string;
}

/**
 * A /proc/sys setting (`sysctl -w KEY=VALUE`, `ip netns exec NS sysctl ...` inside a namespace).
 * `key` in sysctl's dotted form, an interface name's own dots written as '/' (sysctlKey); the
 * file is written only when it holds another value.
 */
export interface SysctlOp extends OpBase {
  op: "sysctl";
  netns?: NetnsRef;
  key: string;
  value: string;
  /**
   * What to say when the file does not exist, as an error; absent: a missing file means there is
   * nothing to set (a kernel without IPv6 has no disable_ipv6), and the step is skipped.
   */
  ifMissing?: string;
}

/** The other end of a veth pair, as it is born (`peer name eth0 netns NS address MAC mtu N`). */
export interface VethPeer {
  name: string;
  /** The namespace it is born in (absent: beside the first end). */
  netns?: NetnsRef;
  /** "02:74:0a:4d:00:02" */
  mac?: string;
  mtu?: number;
  /** The ifindex to ask for (`index N`): 2 in a namespace that holds only lo. */
  index?: number;
}

/** A new link: a bridge, or a veth pair made in one step (`ip link add NAME type KIND ...`). */
export interface LinkAddOp extends OpBase {
  op: "link-add";
  netns?: NetnsRef;
  name: string;
  kind: "bridge" | "veth";
  /** "02:74:0a:4d:00:01" */
  mac?: string;
  mtu?: number;
  /** The bridge this link is attached to (`master BRIDGE`), in the same namespace. */
  master?: string;
  /** Up from its creation. */
  up?: boolean;
  /** A veth's other end. */
  peer?: VethPeer;
}

/** Changes to an existing link (`ip link set dev DEV ...`, `bridge link set dev DEV hairpin on`). */
export interface LinkSetOp extends OpBase {
  op: "link-set";
  netns?: NetnsRef;
  dev: string;
  up?: boolean;
  master?: string;
  /** The bridge port's hairpin mode: frames may leave by the port they came in by. */
  hairpin?: boolean;
  mtu?: number;
  mac?: string;
  /** Moves the link into another namespace (`netns NS`). */
  moveTo?: NetnsRef;
}

/** The link goes (`ip link del DEV`); for a veth, both ends. */
export interface LinkDelOp extends OpBase {
  op: "link-del";
  netns?: NetnsRef;
  dev: string;
  /** A link already gone is not an error. */
  ifExists?: boolean;
}

/** An address on a link (`ip addr add ADDRESS/PREFIX dev DEV [nodad]`). */
export interface AddrAddOp extends OpBase {
  op: "addr-add";
  netns?: NetnsRef;
  dev: string;
  address: IpAddress;
  prefix: number;
  /** IPv6: usable at once, without duplicate address detection (the address is leased). */
  nodad?: boolean;
}

/** An address leaves a link (`ip addr del ADDRESS/PREFIX dev DEV`); one not there is not an error. */
export interface AddrDelOp extends OpBase {
  op: "addr-del";
  netns?: NetnsRef;
  dev: string;
  address: IpAddress;
  prefix: number;
}

/** A route in the main table (`ip route add DST via GATEWAY dev DEV`). */
export interface RouteAddOp extends OpBase {
  op: "route-add";
  netns?: NetnsRef;
  dev: string;
  /** Absent: the default route of the gateway's family. */
  dst?: IpPrefix;
  gateway: IpAddress;
}

/**
 * The loopback guard (src/network/guard.ts) on a link's ingress: a clsact qdisc and a cls_bpf
 * filter in direct-action mode (`tc qdisc add dev DEV clsact; tc filter add dev DEV ingress
 * prio 1 handle 0x74736e74 bpf da bytecode ...`).
 */
export interface GuardOp extends OpBase {
  op: "guard";
  netns?: NetnsRef;
  dev: string;
}

/** One change inside an nf_tables transaction, as `nft` spells them (defined beside planTable). */
export type { NftChange } from "../nftables/ensure.ts";

/**
 * A table made to match `spec`, in ONE transaction (`nft -f FILE`). Without `changes` it is
 * written whole, nothing read first (a place known to be empty: a namespace just made); with
 * them, only they are sent: the difference between the table as read and the spec (planTable),
 * committed under the ruleset generation that was read, so a concurrent change makes the kernel
 * refuse it and the table is read and compared again. An empty `changes`: the table matches.
 */
export interface NftTableOp extends OpBase {
  op: "nft-table";
  netns?: NetnsRef;
  spec: TableSpec;
  changes?: readonly NftChange[];
  /**
   * The ruleset generation read before the table was (never shown): the transaction carries it,
   * so a change made in between makes the kernel refuse it (ERESTART, thrown to the planner, who
   * reads and plans again). Absent: the generation is read when the changes are sent.
   */
  generation?: number;
}

/**
 * Elements added to and deleted from sets of one table, in one transaction (`nft add element
 * inet tsnet ports { ... }`): the deletions first. Known elements, nothing read first.
 */
export interface NftElementsOp extends OpBase {
  op: "nft-elements";
  netns?: NetnsRef;
  family: NftFamily;
  table: string;
  add?: readonly ElementAdd[];
  delete?: readonly ElementAdd[];
}

export type Op =
  | NetnsAddOp
  | NetnsDelOp
  | SysctlOp
  | LinkAddOp
  | LinkSetOp
  | LinkDelOp
  | AddrAddOp
  | AddrDelOp
  | RouteAddOp
  | GuardOp
  | NftTableOp
  | NftElementsOp;

export type OpName = Op["op"];

/** What the commit needs besides the operations; never shown. */
export interface CommitContext {
  /** Open fds on the namespaces the operations name (by NetnsRef). */
  nsFds?: Record<NetnsRef, number>;
  /** Links whose ifindex is already known (from what was read), by linkKey. */
  indexes?: Record<string, number>;
}

/** What a planner returns: the operations, in order, and what the commit needs. */
export interface Plan {
  ops: Op[];
  context?: CommitContext;
}

/** The key of a link in CommitContext.indexes: its namespace (empty: the host) and name. */
export function linkKey(netns: NetnsRef | undefined, name: string): string {
  return `${netns ?? ""}\n${name}`;
}

/**
 * A sysctl key from its path segments under /proc/sys: sysctl's dotted form, where a dot inside
 * a segment (an interface name like `eth0.100`) is written as '/' (as sysctl(8) writes it).
 */
export function sysctlKey(...segments: string[]): string {
  return segments.map((s) => s.replaceAll(".", "/")).join(".");
}

/** The /proc/sys file of a sysctl key: dots and slashes trade places (the inverse of sysctlKey). */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/[./]/g, (c) => (c === "." ? "/" : "."))}`;
}

/** A MAC's bytes from its text, "02:74:0a:4d:00:02"; throws on anything else. */
export function macBytes(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) throw new RangeError(`"${text}" is not a MAC address`);
  return new Uint8Array(text.split(":").map((x) => Number.parseInt(x, 16)));
}
