// One container's life, shared by every command that starts or ends one: create (record, name,
// port reservations, cgroup, sandbox, published ports), spawn the command inside, wait for its
// last process, destroy. Each step of create is undone by destroy, which removes whatever the
// record names and tolerates what is already gone, so the same code serves a failed setup, a
// normal exit and a crashed run.
import { existsSync, readlinkSync } from "../../ffi/fs.ts";
import { cgroupPids, createCgroup, isPopulated, killCgroup, placeContainer, removeCgroup, signalCgroup, whenEmpty } from "../cgroup/cgroup.ts";
import { Cleanup, TsnetError, UsageError } from "../errors/errors.ts";
import { parseMac } from "../network/bridge.ts";
import { unpublishPorts } from "../network/publish.ts";
import { adoptNetns, inNetns, openNetns, openNetnsOf, ownNetnsIdentity } from "../netns/netns.ts";
import { removeDnsRedirect } from "../nat/dns.ts";
import { allNetworks, knownNetworks } from "../network/networks.ts";
import { addressesOf, aimedAt, portsOn, publishAimed } from "../network/publish.ts";
import { holdFirewall, type OwnedPorts } from "../network/firewall.ts";
import { findNetwork, type NetworkRecord } from "../state/networks.ts";
import { attachEndpoint, completeSandbox, staticAddresses, containerOwner, createSandbox, reclaimNetns, teardownSandbox, type Sandbox } from "../network/sandbox.ts";
import type { AimedPort, PublishedPort } from "../ip/port.ts";
import { releasePorts, reservePorts, type Reservation } from "../network/reserve.ts";
import type { PortRequest } from "../network/ports.ts";
import { close, kill } from "../../ffi/libc.ts";
import { spawnChild } from "../process/children.ts";
import { reserveFds, withSpareFds } from "../process/spare.ts";
import {
  containerLock, deleteRecord, findContainer, forgetContainer, listRecords, loadRecord, newId, reserveName, saveRecord, withRecordLock, type ContainerRecord,
  type NetworkMode,
} from "../state/containers.ts";
import { fsError } from "../state/owned.ts";
import { deadManagers, managerId, releaseManager } from "../state/managers.ts";
import { releaseLock, sweepTemporaries, takeLock } from "../state/files.ts";
import { CONTAINERS_DIR, NETNS_DIR } from "../state/paths.ts";
import { releaseLeasesOwnedBy } from "../state/leases.ts";
import { joinersOf, markJoin, unmarkJoiner } from "../state/joins.ts";
import { SIGKILL, SIGTERM, SignalRoute, exitStatus, isSameProcess, signalCommand, startTime } from "./proc.ts";
import { removeEtcFiles, upstreamServers, writeEtcFiles } from "./etc.ts";
import { startResolver, type Resolver } from "../network/resolver.ts";
import { watchSetAside } from "../network/reap.ts";
import { inPrivateNamespaces, inNamespacesOf, type PrivateFiles } from "../netns/private.ts";
import { warn } from "../errors/notice.ts";
import { crashPoint } from "../errors/crashpoint.ts";
import { mark } from "../errors/trace.ts";

export interface CreateOptions {
  mode: NetworkMode;
  /** With mode "bridge": the bridge network to attach to ("bridge", the default, or a user network). */
  network?: string;
  /** With mode "container": the name or id of the container whose namespace is joined. */
  join?: string;
  /** --ip, --ip6, --mac-address, --network-alias for the network attached to. */
  ip?: string;
  ip6?: string;
  mac?: string;
  aliases?: string[];
  hostname?: string;
  dns?: string[];
  dnsSearch?: string[];
  /** --add-host NAME:ADDRESS, ADDRESS possibly "host-gateway". */
  extraHosts?: { name: string; address: string }[];
  name?: string;
  rm: boolean;
  command: string[];
  publish: PortRequest[];
  /** --expose (and -P's): container ports, "80/tcp", shown by `ps --filter expose=`. */
  expose?: string[];
  /** Run under the supervisor (`run -d`). */
  detached?: boolean;
  /** The id of an exited container started again (`tsnet restart`): it keeps its id and name. */
  id?: string;
  /** ...and when it was created, as Docker keeps `Created` (only `State.StartedAt` is new). */
  created?: string;
}

