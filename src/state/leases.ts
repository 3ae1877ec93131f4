// Address leases: one file per address, /run/tsnet/networks/NET/leases/A.B.C.D, holding the
// owner's container id. Taking a lease is an O_EXCL create, so two runs starting at the same
// moment can never get the same address, and no lock is needed.
import { readdirSync } from "node:fs";
import { formatIPv4 } from "../ip/ipv4.ts";
import { TsnetError } from "../errors/errors.ts";
import { createExclusive, ensureDir, readText, removeFile } from "./files.ts";
import { NETWORKS_DIR } from "./paths.ts";

function leaseDir(network: string): string {
  return `${NETWORKS_DIR}/${network}/leases`;
}

/** Takes the lowest free address in [first, last] for owner. */
export function takeLowestLease(network: string, first: number, last: number, owner: string): number {
  const dir = leaseDir(network);
  ensureDir(dir);
  const taken = new Set(readdirSync(dir));
  for (let a = first; a <= last; a++) {
    const name = formatIPv4(a);
    if (taken.has(name)) continue;
    if (createExclusive(`${dir}/${name}`, owner)) return a;
  }
  throw new TsnetError(`network ${network} has no free address left: remove stopped containers with --rm runs or free the range`);
}

/** Releases the lease if owner still holds it (a lease is never taken from someone else). */
export function releaseLease(network: string, address: number, owner: string): void {
  const path = `${leaseDir(network)}/${formatIPv4(address)}`;
  if (readText(path) === owner) removeFile(path);
}

/**
 * Releases every lease the container holds, found by owner: a run killed between taking its
 * address and recording it leaves a lease that only its id points to.
 */
export function releaseLeasesOwnedBy(owner: string): void {
  let networks: string[];
  try {
    networks = readdirSync(NETWORKS_DIR);
  } catch {
    return;
  }
  for (const net of networks) {
    let names: string[];
    try {
      names = readdirSync(leaseDir(net));
    } catch {
      continue;
    }
    for (const n of names) {
      const path = `${leaseDir(net)}/${n}`;
      if (readText(path) === owner) removeFile(path);
    }
  }
}
