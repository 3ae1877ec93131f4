// One container's life, shared by every command that starts or ends one: create (record, name,
// port reservations, sandbox, published ports), spawn the command inside, destroy. Each step of
// create is undone by destroy, which removes whatever the record names and tolerates what is
// already gone, so the same code serves a failed setup, a normal exit and a crashed run.
import { Cleanup, TsnetError, UsageError } from "../errors/errors.ts";
import { parseMac } from "../network/bridge.ts";
import { publishPorts, unpublishPorts } from "../nat/portmap.ts";
import { inNetns, openNetns } from "../netns/netns.ts";
import { allNetworks, natNetworks } from "../network/networks.ts";
import { holdFirewall, type OwnedPorts } from "../network/firewall.ts";
import { findNetwork, type NetworkRecord } from "../state/networks.ts";
import { attachEndpoint, checkStaticIp, createSandbox, primaryAddress, teardownSandbox, type Sandbox } from "../network/sandbox.ts";
import type { PublishedPort } from "../nat/ruleset.ts";
import { parseIp, toV4, type IpAddress } from "../ip/addr.ts";
import { releasePorts, reservePorts, type Reservation } from "../network/reserve.ts";
import type { PortMapping } from "../network/ports.ts";
import { close } from "../../ffi/libc.ts";
import {
  deleteRecord, findContainer, loadRecord, newId, reserveName, saveRecord, withRecordLock, type ContainerRecord, type NetworkMode,
} from "../state/containers.ts";
import { dropLive, holdLive, orphanedContainers } from "../state/live.ts";
import { releaseLeasesOwnedBy } from "../state/leases.ts";
import { isSameProcess, signalCommand, startTime } from "./proc.ts";
import { removeEtcFiles, upstreamServers, writeEtcFiles } from "./etc.ts";
import { startResolver, type Resolver } from "../network/resolver.ts";
import { inPrivateNamespaces, inNamespacesOf, type PrivateFiles } from "../netns/private.ts";
import { warn } from "../errors/notice.ts";
import { crashPoint } from "../errors/crashpoint.ts";

export interface CreateOptions {
  mode: NetworkMode;
  /** With mode "bridge": the bridge network to attach to ("bridge", the default, or a user network). */
  network?: string;
  /** With mode "container": the name or id of the container whose namespace is joined. */
  join?: string;
  /** --ip, --mac-address, --network-alias for the network attached to. */
  ip?: string;
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
  publish: PortMapping[];
  /** Run under the supervisor (`run -d`). */
  detached?: boolean;
}

export interface Live {
  rec: ContainerRecord;
  /** The liveness lock (src/state/live.ts), held until the network is released. */
  liveFd: number;
  sandbox?: Sandbox;
  /** fd of a joined container's namespace. */
  joinedFd?: number;
  reservations: Reservation[];
  /** The container's DNS resolver, served by this process (the container's manager). */
  resolver?: Resolver;
  /** Ends this manager's watch over the container's rules (src/network/firewall.ts). */
  releaseFirewall?: () => void;
}