export interface Live {
  rec: ContainerRecord;
  /** The container's lock, held by its manager from before its record exists until it is
   * started, so `rm -f` or `stop` racing the setup wait for it instead of missing it. */
  setupLock?: { fd: number; path: string };
  sandbox?: Sandbox;
  /** fd of a joined container's namespace. */
  joinedFd?: number;
  reservations: Reservation[];
  /** The container's DNS resolver, served by this process (the container's manager). */
  resolver?: Resolver;
  /** Why the container has no cgroup, for a one-line warning (see README, "no cgroup v2"). */
  warning?: string;
  /** Its ports' elements were added by this process (so their keys are its own to delete). */
  published?: boolean;
  /** Ends this manager's watch over the container's rules (src/network/firewall.ts). */
  releaseFirewall?: () => void;
  /** Ends its watch for veth pairs `network disconnect` set aside (src/network/reap.ts). */
  releaseReaper?: () => void;
}

/**
 * What createContainer refuses before anything is made: the network (a bridge one), -p on an
 * internal network or an address it has not, aliases on a built-in network, --ip/--ip6. With
 * `readOnly` (`tsnet explain run`) the built-in networks' records are not written on first need.
 */
export function checkCreate(o: CreateOptions, readOnly = false): { net?: NetworkRecord; ports: PublishedPort[] } {
  const net = o.mode === "bridge" ? findRunNetwork(o.network ?? "bridge", readOnly) : undefined;
  let ports: PublishedPort[] = [];
  if (net) {
    if (net.internal && o.publish.length) throw new UsageError(`-p cannot be used on internal network ${net.name}: it has no way in from outside`);
    ports = portsOn(net, o.publish);
    if (net.builtin && o.aliases?.length) {
      throw new UsageError(`--network-alias is supported on user-defined networks only: create one with tsnet network create NAME`);
    }
    staticAddresses(net, o.ip, o.ip6);
  }
  return { net, ports };
}

