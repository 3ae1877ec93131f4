// Address leases: one file per address, /run/tsnet/networks/NETID/leases/ADDRESS, holding who
// has it (container id, interface, and the names it answers to in DNS). Taking a lease is an
// O_EXCL create, so two runs starting at the same moment can never get the same address, and no
// lock is needed. Addresses carry their family, so an IPv6 subnet is leased the same way.
//
// Addresses are handed out round-robin from a per-network cursor, as Docker's IPAM does: an
// address just released is not handed out again at once, because the kernel may still be
// removing the old veth that held it (see ARCHITECTURE.md).
import { formatIp, parseIp, type IpAddress } from "../ip/addr.ts";
import { TsnetError } from "../errors/errors.ts";
import { createExclusive, ensureDir, listDir, readText, removeEmptyDir, removeFile, withLock, writeText } from "./files.ts";
import { ID_RE, NETWORKS_RUN_DIR } from "./paths.ts";

export interface LeaseOwner {
  container: string;
  ifname: string;
  /** Names this address answers to on the network: the container's name, aliases, short id. */
  names: string[];
  /**
   * For a CNI attachment (whose `container` is the attachment's id, src/state/cni.ts): the
   * runtime's container id. Absent for a tsnet container.
   */
  cniContainer?: string;
}

export interface Lease extends LeaseOwner {
  address: IpAddress;
}

export function leaseDir(networkId: string): string {
  if (!ID_RE.test(networkId)) throw new Error(`not a network id: ${JSON.stringify(networkId)}`);
  return `${NETWORKS_RUN_DIR}/${networkId}/leases`;
}

function cursorPath(networkId: string, family: number): string {
  return `${leaseDir(networkId).slice(0, -"/leases".length)}/next-v${family}`;
}

function readOwner(path: string): LeaseOwner | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LeaseOwner;
  } catch {
    return undefined;
  }
}

/**
 * Takes a free address in [first, last] (never `skip`, the gateway) for owner, starting after the
 * last one handed out and wrapping around once.
 */
export function takeLease(
  networkId: string,
  range: { first: IpAddress; last: IpAddress; skip?: IpAddress },
  owner: LeaseOwner,
  networkName = networkId,
): IpAddress {
  const dir = leaseDir(networkId);
  ensureDir(dir);
  const data = JSON.stringify(owner);
  for (const a of leaseOrder(networkId, range)) {
    if (createExclusive(`${dir}/${formatIp(a)}`, data)) {
      try {
        advanceCursor(networkId, range, a);
      } catch (e) {
        // Not handed out after all: nothing records it yet, so nothing else would release it.
        removeFile(`${dir}/${formatIp(a)}`);
        throw e;
      }
      return a;
    }
  }
  throw noFreeAddress(networkName);
}

function noFreeAddress(networkName: string): TsnetError {
  return new TsnetError(`network ${networkName} has no free address left: remove containers from it (tsnet ps --filter network=${networkName}) or create a network with a larger --subnet`);
}

/** The addresses takeLease tries, in its order: after the cursor, wrapping around once, never `skip`. */
function* leaseOrder(networkId: string, range: { first: IpAddress; last: IpAddress; skip?: IpAddress }): Generator<IpAddress> {
  const { first, last, skip } = range;
  const cursor = parseIp(readText(cursorPath(networkId, first.family))?.trim() ?? "");
  const start = cursor && cursor.family === first.family && cursor.value >= first.value && cursor.value < last.value ? cursor.value + 1n : first.value;
  const span = last.value - first.value + 1n;
  for (let i = 0n; i < span; i++) {
    let v = start + i;
    if (v > last.value) v -= span;
    if (skip && skip.value === v) continue;
    yield { family: first.family, value: v };
  }
}

/**
 * The address takeLease would take now, taking nothing (`tsnet explain`): the first in its order
 * that no lease file holds.
 */
export function nextLease(networkId: string, range: { first: IpAddress; last: IpAddress; skip?: IpAddress }, networkName = networkId): IpAddress {
  const taken = new Set(listDir(leaseDir(networkId)));
  for (const a of leaseOrder(networkId, range)) if (!taken.has(formatIp(a))) return a;
  throw noFreeAddress(networkName);
}

/**
 * Moves the cursor to a, unless a run that took its address at the same moment has already moved
 * it further (within half the ring, wrapping): the cursor only goes forward, so the address after
 * it was not just handed out. The lock covers only this read and write, not the lease itself.
 */
function advanceCursor(networkId: string, range: { first: IpAddress; last: IpAddress }, a: IpAddress): void {
  const path = cursorPath(networkId, a.family);
  withLock(`cursor-${networkId.slice(0, 12)}`, () => {
    const cur = parseIp(readText(path)?.trim() ?? "");
    if (cur && cur.family === a.family && cur.value >= range.first.value && cur.value <= range.last.value) {
      const span = range.last.value - range.first.value + 1n;
      const ahead = (a.value - cur.value + span) % span;
      if (ahead === 0n || ahead > span / 2n) return;
    }
    writeText(path, formatIp(a));
  });
}

/** Takes exactly this address (`--ip`); false when someone holds it. */
export function takeLeaseAt(networkId: string, address: IpAddress, owner: LeaseOwner): boolean {
  const dir = leaseDir(networkId);
  ensureDir(dir);
  return createExclusive(`${dir}/${formatIp(address)}`, JSON.stringify(owner));
}

export function leaseHolder(networkId: string, address: IpAddress): LeaseOwner | undefined {
  return readOwner(`${leaseDir(networkId)}/${formatIp(address)}`);
}

/** Releases the lease if owner still holds it (a lease is never taken from someone else). */
export function releaseLease(networkId: string, address: IpAddress, owner: string): void {
  const path = `${leaseDir(networkId)}/${formatIp(address)}`;
  if (readOwner(path)?.container === owner) removeFile(path);
}

export function listLeases(networkId: string): Lease[] {
  const dir = leaseDir(networkId);
  const out: Lease[] = [];
  for (const n of listDir(dir)) {
    const address = parseIp(n);
    const owner = address && readOwner(`${dir}/${n}`);
    if (address && owner) out.push({ address, ...owner });
  }
  return out;
}

/**
 * Releases every lease the container holds, found by owner: a run killed between taking its
 * address and recording it leaves a lease that only its id points to.
 */
export function releaseLeasesOwnedBy(owner: string): void {
  for (const net of listDir(NETWORKS_RUN_DIR)) {
    if (!ID_RE.test(net)) continue;
    for (const l of listLeases(net)) {
      if (l.container === owner) removeFile(`${leaseDir(net)}/${formatIp(l.address)}`);
    }
  }
}

export function hasLeases(networkId: string): boolean {
  return listLeases(networkId).length > 0;
}

/**
 * A removed network's address state: its cursors and, if no lease is in them (a run racing the
 * removal keeps its lease), its directories.
 */
export function forgetLeases(networkId: string): void {
  if (!ID_RE.test(networkId)) return;
  for (const family of [4, 6]) removeFile(cursorPath(networkId, family));
  removeEmptyDir(leaseDir(networkId));
  removeEmptyDir(`${NETWORKS_RUN_DIR}/${networkId}`);
}