export function createContainer(o: CreateOptions): Live {
  // Everything that can be refused is refused before anything is made.
  const net = o.mode === "bridge" ? findRunNetwork(o.network ?? "bridge") : undefined;
  if (net) {
    if (net.internal && o.publish.length) throw new UsageError(`-p cannot be used on internal network ${net.name}: it has no way in from outside`);
    if (net.builtin && (o.ip !== undefined || o.aliases?.length)) {
      throw new UsageError(`${o.ip !== undefined ? "--ip" : "--network-alias"} is supported on user-defined networks only: create one with tsnet network create NAME`);
    }
    if (o.ip !== undefined) checkStaticIp(net, parseIp(o.ip)!);
  }
  const id = newId();
  const rec: ContainerRecord = {
    id,
    name: "",
    command: o.command,
    created: new Date().toISOString(),
    mode: o.mode,
    status: "created",
    autoRemove: o.rm,
    detached: o.detached === true,
    ...(o.hostname !== undefined && { hostname: o.hostname }),
    ...(o.dns?.length && { dns: o.dns }),
    ...(o.dnsSearch?.length && { dnsSearch: o.dnsSearch }),
  };
  if (o.join !== undefined) rec.joined = resolveJoin(o.join);
  // Lock, then record, then name: whatever a crash interrupts, a record with a dead lock says
  // what to undo.
  const live: Live = { rec, reservations: [], liveFd: holdLive(id) };
  try {
    // Subscribed before the network is touched, so no firewall reload from here on goes unseen.
    if (net) live.releaseFirewall = holdFirewall(() => firewallOf(live.rec));
    saveRecord(rec);
    rec.name = reserveName(o.name, id);
    saveRecord(rec);
    // Ports first: a port someone holds is refused before anything else is made.
    live.reservations = reservePorts(o.publish, id);
    if (live.reservations.length) rec.ports = live.reservations.map((r) => r.mapping);
    if (o.mode === "bridge" || o.mode === "none") live.sandbox = createSandbox(rec);
    if (net && live.sandbox) {
      live.resolver = startResolver(live.sandbox.ns.fd, { containerId: rec.id, upstream: upstreamServers(rec) });
      attachEndpoint(rec, net, live.sandbox.ns.fd, {
        ip: o.ip === undefined ? undefined : parseIp(o.ip),
        mac: o.mac === undefined ? undefined : parseMac(o.mac),
        aliases: o.aliases,
        hairpin: (rec.ports?.length ?? 0) > 0,
      });
    }
    if (o.extraHosts?.length) {
      const gw = rec.endpoints?.[0]?.ips[0]?.gateway;
      rec.extraHosts = o.extraHosts.map((h) => ({ name: h.name, address: h.address === "host-gateway" ? gw ?? "" : h.address }));
      saveRecord(rec);
    }
    if (rec.joined) live.joinedFd = openNetns(rec.joined.netns);
    if (rec.ports?.length) {
      saveRecord(rec);
      publishPorts(portOwner(rec), publishedFor(rec), natNetworks);
      crashPoint("after-publish");
    }
    return live;
  } catch (e) {
    try {
      destroyContainer(live);
    } catch (undo) {
      if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
    }
    deleteRecord(rec);
    dropLive(id, live.liveFd);
    throw e;
  }
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
}

/**
 * After the command has ended with `code`: releases the network, records the exit (or forgets
 * the container with --rm), and only then lets go of the liveness lock.
 */
export function finishContainer(live: Live, code: number): void {
  const rec = live.rec;
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
    if (rec.autoRemove) deleteRecord(rec);
    else saveRecord(rec);
    dropLive(rec.id, live.liveFd);
  }
}

/** Exit status of a container whose manager died: the command is killed, as by SIGKILL. */
export const CRASHED_EXIT_CODE = 137;

/**
 * Finds containers whose managing tsnet died (kill -9, a crash) and releases everything they
 * held: their command, veth, namespace, published ports, address and name (or record). Run by
 * every command before it reads or allocates anything, so a crash never blocks a name, an
 * address or a host port for long.
 */
export function recoverOrphans(): void {
  for (const { id, fd } of orphanedContainers()) {
    const rec = loadRecord(id);
    if (!rec || rec.status === "exited") {
      dropLive(id, fd);
      continue;
    }
    if (rec.pid !== undefined) signalCommand(rec.pid, rec.pidStart, rec.detached === true, 9);
    try {
      releaseLeasesOwnedBy(rec.id);
      finishContainer({ rec, reservations: [], liveFd: fd }, CRASHED_EXIT_CODE);
    } catch (e) {
      warn(`cleaning up after crashed container ${rec.name}: ${(e as Error).message}`);
    }
  }
}

function resolveJoin(ref: string): { id: string; netns: string } {
  const target = findContainer(ref);
  if (!target) throw new TsnetError(`no such container: "${ref}" (see tsnet ps)`, 125);
  const netns = target.netns ?? target.joined?.netns;
  if (target.status !== "running" || !isSameProcess(target.pid, target.pidStart)) {
    throw new TsnetError(`cannot join container "${target.name}": it is not running`, 125);
  }
  if (!netns) throw new UsageError(`cannot join container "${target.name}": it uses the host's network (use --network host)`);
  return { id: target.id, netns };
}