export function createContainer(o: CreateOptions): Live {
  // Everything that can be refused is refused before anything is made.
  mark("create");
  const { net, ports } = checkCreate(o);
  // Descriptors held back for the undo, should the setup fail for want of them (EMFILE).
  reserveFds();
  const id = o.id ?? newId();
  const rec: ContainerRecord = {
    id,
    name: "",
    command: o.command,
    created: o.created ?? new Date().toISOString(),
    mode: o.mode,
    status: "created",
    autoRemove: o.rm,
    detached: o.detached === true,
    manager: managerId(),
    ...(o.hostname !== undefined && { hostname: o.hostname }),
    ...(o.dns?.length && { dns: o.dns }),
    ...(o.dnsSearch?.length && { dnsSearch: o.dnsSearch }),
    ...(o.expose?.length && { exposed: o.expose }),
  };
  if (net) rec.network = { name: net.name, id: net.id };
  const join = o.join === undefined ? undefined : resolveJoin(o.join);
  if (join) rec.joined = { id: join.id, netns: join.netns };
  // Lock, then record (naming this process as its manager), then name: whatever a crash
  // interrupts, a record whose manager is dead says what to undo.
  const live: Live = { rec, reservations: [], setupLock: takeLock(containerLock(id)) };
  // Where its cgroup will be, in the record from its first write: recorded before it is made.
  const place = placeContainer(id);
  if ("path" in place) rec.cgroup = place.path;
  try {
    // Subscribed before the network is touched, so no firewall reload from here on goes unseen.
    if (net) live.releaseFirewall = holdFirewall(() => firewallOf(live.rec));
    // The first write of the record (naming its manager, cgroup and name) comes before the name
    // is reserved.
    reserveName(rec, o.name);
    mark("recorded");
    // Once the record names what it joins, so that crash recovery removes the mark too.
    if (join) markJoin(join.owner, rec.id);
    crashPoint("after-name");
    // Ports first: a port someone holds is refused before anything else is made. The record
    // names them at once, so the loser of a race for a port can name this container.
    live.reservations = reservePorts(ports, id, () => addressesOf(live.rec.endpoints?.[0]?.ips));
    if (live.reservations.length) {
      rec.ports = live.reservations.map((r) => r.port);
      saveRecord(rec);
    }
    mark("ports");
    if ("path" in place) {
      createCgroup(place.path);
      crashPoint("after-cgroup");
    } else if (place.fallback) {
      live.warning = `${place.fallback}: tracking the command by its process group, so processes that leave it (daemons, setsid) are neither waited for nor ended with the container`;
    }
    mark("cgroup");
    if (o.mode === "bridge" || o.mode === "none") live.sandbox = createSandbox(rec);
    if (net && live.sandbox) {
      mark("netns");
      attachEndpoint(containerOwner(rec), net, live.sandbox, {
        ...staticAddresses(net, o.ip, o.ip6),
        mac: o.mac === undefined ? undefined : parseMac(o.mac),
        aliases: o.aliases,
        hairpin: (rec.ports?.length ?? 0) > 0,
        freshNamespace: true,
      });
      mark("endpoint");
    }
    if (live.sandbox) completeSandbox(live.sandbox);
    // After lo is up: 127.0.0.11 is an address of the namespace only then.
    if (net && live.sandbox) live.resolver = startResolver(live.sandbox.ns.fd, { containerId: rec.id, upstream: upstreamServers(rec), supervised: o.detached === true });
    mark("resolver");
    if (net && live.sandbox) live.releaseReaper = watchSetAside(live.sandbox.ns.fd, `container ${rec.name}`);
    if (o.extraHosts?.length) {
      const gw = rec.endpoints?.[0]?.ips[0]?.gateway;
      rec.extraHosts = o.extraHosts.map((h) => ({ name: h.name, address: h.address === "host-gateway" ? gw ?? "" : h.address }));
      saveRecord(rec);
    }
    if (rec.joined) live.joinedFd = openNetns(rec.joined.netns);
    if (rec.ports?.length) {
      publishAimed(portOwner(rec), publishedFor(rec));
      live.published = true;
      crashPoint("after-publish");
    }
    return live;
  } catch (e) {
    withSpareFds(() => {
      try {
        destroyContainer(live);
      } catch (undo) {
        if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
      }
      deleteRecord(rec);
      releaseSetup(live);
    });
    throw e;
  }
}

function releaseSetup(live: Live): void {
  if (!live.setupLock) return;
  releaseLock(live.setupLock);
  live.setupLock = undefined;
}

/** Marks the container started. */
export function started(live: Live, child: Bun.Subprocess): void {
  const rec = live.rec;
  rec.pid = child.pid;
  rec.pidStart = startTime(child.pid);
  rec.status = "running";
  rec.startedAt = new Date().toISOString();
  saveRecord(rec);
  crashPoint("after-start");
  releaseSetup(live);
}

/**
 * After the command has ended with `code`: releases the network, records the exit (or forgets
 * the container: with --rm, or `forget` for one whose command never started, which is undone
 * whole, record and name included, as a failed setup is), and only then lets go of the
 * liveness lock.
 */
export function finishContainer(live: Live, code: number, forget = live.rec.autoRemove): void {
  withSpareFds(() => finish(live, code, forget));
}

function finish(live: Live, code: number, forget: boolean): void {
  const rec = live.rec;
  releaseSetup(live);
  // `network connect` may have added endpoints since this process last wrote the record.
  withRecordLock(rec.id, () => {
    const disk = loadRecord(rec.id);
    if (disk) rec.endpoints = disk.endpoints;
  });
  rec.status = "exited";
  rec.exitCode = code;
  rec.finishedAt = new Date().toISOString();
  try {
    destroyContainer(live);
  } finally {
    // Under the lock: a `stop` that read the record as running must not write it back after this.
    withRecordLock(rec.id, () => (forget ? forgetContainer(rec) : saveRecord(rec)));
  }
}

