// Putting tsnet's table back after someone else took it away. A firewall reload (`nft flush
// ruleset`, nftables.service or firewalld restarting) deletes every table, tsnet's with it: the
// published ports, the guards and the isolation between networks. What the table must hold is
// known without any saved copy: its rules and sets follow from the set of networks
// (src/nat/ruleset.ts), and the port elements from the records of the running containers. So
// restoring is ensureTable (one transaction) with the owners' elements added, and a check that
// finds nothing missing commits nothing.
import { NFPROTO_INET, NFT_MSG_DELCHAIN, NFT_MSG_DELRULE, NFT_MSG_DELSET, NFT_MSG_DELSETELEM, NFT_MSG_DELTABLE } from "../nftables/constants.ts";
import { ensureTable, type ElementAdd, type EnsureResult, type NftEvent, type NftWatchFilter } from "../nftables/index.ts";
import { NAT_TABLE, natSocket, type PortOwner } from "./portmap.ts";
import type { AimedPort } from "../ip/port.ts";
import { GUARD_CHAIN, LOOPBACK_GUARD, PORT_SETS, natTable, portElements, type NatNetwork } from "./ruleset.ts";

/** One owner's published ports, as its record says they must be. */
export interface OwnedPorts {
  owner: PortOwner;
  ports: readonly AimedPort[];
}

function elementsOf(owned: readonly OwnedPorts[]): ElementAdd[] {
  return owned.flatMap((o) => portElements(o.owner.tag, o.owner.name, o.ports));
}

export interface RestoreOptions {
  /** Only find out what is missing. */
  dryRun?: boolean;
  /** Runs before the repair is committed, with what it will change. */
  beforeCommit?: (plan: EnsureResult) => void;
}

/**
 * Makes tsnet's table whole again, in one transaction: the table, its chains, rules and sets as
 * the networks make them, and every owner's elements that are missing. An element whose key is
 * there already is left alone. Nothing is committed when nothing is missing.
 */
export function restoreNatTable(networks: readonly NatNetwork[], owned: readonly OwnedPorts[], opts: RestoreOptions = {}): EnsureResult {
  return ensureTable(natSocket(), natTable({ table: NAT_TABLE, networks }), {
    add: elementsOf(owned),
    addMissingOnly: true,
    onlyIfDrifted: true,
    ...opts,
  });
}

/**
 * The loopback guard, what makes route_localnet safe, was not in place. (Only that rule: a
 * network's direct-access rule missing, as while `network rm` runs, is no reason to take
 * 127.0.0.1 away from every published port.)
 */
export function guardWasMissing(r: EnsureResult): boolean {
  return r.tableMissing || r.missingRules.some((x) => x.chain === GUARD_CHAIN && x.comment === LOOPBACK_GUARD);
}

const DELETION_MSGS = [NFT_MSG_DELTABLE, NFT_MSG_DELCHAIN, NFT_MSG_DELRULE, NFT_MSG_DELSET, NFT_MSG_DELSETELEM];
const DELETIONS = new Set(DELETION_MSGS);

/** What a watch needs to see (the kernel drops the rest): deletions in tsnet's table. */
export const NAT_WATCH_FILTER: NftWatchFilter = { family: NFPROTO_INET, table: NAT_TABLE, msgs: DELETION_MSGS };

/**
 * Whether notifications may mean that something of tsnet's table, or one of the owners'
 * elements, is gone: a deletion in the table by another socket than `ours`. Port elements
 * deleted by others (another container ending) do not count unless they are the owners'.
 */
export function natTableTouched(events: readonly NftEvent[], owned: readonly OwnedPorts[], ours: ReadonlySet<number>): boolean {
  let keys: Set<string> | undefined;
  for (const ev of events) {
    if (!DELETIONS.has(ev.msg) || ev.family !== NFPROTO_INET || ev.table !== NAT_TABLE || ours.has(ev.portid)) continue;
    if (ev.msg !== NFT_MSG_DELSETELEM || !(PORT_SETS as readonly string[]).includes(ev.set ?? "")) return true;
    keys ??= new Set(elementsOf(owned).flatMap((a) => a.elements.map((e) => `${a.set}/${hex(e.key)}`)));
    // A deletion that names no element (a whole map flushed) may have taken any of them.
    if (!ev.elements?.length || ev.elements.some((e) => keys!.has(`${ev.set}/${hex(e.key)}`))) return true;
  }
  return false;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}
