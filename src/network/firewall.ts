// Self-healing firewall state. A firewall reload (`nft flush ruleset`, nftables.service or
// firewalld restarting) deletes tsnet's table with everything else: published ports stop
// working, networks are no longer isolated, and the table's loopback guard is gone while
// route_localnet stays on (containers' veths keep their own guard, src/network/guard.ts, unless
// the kernel cannot carry it: then route_localnet is what let them reach host services bound to
// 127.0.0.1 only, and it is turned off until the table's guard is back).
//
// tsnet has no daemon, but every container has a process that lives exactly as long as it does:
// its manager (a foreground `tsnet run`, or the supervisor). While a manager holds containers it
// listens to nf_tables' announcements (src/nftables/monitor.ts, from the event loop: nothing
// runs while nothing changes) and, when something of tsnet's table or one of its containers'
// elements is deleted by someone else, puts it back: route_localnet off on every tsnet bridge if
// the guard is gone, the whole table from the set of networks plus its containers' missing
// elements in one transaction, each veth's guard checked, route_localnet on again. `tsnet firewall-reload` runs the same
// restore once for every running container.
//
// Why no loops and no fights: a restore first checks, reading only; it commits only what is
// missing, so a check that finds everything in place changes nothing and announces nothing.
// tsnet's own commits are told apart by the port id the announcements carry. Several managers
// seeing the same flush serialise on the networks lock; the first rebuilds the table, the others
// find it there and add only their own containers' elements. A process that keeps undoing what
// tsnet restores (another program, or another version of tsnet with other rules) would make that
// a loop: past 30 restores in 5 seconds (a pace no firewall reload has), a manager restores at
// most once a second.
import { warn } from "../errors/notice.ts";
import { natSocket } from "../nat/portmap.ts";
import { NAT_WATCH_FILTER, guardWasMissing, natTableTouched, restoreNatTable, type OwnedPorts } from "../nat/restore.ts";
import type { NatNetwork } from "../nat/ruleset.ts";
import { watchNftables, type NftWatch } from "../nftables/index.ts";
import { setRouteLocalnet } from "./bridge.ts";
import { natNetworks, withNetworksLock } from "./networks.ts";

export type { OwnedPorts } from "../nat/restore.ts";

export interface FirewallRestore {
  /** Something was missing and has been put back. */
  repaired: boolean;
  /** The whole table was missing. */
  tableWasMissing: boolean;
  /** The table or its guard chain was missing (route_localnet was off until it was back). */
  guardWasMissing: boolean;
  /** Port elements put back. */
  portsAdded: number;
}

/** "restored tsnet's nf_tables table and 2 published port(s)", for a message. */
export function describeRestore(r: FirewallRestore): string {
  const what = r.tableWasMissing ? "tsnet's nf_tables table (guards, isolation, port maps)" : "missing parts of tsnet's nf_tables table";
  return `restored ${what}${r.portsAdded ? ` and ${r.portsAdded} published port(s)` : ""}`;
}

function setLocalnet(networks: readonly NatNetwork[], on: boolean): void {
  for (const n of networks) setRouteLocalnet(n.bridge, on);
}

/**
 * Puts back whatever of tsnet's table and of `owned`'s port elements is missing, with
 * route_localnet off on every tsnet bridge while the guard is not in place. A check that finds
 * nothing missing takes no lock and commits nothing.
 */
export function restoreFirewall(owned: readonly OwnedPorts[]): FirewallRestore {
  const check = restoreNatTable(natNetworks(), owned, { dryRun: true });
  let result: FirewallRestore = { repaired: false, tableWasMissing: check.tableMissing, guardWasMissing: guardWasMissing(check), portsAdded: 0 };
  if (check.drifted) {
    // Before anything can wait (the lock): without the guard, route_localnet is a way in.
    if (result.guardWasMissing) setLocalnet(natNetworks(), false);
    result = withNetworksLock(() => {
      // Read again under the lock: another manager may have restored it meanwhile, and the
      // set of networks is final only while the lock is held.
      const networks = natNetworks();
      const r = restoreNatTable(networks, owned, {
        beforeCommit: (plan) => {
          if (guardWasMissing(plan)) setLocalnet(networks, false);
        },
      });
      return {
        repaired: r.committed,
        tableWasMissing: result.tableWasMissing || r.tableMissing,
        guardWasMissing: result.guardWasMissing || guardWasMissing(r),
        portsAdded: r.committed ? r.added : 0,
      };
    });
  }
  // The guard is in place now (checked, or just committed).
  setLocalnet(natNetworks(), true);
  return result;
}