/** A started container: where its manager's forwarded signals go, and its exit status once its
 * last process has ended. */
export interface Running {
  route: SignalRoute;
  ended: Promise<number>;
  /** The command's pseudo-terminal (-t), for its manager to relay. */
  terminal?: Bun.Terminal;
}

/**
 * Follows a started container to its end. The container lives while any of its processes lives
 * (systemd's rule): the first process's exit ends it only when nothing else remains in its
 * cgroup; otherwise one inotify watch on cgroup.events waits for the last. The exit status is the
 * first process's own, unless a signal sent through tsnet (forwarded by its manager, or by
 * `tsnet stop`) after the first process had exited ended the rest: then 128+N. Without a cgroup,
 * the container ends with its first process and whatever remains of its process group is killed.
 */
export function track(live: Live, child: Bun.Subprocess): Running {
  const cgroup = live.rec.cgroup;
  const tty = live.rec.config?.tty === true;
  const route = new SignalRoute(child.pid, cgroup, tty);
  const ended = child.exited.then(async () => {
    route.firstAlive = false;
    const first = exitStatus(child);
    if (!cgroup) {
      try {
        kill(-child.pid, SIGKILL);
      } catch {}
      return first;
    }
    if (!isPopulated(cgroup)) return first;
    if (tty) {
      // A terminal session ends with its shell, as Docker's does: what the shell left running
      // (`sleep 1000 &`, then `exit`) gets stop's treatment, and the status is the shell's.
      await endRemaining(cgroup, STOP_SECONDS);
      return first;
    }
    await whenEmpty(cgroup);
    const sig = loadRecord(live.rec.id)?.stopSignal ?? route.signalAfterFirst;
    return sig === undefined ? first : 128 + sig;
  });
  return { route, ended, terminal: child.terminal };
}

/** How long what a -t container's shell left behind has after SIGTERM, as `tsnet stop` gives. */
const STOP_SECONDS = 10;

/** TERM to every process of the cgroup, KILL after `seconds`; resolves once it is empty. */
async function endRemaining(cgroup: string, seconds: number): Promise<void> {
  signalCgroup(cgroup, SIGTERM);
  const timer = setTimeout(() => {
    try {
      killCgroup(cgroup);
    } catch {}
  }, seconds * 1000);
  try {
    await whenEmpty(cgroup);
  } finally {
    clearTimeout(timer);
  }
}

/** Exit status of a container whose manager died and that is not adopted: the command is killed, as by SIGKILL. */
export const CRASHED_EXIT_CODE = 137;

/**
 * Exit status of an adopted run whose end nobody could wait for: its first process was the dead
 * manager's child, so its own status went to whoever reaped it (init). Docker records 255 when
 * the status of a task it restored is lost. A run stopped through tsnet says 128+N instead.
 */
export const UNKNOWN_EXIT_CODE = 255;

/**
 * What a supervisor does with a container of a dead manager that can be adopted (see
 * `adoptContainer`); without one, such a container is left for a supervisor to adopt.
 */
export type Adopter = (rec: ContainerRecord) => void;

/**
 * A container of a dead manager that a supervisor takes over instead of releasing: detached (a
 * foreground run's container ends with its tsnet, as nobody waits for it), started, and with
 * processes left in its cgroup. Without a cgroup nothing tells when its last process is gone.
 */
/**
 * A detached container that runs on without its manager. Not one with a terminal (`-dt`): the
 * pty's master was the dead supervisor's, so its session was hung up with it, and a supervisor
 * could only watch a log nothing writes any more; it is released as after a crash.
 */
function adoptable(rec: ContainerRecord): boolean {
  return rec.detached === true && rec.config?.tty !== true && rec.status === "running" && rec.cgroup !== undefined && isPopulated(rec.cgroup);
}