/** Starts the command with the given stdio, inside the container's namespace if it has one. */
export type Stdio = ["inherit" | "ignore" | number, "inherit" | "ignore" | number, "inherit" | "ignore" | number];

export interface SpawnExtras {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** A session and process group of its own (setsid), for detached containers. */
  detached?: boolean;
}

export function spawnIn(live: Live, command: string[], stdio: Stdio, extras: SpawnExtras = {}): Bun.Subprocess {
  const rec = live.rec;
  let ns: NamespaceChoice = {};
  if (rec.mode === "bridge" || rec.mode === "none") ns = { private: writeEtcFiles(rec) };
  else if (rec.joined) ns = { joinPid: livePidOf(rec.joined.id) };
  return spawnInNamespace(live.sandbox?.ns.fd ?? live.joinedFd, command, stdio, extras, ns);
}

/** Where a command's mount and UTS namespaces come from: fresh ones with the container's files, or a live process's. */
export interface NamespaceChoice {
  private?: PrivateFiles;
  joinPid?: number;
}

/** A live process of the container, to join its mount and UTS namespaces (exec, container: mode). */
export function livePidOf(id: string): number | undefined {
  const rec = loadRecord(id);
  return rec && isSameProcess(rec.pid, rec.pidStart) ? rec.pid : undefined;
}

// The working directory tsnet was started in: a mount-namespace window resets the JS thread's
// cwd to /, so children are always given it explicitly.
const START_CWD = process.cwd();

/** Starts a command in the namespace behind fd (the host's when undefined). */
export function spawnInNamespace(fd: number | undefined, command: string[], stdio: Stdio, extras: SpawnExtras = {}, ns: NamespaceChoice = {}): Bun.Subprocess {
  const start = () => Bun.spawn(command, { stdio, env: extras.env, cwd: extras.cwd ?? START_CWD, detached: extras.detached });
  const withMounts = () => {
    if (ns.private) return inPrivateNamespaces(ns.private, start);
    if (ns.joinPid !== undefined) return inNamespacesOf(ns.joinPid, start);
    return start();
  };
  try {
    // Bun.spawn forks on the calling thread, so the child is born in that thread's namespaces.
    return fd === undefined ? withMounts() : inNetns(fd, withMounts);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new TsnetError(`cannot run "${command[0]}": executable file not found in $PATH`, 127);
    if (code === "EACCES" || code === "EISDIR" || code === "ENOEXEC") {
      throw new TsnetError(`cannot run "${command[0]}": permission denied (not an executable file)`, 126);
    }
    throw e;
  }
}

/** Releases everything the container holds; goes on past failures and reports them together. */
export function destroyContainer(live: Live): void {
  const c = new Cleanup();
  // First, or the watch would put back the elements being deleted.
  if (live.releaseFirewall) c.step(() => live.releaseFirewall!());
  if (live.rec.ports?.length) c.step(() => unpublishPorts(portOwner(live.rec), publishedFor(live.rec)));
  crashPoint("teardown-after-unpublish");
  c.step(() => teardownSandbox(live.rec, live.sandbox));
  if (live.joinedFd !== undefined) c.step(() => close(live.joinedFd!));
  c.step(() => releasePorts(live.reservations));
  if (live.resolver) c.step(() => live.resolver!.close());
  c.step(() => removeEtcFiles(live.rec.id));
  c.done();
}

/** The network `run --network NAME` attaches to; an unknown one is a run error (125). */
function findRunNetwork(ref: string): NetworkRecord {
  const net = findNetwork(ref, allNetworks());
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

/** The record's port mappings aimed at its primary address (eth0's). */
export function publishedFor(rec: ContainerRecord): PublishedPort[] {
  const a = primaryAddress(rec);
  const address: IpAddress | undefined = a === undefined ? undefined : parseIp(a);
  if (!address || address.family !== 4) return [];
  return (rec.ports ?? []).map((m) => ({
    proto: m.proto,
    hostPort: m.hostPort,
    hostIp: m.hostIp === 0 ? undefined : m.hostIp,
    containerIp: toV4(address),
    containerPort: m.containerPort,
  }));
}