// Watching: one subscription per process, shared by the containers it manages.

type Holder = () => OwnedPorts | undefined;
const holders = new Set<Holder>();
let watch: NftWatch | undefined;
let timer: Timer | undefined;
const recent: number[] = [];
let failures = 0;
let warnedFight = false;

const RESTORES_BEFORE_SLOWING = 30;
const SLOW_WINDOW_MS = 5000;
const SLOW_DELAY_MS = 1000;

function owned(): OwnedPorts[] {
  const out: OwnedPorts[] = [];
  for (const h of holders) {
    const o = h();
    if (o) out.push(o);
  }
  return out;
}

function schedule(delay = 0): void {
  if (timer !== undefined || !watch) return;
  const now = Date.now();
  while (recent.length && recent[0]! < now - SLOW_WINDOW_MS) recent.shift();
  if (recent.length >= RESTORES_BEFORE_SLOWING) {
    delay = Math.max(delay, SLOW_DELAY_MS);
    if (!warnedFight) {
      warnedFight = true;
      warn(`tsnet's firewall rules keep being removed (${recent.length} restores in ${SLOW_WINDOW_MS / 1000} s): restoring them at most once a second`);
    }
  }
  timer = setTimeout(check, delay);
}

function check(): void {
  timer = undefined;
  if (!watch || holders.size === 0) return;
  try {
    const r = restoreFirewall(owned());
    failures = 0;
    if (r.repaired) {
      recent.push(Date.now());
      warn(`${describeRestore(r)} (a firewall reload?)`);
    }
  } catch (e) {
    // Try again, less and less often: whatever failed (a busy lock holder, memory) may pass.
    failures++;
    if (failures === 1 || failures % 10 === 0) warn(`restoring tsnet's firewall rules: ${(e as Error).message}`);
    schedule(Math.min(10_000, 100 * 2 ** Math.min(failures, 7)));
  }
}

// A container that ends this soon has nothing to protect, and a short `run --rm` should not pay
// for a subscription (about 2 ms) or a check (a few ms of cold code): the subscription starts
// this long after the first holder, and a check at once then covers whatever happened before.
// Both stay within the 100 ms a restore may take.
const SUBSCRIBE_AFTER_MS = 50;
let starting: Timer | undefined;

function subscribeSoon(delay: number): void {
  if (watch || starting) return;
  starting = setTimeout(() => {
    starting = undefined;
    if (holders.size === 0 || watch) return;
    try {
      watch = watchNftables({
        events(events, lost) {
          if (holders.size === 0) return;
          // Lost notifications may have said anything: look.
          if (lost || natTableTouched(events, owned(), new Set([natSocket().portid]))) schedule();
        },
        failed(e) {
          warn(`watching nf_tables for firewall reloads stopped: ${e.message}`);
          watch = undefined;
          // Listen again on a new socket (and look: something may have passed unseen).
          subscribeSoon(1000);
        },
      }, NAT_WATCH_FILTER);
    } catch (e) {
      warn(`watching nf_tables for firewall reloads: ${(e as Error).message}`);
      subscribeSoon(1000);
      return;
    }
    // Anything removed before the subscription went unseen: look once (reading only, unless
    // something is missing).
    schedule();
  }, delay);
}

/**
 * Keeps tsnet's table, the guard, route_localnet and `ports()`'s elements restored for as long
 * as the returned release function has not been called. The first holder of a process starts
 * the subscription (SUBSCRIBE_AFTER_MS later, from the event loop, so in the process's own
 * namespace), the last release ends it. `ports()` is asked at each restore, so it always
 * reflects the container's record.
 */
export function holdFirewall(ports: () => OwnedPorts | undefined): () => void {
  holders.add(ports);
  subscribeSoon(SUBSCRIBE_AFTER_MS);
  return () => {
    if (!holders.delete(ports) || holders.size) return;
    clearTimeout(starting);
    starting = undefined;
    clearTimeout(timer);
    timer = undefined;
    watch?.stop();
    watch = undefined;
  };
}