/**
 * Finds containers whose manager died (kill -9, a crash, an OOM kill, a supervisor handing over
 * to another build) and deals with each: a detached container whose processes live on is adopted
 * by `adopt` (the supervisor's), or, without one, left for a supervisor, and then true is
 * returned (the caller starts or asks one, src/supervisor/client.ts); any other is released:
 * its processes, namespace, veths, published ports, addresses and name (or record). Then the
 * temporary files the manager left are removed. Every command runs it before it reads or
 * allocates anything, so a crash never blocks a name, an address or a host port for long. It
 * costs a lock probe per live manager; records are read only when a manager is found dead.
 */
export function recoverOrphans(adopt?: Adopter): boolean {
  const dead = deadManagers();
  if (!dead.length) return false;
  const recs = listRecords();
  let waiting = false;
  for (const m of dead) {
    // A container joined to another's namespace after that one, whose link then points at a live fd again.
    const its = recs.filter((r) => r.manager === m.id).sort((a, b) => Number(a.joined !== undefined) - Number(b.joined !== undefined));
    let kept = false;
    for (const rec of its) {
      if (rec.status === "exited") {
        if (rec.autoRemove) forgetContainer(rec); // it died between recording the exit and forgetting it
      } else if (!adoptable(rec)) {
        releaseOrphan(rec);
      } else if (adopt) {
        adopt(rec);
      } else {
        kept = true;
      }
    }
    sweepTemporaries(CONTAINERS_DIR, m.id);
    // Its lock file stays while a container still names it: the supervisor finds it dead too.
    if (kept) close(m.fd);
    else releaseManager(m.id, m.fd);
    waiting ||= kept;
  }
  return waiting;
}

/** Releases a container whose manager died, as after a crash (its processes killed); `live`: what an adoption had opened. */
export function releaseOrphan(rec: ContainerRecord, live: Live = { rec, reservations: [] }): void {
  // Its first process's group goes now; teardown then kills every process of its cgroup.
  if (rec.pid !== undefined) signalCommand(rec.pid, rec.pidStart, SIGKILL);
  try {
    releaseLeasesOwnedBy(rec.id);
    reclaimNetns(rec);
    // Stopped through tsnet while nobody managed it: the status says so, as a managed stop's would.
    finishContainer(live, rec.stopSignal === undefined ? CRASHED_EXIT_CODE : 128 + rec.stopSignal);
  } catch (e) {
    warn(`cleaning up after crashed container ${rec.name}: ${(e as Error).message}`);
  }
}

/**
 * Takes over a container whose manager died while its processes live on: this process becomes its
 * manager (the record says so, written under the container's lock). What the kernel kept needs
 * nothing: processes, cgroup, veths, addresses, routes, port elements. What lived in the dead
 * manager is made again: an fd on the namespace, opened through a process of the container that
 * is in it (checked against the identity recorded when it was made), and the link
 * /run/netns/tsnet-NAME pointing at it; the resolver's sockets and its redirect; the sockets
 * reserving the host ports; the watch over the container's rules. When the namespace cannot be
 * found (no process is in it any more) the container is released as after a crash, and
 * undefined is returned; likewise when the record is no longer the dead manager's.
 */
export function adoptContainer(found: ContainerRecord): Live | undefined {
  const rec = withRecordLock(found.id, () => {
    const now = loadRecord(found.id);
    if (!now || now.manager !== found.manager || now.status !== "running") return undefined;
    now.manager = managerId();
    saveRecord(now);
    return now;
  });
  if (!rec) return undefined;
  crashPoint("adopt-after-record");
  const live: Live = { rec, reservations: [] };
  try {
    if (rec.netns) {
      const fd = containerNetns(rec);
      if (fd === undefined) throw new TsnetError(`no process of it is in its network namespace ${rec.netns} any more`);
      live.sandbox = { ns: { name: rec.netns.slice(NETNS_DIR.length + 1), path: rec.netns, fd } };
      adoptNetns(rec.netns, fd);
      crashPoint("adopt-after-netns");
    }
    // The namespace it shares is its owner's, adopted first (recoverOrphans' order).
    if (rec.joined) {
      try {
        live.joinedFd = openNetns(rec.joined.netns);
      } catch {} // its owner has ended: it is not started again (manage.ts, baseRuns)
    }
    if (rec.network && live.sandbox) {
      const fd = live.sandbox.ns.fd;
      inNetns(fd, removeDnsRedirect);
      live.resolver = startResolver(fd, { containerId: rec.id, upstream: upstreamServers(rec), supervised: true });
      crashPoint("adopt-after-resolver");
      live.releaseReaper = watchSetAside(fd, `container ${rec.name}`);
    }
    if (rec.network) live.releaseFirewall = holdFirewall(() => firewallOf(live.rec));
    if (rec.ports?.length) {
      try {
        live.reservations = reservePorts(rec.ports, rec.id, () => addressesOf(live.rec.endpoints?.[0]?.ips));
      } catch (e) {
        // Taken while nobody held it: the container's rules still send the port to it.
        warn(`container ${rec.name}: ${(e as Error).message} (its published port still reaches it; the host port is just not reserved)`);
      }
    }
    return live;
  } catch (e) {
    warn(`adopting container ${rec.name}: ${(e as Error).message}: releasing it`);
    releaseOrphan(rec, live);
    return undefined;
  }
}

/**
 * An fd on the container's own network namespace, through one of its processes: its first while
 * that lives, else any in its cgroup. A record without the namespace's identity (written by an
 * older tsnet) trusts only its first process, checked by start time after the open.
 */
function containerNetns(rec: ContainerRecord): number | undefined {
  const first = isSameProcess(rec.pid, rec.pidStart) ? [rec.pid!] : [];
  if (rec.netnsId) {
    for (const pid of [...first, ...(rec.cgroup ? cgroupPids(rec.cgroup) : [])]) {
      const fd = openNetnsOf(pid, rec.netnsId);
      if (fd !== undefined) return fd;
    }
    return undefined;
  }
  if (!first.length) return undefined;
  let identity: string;
  try {
    identity = readlinkSync(`/proc/${first[0]}/ns/net`);
  } catch {
    return undefined;
  }
  if (identity === ownNetnsIdentity()) return undefined;
  const fd = openNetnsOf(first[0]!, identity);
  if (fd !== undefined && !isSameProcess(rec.pid, rec.pidStart)) {
    close(fd);
    return undefined;
  }
  return fd;
}

/**
 * Follows an adopted container to its end: the last process leaving its cgroup (one inotify
 * watch on cgroup.events). Its first process is not this process's child, so its own exit
 * status cannot be waited for: the run's status is 128+N when it was stopped through tsnet with
 * signal N, else unknown (UNKNOWN_EXIT_CODE).
 */
export function followAdopted(live: Live): Running {
  const cgroup = live.rec.cgroup!;
  const route = new SignalRoute(live.rec.pid ?? 0, cgroup);
  // Signals go to every process: the first may be gone, and its pid is not this process's to trust.
  route.firstAlive = false;
  const ended = whenEmpty(cgroup).then(() => {
    const sig = loadRecord(live.rec.id)?.stopSignal;
    return sig === undefined ? UNKNOWN_EXIT_CODE : 128 + sig;
  });
  return { route, ended };
}

/** The container --network container:REF joins, its namespace, and the container that made it. */
export function resolveJoin(ref: string): { id: string; netns: string; owner: string } {
  const target = findContainer(ref);
  if (!target) throw new TsnetError(`no such container: "${ref}" (see tsnet ps)`, 125);
  const netns = target.netns ?? target.joined?.netns;
  if (target.status !== "running" || !containerAlive(target)) {
    throw new TsnetError(`cannot join container "${target.name}": it is not running`, 125);
  }
  if (!netns) throw new UsageError(`cannot join container "${target.name}": it uses the host's network (use --network host)`);
  return { id: target.id, netns, owner: target.joined?.id ?? target.id };
}

/**
 * Whether a container joined to rec's namespace (--network container:) still lives in it, so the
 * namespace outlives rec. When the marks cannot be read, true: deleting the veth is slower than
 * leaving it to the namespace, never wrong.
 */
export function namespaceOutlives(rec: ContainerRecord): boolean {
  if (rec.netns === undefined) return false;
  try {
    return joinersOf(rec.id).some((j) => {
      const r = loadRecord(j);
      return r !== undefined && containerAlive(r);
    });
  } catch {
    return true;
  }
}

/** Starts the command with the given stdio, inside the container's namespace if it has one. */
export type Stdio = ["inherit" | "ignore" | number, "inherit" | "ignore" | number, "inherit" | "ignore" | number];

export interface SpawnExtras {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** The cgroup the command is born in. */
  cgroup?: string;
  /** -u: the user and group it runs as (Bun.spawn sets them, and clears supplementary groups). */
  uid?: number;
  gid?: number;
  /** -t: a pseudo-terminal as its stdin, stdout, stderr and controlling terminal, instead of stdio. */
  terminal?: Bun.TerminalOptions;
}

/** Starts the container's command: in its namespace and cgroup, in a session of its own. */
export function spawnIn(live: Live, command: string[], stdio: Stdio, extras: SpawnExtras = {}): Bun.Subprocess {
  const rec = live.rec;
  let ns: NamespaceChoice = {};
  // A network namespace of its own gets a /sys of its own too (its links, MACs, MTUs); joiners
  // share the owner's through its mount namespace, and --network host keeps the host's.
  if (rec.mode === "bridge" || rec.mode === "none") ns = { private: { ...writeEtcFiles(rec), sysfs: true } };
  else if (rec.joined) ns = { joinPid: livePidOf(rec.joined.id) };
  mark("etc");
  return spawnInNamespace(live.sandbox?.ns.fd ?? live.joinedFd, command, stdio, { ...extras, cgroup: rec.cgroup }, ns);
}

/** Where a command's mount and UTS namespaces come from: fresh ones with the container's files, or a live process's. */
export interface NamespaceChoice {
  private?: PrivateFiles;
  joinPid?: number;
}

/** A live process of the container, to join its mount and UTS namespaces (exec, container: mode). */
export function livePidOf(id: string): number | undefined {
  const rec = loadRecord(id);
  if (!rec) return undefined;
  if (isSameProcess(rec.pid, rec.pidStart)) return rec.pid;
  return rec.cgroup ? cgroupPids(rec.cgroup)[0] : undefined;
}

// The working directory tsnet was started in, given to children explicitly: inside a window the
// JS thread's cwd is the namespace's root (src/netns/private.ts restores it only on the way back).
const START_CWD = process.cwd();

/**
 * Starts a command in the namespace behind fd (the host's when undefined), leading a session and
 * process group of its own (setsid): the terminal's signals then reach only tsnet, which forwards
 * each exactly once (src/container/proc.ts). Its stdio may still be the terminal: a tty that is
 * not the controlling one reads and writes without job-control checks.
 */
export function spawnInNamespace(fd: number | undefined, command: string[], stdio: Stdio, extras: SpawnExtras = {}, ns: NamespaceChoice = {}): Bun.Subprocess {
  const start = () => {
    // With a terminal, Bun's child calls setsid itself and then TIOCSCTTY on the pty's slave:
    // the command leads a session whose controlling terminal that is (job control works).
    mark("mounts");
    const child = spawnChild(command, {
      env: extras.env, cwd: extras.cwd ?? START_CWD, detached: true, cgroup: extras.cgroup,
      ...(extras.terminal ? { terminal: extras.terminal } : { stdio }),
      ...(extras.uid !== undefined && { uid: extras.uid, gid: extras.gid }),
    });
    crashPoint("after-spawn");
    return child;
  };
  const withMounts = () => {
    if (ns.private) return inPrivateNamespaces(ns.private, start);
    if (ns.joinPid !== undefined) return inNamespacesOf(ns.joinPid, start);
    return start();
  };
  try {
    // Bun.spawn forks on the calling thread, so the child is born in that thread's namespaces.
    return fd === undefined ? withMounts() : inNetns(fd, withMounts);
  } catch (e) {
    const { code, syscall } = e as NodeJS.ErrnoException;
    // Joining the cgroup happens between fork and exec, and fails as open or clone3.
    if (extras.cgroup && (syscall === "open" || syscall === "clone3")) {
      throw new TsnetError(`cannot start "${command[0]}" in cgroup ${extras.cgroup}: ${code}`);
    }
    if (code === "ENOENT" && extras.cwd && !existsSync(extras.cwd)) throw new TsnetError(`cannot run "${command[0]}": its working directory ${extras.cwd} does not exist`);
    if (code === "ENOENT") throw new TsnetError(`cannot run "${command[0]}": executable file not found in $PATH`, 127);
    if (code === "EACCES" || code === "EISDIR" || code === "ENOEXEC") {
      throw new TsnetError(`cannot run "${command[0]}": permission denied (not an executable file)`, 126);
    }
    // Anything else the kernel refused (EMFILE for the child's pidfd, EAGAIN for its process)
    // is one line naming the command, as every other failure is.
    throw fsError(`start "${command[0]}"`, "", e);
  }
}

/** Releases everything the container holds; goes on past failures and reports them together. */
export function destroyContainer(live: Live): void {
  const c = new Cleanup();
  // The watch before the elements go, or it would put back what is being deleted.
  if (live.releaseFirewall) c.step(() => live.releaseFirewall!());
  // Before the namespace's fd closes: the watch uses it.
  if (live.releaseReaper) c.step(() => live.releaseReaper!());
  // Processes first: nothing the container started outlives it, whatever it did to its session.
  const cgroup = live.rec.cgroup;
  if (cgroup) c.step(() => removeCgroup(cgroup));
  // By key only what this process published: after a failed publish (a key another owner holds)
  // or a crash, the maps are searched for the container's tag instead.
  if (live.rec.ports?.length) c.step(() => unpublishPorts(portOwner(live.rec), live.published ? publishedFor(live.rec) : undefined));
  crashPoint("teardown-after-unpublish");
  // A container living in this one's namespace (--network container:) keeps the namespace, and
  // with it the veth and its address: those go now, so the address is free when its lease is.
  c.step(() => teardownSandbox(live.rec, live.sandbox, namespaceOutlives(live.rec)));
  if (live.joinedFd !== undefined) c.step(() => close(live.joinedFd!));
  if (live.rec.joined) c.step(() => unmarkJoiner(live.rec.id));
  c.step(() => releasePorts(live.reservations));
  if (live.resolver) c.step(() => live.resolver!.close());
  c.step(() => removeEtcFiles(live.rec.id));
  c.done();
}

/** The network `run --network NAME` attaches to; an unknown one is a run error (125). */
function findRunNetwork(ref: string, readOnly = false): NetworkRecord {
  // The common case reads one record; the built-in ones are written on first need.
  const net = findNetwork(ref) ?? findNetwork(ref, readOnly ? knownNetworks() : allNetworks());
  if (!net) throw new TsnetError(`network ${ref} not found: create it with tsnet network create ${ref}, or see tsnet network ls`);
  if (net.driver !== "bridge") throw new UsageError(`network ${net.name} is the ${net.driver} network: use --network ${net.name === "none" ? "none" : "host"}`);
  return net;
}

/** A container's published ports are tagged with its short id and named after it. */
export function portOwner(rec: ContainerRecord): { tag: string; name: string } {
  return { tag: rec.id.slice(0, 12), name: rec.name };
}

/** What a restore must put back for the container: its published ports. */
export function firewallOf(rec: ContainerRecord): OwnedPorts | undefined {
  return rec.ports?.length ? { owner: portOwner(rec), ports: publishedFor(rec) } : undefined;
}

/** The record's ports aimed at its first endpoint's addresses (eth0's, both families). */
export function publishedFor(rec: ContainerRecord): AimedPort[] {
  return aimedAt(rec.ports, rec.endpoints?.[0]?.ips);
}

/**
 * Whether any process of the container lives: its cgroup is populated (without one, its first
 * process lives). The record alone cannot say: its manager may have died.
 */
export function containerAlive(rec: ContainerRecord): boolean {
  if (rec.status !== "running") return false;
  if (rec.cgroup && isPopulated(rec.cgroup)) return true;
  return isSameProcess(rec.pid, rec.pidStart);
}
