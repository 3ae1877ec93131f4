// Container records: /run/tsnet/containers/ID.json, written atomically, plus a name index
// /run/tsnet/names/NAME holding the id (created O_EXCL, so a name is taken exactly once).
// The record lists every kernel object the container owns, written before the object is made,
// so teardown (normal, after a failure, or after a crash) knows what to remove.
import { RefusedStateError, TsnetError, UsageError } from "../errors/errors.ts";
import { createExclusive, ensureDir, fsError, readText, removeFile, trustDir, withLock, writeAtomic } from "./files.ts";
import { checkOwnedFile } from "./owned.ts";
import { CONTAINERS_DIR, ID_RE, LOCKS_DIR, NAMES_DIR, NETNS_DIR, checkedId, logPaths, runSpecPath } from "./paths.ts";

import { closeSync, namesEndingIn, openDirSync, readSmallAt } from "../../ffi/fs.ts";
import { portToJson, portsFromJson, type PublishedPort } from "../ip/port.ts";

/** "container" joins another container's namespace (`--network container:NAME`). */
export type NetworkMode = "none" | "host" | "bridge" | "container";

/** One address of an endpoint, as text ("10.77.0.2"): its family is the text's own. */
export interface EndpointIp {
  address: string;
  prefix: number;
  gateway?: string;
}

/** A container's attachment to one bridge network: a veth pair and its leased addresses. */
export interface Endpoint {
  networkId: string;
  /** The network's name when attached (for display; the id is what counts). */
  network: string;
  bridge: string;
  /** The host end of the veth pair. */
  hostVeth: string;
  /** The container end: eth0, eth1, ... */
  ifname: string;
  mac: string;
  ips: EndpointIp[];
  /** Extra DNS names on this network (--network-alias). */
  aliases: string[];
  /** The default route goes elsewhere (an earlier network), or nowhere (an internal network). */
  noDefaultRoute?: boolean;
  /** The same for the IPv6 default route of a dual-stack network's endpoint. */
  noDefaultRoute6?: boolean;
  /** Routes made besides the default one (a CNI IPAM plugin's), "10.1.0.0/16" via gw. */
  routes?: { dst: string; gw?: string }[];
  /** false while the veth is being made: a link of that name that exists then is not ours. */
  vethMade?: boolean;
}

/** `--restart`: Docker's policies; max is on-failure's retry limit (0: none). */
export interface RestartPolicy {
  name: "no" | "on-failure" | "always" | "unless-stopped";
  max: number;
}

/** What `run` was told beyond the network, shown by inspect (Config, HostConfig) and ps --filter. */
export interface RunConfig {
  /** --label KEY=VALUE */
  labels?: Record<string, string>;
  /** What -e and --env-file set, NAME=VALUE (the rest of the environment is the caller's). */
  env?: string[];
  /** -w, resolved to an absolute path. */
  workdir?: string;
  /** -u as given. */
  user?: string;
  restart?: RestartPolicy;
  /** -t: the command has a pseudo-terminal, and the container ends with its first process. */
  tty?: boolean;
  /** -i: stdin is attached (else the command reads /dev/null). */
  interactive?: boolean;
}

export interface ContainerRecord {
  id: string;
  name: string;
  command: string[];
  created: string;
  mode: NetworkMode;
  /** restarting: its last process has ended and its manager starts it again after a delay (--restart). */
  status: "created" | "running" | "restarting" | "exited";
  /** The process managing it (src/state/managers.ts): a foreground run, or the supervisor. */
  manager?: string;
  /** The last signal `tsnet stop`/`kill`/`rm -f` sent it (decides the exit status once its first process has exited). */
  stopSignal?: number;
  pid?: number;
  /** Start time of pid (see src/container/proc.ts), so a recycled pid is never signalled. */
  pidStart?: number;
  /** Started with -d: managed by the supervisor. */
  detached?: boolean;
  /**
   * The container's cgroup (v2), recorded before it is made; every process of the container is
   * in it. Absent where there is no cgroup v2: the container is then its first process's group.
   */
  cgroup?: string;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  autoRemove: boolean;
  /** Persisted namespace path (SandboxKey), when the container has its own. */
  netns?: string;
  /**
   * Its identity as /proc names it ("net:[4026532000]"): a supervisor adopting the container
   * after its manager died finds the namespace again through a process of the container that is
   * in this one (the manager's fd, which the link named, is gone).
   */
  netnsId?: string;
  /** With mode "container": the id and namespace path of the container whose network is shared. */
  joined?: { id: string; netns: string };
  /** Bridge networks the container is attached to, in attachment order (eth0 first). */
  endpoints?: Endpoint[];
  /** The network it was started on (--network), kept once its endpoints are gone (Docker's HostConfig.NetworkMode). */
  network?: { name: string; id: string };
  /** Published ports, host ports resolved. */
  ports?: PublishedPort[];
  /** Exposed container ports (--expose, -p's container ports are not listed): "80/tcp". */
  exposed?: string[];
  /** -h/--hostname (the first 12 hex digits of the id when absent, as in Docker). */
  hostname?: string;
  /** --dns: nameservers the container's resolver forwards to instead of the host's. */
  dns?: string[];
  /** --dns-search */
  dnsSearch?: string[];
  /** --add-host, host-gateway resolved. */
  extraHosts?: { name: string; address: string }[];
  config?: RunConfig;
  /** How many times the restart policy started it again. */
  restartCount?: number;
  /** Stopped by hand (stop, rm -f, kill with KILL or TERM): no restart policy brings it back. */
  stopped?: boolean;
  /** `tsnet restart` asked its manager to start it again once it has ended. */
  restartRequested?: boolean;
}

export function newId(): string {
  const b = new Uint8Array(32);
  crypto.getRandomValues(b);
  return Buffer.from(b).toString("hex");
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new UsageError(
      `invalid container name "${name}": use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
  }
}

const ADJECTIVES = ["brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty", "quiet", "sharp", "tender", "vivid", "witty", "zen", "bold", "clever", "proud"];
const NOUNS = ["turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "dijkstra", "cerf", "kahn", "postel", "metcalfe", "perlman", "baran", "davies", "pouzin", "floyd", "jacobson", "clark", "mockapetris"];

function pick<T>(xs: T[]): T {
  return xs[Math.floor(Math.random() * xs.length)]!;
}

/**
 * Reserves a name for the record: the requested one, or a generated one retried until free. The
 * record names it (saved) before the reservation is made, so a crash in between leaves nothing
 * that its recovery cannot release (releaseName checks the reservation holds this id).
 */
export function reserveName(rec: ContainerRecord, requested: string | undefined): void {
  ensureDir(NAMES_DIR);
  if (requested !== undefined) {
    checkName(requested);
    rec.name = requested;
    saveRecord(rec);
    // A container started again (tsnet restart) keeps the name it already holds.
    if (!createExclusive(`${NAMES_DIR}/${requested}`, rec.id) && readText(`${NAMES_DIR}/${requested}`) !== rec.id) {
      rec.name = "";
      const holder = readText(`${NAMES_DIR}/${requested}`)?.slice(0, 12) ?? "another container";
      throw new TsnetError(`the container name "${requested}" is already in use by ${holder}: choose another --name or remove that container`);
    }
    return;
  }
  // 400 plain names: after three taken ones a random number is added (as Docker adds a digit), so
  // a name costs a try or two however many containers run (at 1,000, fifty tries of plain names,
  // each a record write, cost 3 ms of every run).
  for (let i = 0; ; i++) {
    rec.name = madeUpName(i);
    saveRecord(rec);
    if (createExclusive(`${NAMES_DIR}/${rec.name}`, rec.id)) return;
  }
}

/** The i-th try at a made-up name: adjective_scientist, with a random number after three tries. */
function madeUpName(i: number): string {
  const plain = `${pick(ADJECTIVES)}_${pick(NOUNS)}`;
  return i < 3 ? plain : `${plain}_${Math.floor(Math.random() * 100_000)}`;
}

/**
 * The name reserveName would give, reserving nothing (`tsnet explain run`): the requested one,
 * checked and refused as reserveName refuses it when taken, or a made-up one that is free now.
 */
export function proposeName(requested: string | undefined): string {
  if (requested !== undefined) {
    checkName(requested);
    const holder = readText(`${NAMES_DIR}/${requested}`);
    if (holder !== undefined) {
      throw new TsnetError(`the container name "${requested}" is already in use by ${holder.slice(0, 12)}: choose another --name or remove that container`);
    }
    return requested;
  }
  for (let i = 0; ; i++) {
    const name = madeUpName(i);
    if (readText(`${NAMES_DIR}/${name}`) === undefined) return name;
  }
}

export function releaseName(name: string, id: string): void {
  if (!name || !NAME_RE.test(name)) return; // not reserved yet
  const path = `${NAMES_DIR}/${name}`;
  if (readText(path) === id) removeFile(path);
}

export function saveRecord(r: ContainerRecord): void {
  ensureDir(CONTAINERS_DIR);
  // Addresses are written as text (an IpAddress holds a bigint, which JSON cannot).
  const json = r.ports ? { ...r, ports: r.ports.map(portToJson) } : r;
  writeAtomic(`${CONTAINERS_DIR}/${checkedId(r.id)}.json`, JSON.stringify(json));
}

/** The record of a full id; undefined for anything that is not one, never a path. */
export function loadRecord(id: string, text?: string): ContainerRecord | undefined {
  if (!ID_RE.test(id)) return undefined;
  const path = `${CONTAINERS_DIR}/${id}.json`;
  text ??= readText(path);
  if (text === undefined) return undefined;
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw notARecord(path, "it is not JSON");
  }
  const bad = badField(r, id);
  if (bad) throw notARecord(path, `its field ${bad} is not one tsnet writes`);
  const rec = r as ContainerRecord;
  // Into the port model (records written before IPv6 hold a numeric hostIp: still read).
  if (rec.ports !== undefined) rec.ports = portsFromJson(rec.ports)!;
  return rec;
}

function notARecord(path: string, why: string): RefusedStateError {
  return new RefusedStateError(`refusing ${path}: not a container record of tsnet's (${why}): remove it`);
}

const NETNS_RE = new RegExp(`^${NETNS_DIR}/[A-Za-z0-9][A-Za-z0-9_.-]*$`);
const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const VETH_SUFFIX_RE = /^(-[0-9]+)?$/;
const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");

/**
 * The first field of a record that tsnet would never have written, or undefined. Everything that
 * becomes a path, a link name, a cgroup or a signal's target is held to the form tsnet gives it:
 * a record, however it got there, can only name a container's own objects.
 */
function badField(v: unknown, id: string): string | undefined {
  if (typeof v !== "object" || v === null) return "(the whole record)";
  const r = v as Record<string, any>;
  if (r.id !== id) return "id";
  if (typeof r.name !== "string" || (r.name !== "" && !NAME_RE.test(r.name))) return "name";
  if (!isStrings(r.command)) return "command";
  if (!["none", "host", "bridge", "container"].includes(r.mode)) return "mode";
  if (!["created", "running", "restarting", "exited"].includes(r.status)) return "status";
  // pid 1 would make kill(-pid) every process.
  if (r.pid !== undefined && !isInt(r.pid, 2)) return "pid";
  if (r.pidStart !== undefined && !isInt(r.pidStart, 0)) return "pidStart";
  if (r.manager !== undefined && (typeof r.manager !== "string" || !/^\d+-\d+$/.test(r.manager))) return "manager";
  if (r.stopSignal !== undefined && !isInt(r.stopSignal, 1, 64)) return "stopSignal";
  if (r.netns !== undefined && (typeof r.netns !== "string" || !NETNS_RE.test(r.netns))) return "netns";
  if (r.netnsId !== undefined && (typeof r.netnsId !== "string" || !/^net:\[\d+\]$/.test(r.netnsId))) return "netnsId";
  if (r.joined !== undefined) {
    if (typeof r.joined !== "object" || r.joined === null || !ID_RE.test(r.joined.id) || typeof r.joined.netns !== "string" || !NETNS_RE.test(r.joined.netns)) return "joined";
  }
  // <cgroup2 mount>/<parent>/<id>: absolute, no "." or ".." anywhere, ending in its own id.
  if (r.cgroup !== undefined) {
    const parts = typeof r.cgroup === "string" ? r.cgroup.split("/") : [];
    if (parts[0] !== "" || parts.at(-1) !== id || parts.slice(1).some((p) => p === "" || p === "." || p === "..")) return "cgroup";
  }
  if (r.endpoints !== undefined) {
    if (!Array.isArray(r.endpoints)) return "endpoints";
    for (const e of r.endpoints) {
      if (typeof e !== "object" || e === null || !ID_RE.test(e.networkId)) return "endpoints.networkId";
      // The host end is named after the container's id (src/network/sandbox.ts).
      if (typeof e.hostVeth !== "string" || !e.hostVeth.startsWith(`veth${id.slice(0, 7)}`) || !VETH_SUFFIX_RE.test(e.hostVeth.slice(11))) return "endpoints.hostVeth";
      if (typeof e.ifname !== "string" || !/^eth[0-9]+$/.test(e.ifname)) return "endpoints.ifname";
      if (typeof e.bridge !== "string" || !IFNAME_RE.test(e.bridge)) return "endpoints.bridge";
      if (!Array.isArray(e.ips) || !e.ips.every((i: any) => typeof i?.address === "string" && isInt(i.prefix, 0, 128))) return "endpoints.ips";
    }
  }
  if (r.ports !== undefined && portsFromJson(r.ports) === undefined) return "ports";
  if (r.exposed !== undefined && !(isStrings(r.exposed) && r.exposed.every((x: string) => /^\d{1,5}\/(tcp|udp)$/.test(x)))) return "exposed";
  return undefined;
}

export function listRecords(): ContainerRecord[] {
  if (!trustDir(CONTAINERS_DIR)) return [];
  // The directory is trusted (root's alone, checked above), so it is listed and each record read
  // through one directory fd: one openat, fstat, pread and close per record (`ps` reads thousands).
  let dirfd: number;
  let files: string[];
  try {
    dirfd = openDirSync(CONTAINERS_DIR);
  } catch (e) {
    throw fsError("read directory", CONTAINERS_DIR, e);
  }
  const out: ContainerRecord[] = [];
  const decoder = new TextDecoder();
  try {
    try {
      files = namesEndingIn(dirfd, ".json", CONTAINERS_DIR);
    } catch (e) {
      throw fsError("read directory", CONTAINERS_DIR, e);
    }
    for (const f of files) {
      let n: number | undefined | null;
      try {
        // Checked as every state file is (root's, a regular file, not writable by others) before
        // a byte of it is believed: recovery acts on what records say.
        n = readSmallAt(dirfd, f, LIST_BUF, (st) => checkOwnedFile(`${CONTAINERS_DIR}/${f}`, st));
      } catch (e) {
        if (e instanceof TsnetError) throw e;
        throw fsError("read", `${CONTAINERS_DIR}/${f}`, e);
      }
      if (n === undefined) continue; // removed meanwhile
      // A record too large for the buffer (a command line of thousands of words) is read whole.
      const r = loadRecord(f.slice(0, -5), n === null ? undefined : decoder.decode(LIST_BUF.subarray(0, n)));
      if (r) out.push(r);
    }
  } finally {
    closeSync(dirfd);
  }
  return out;
}

const LIST_BUF = new Uint8Array(256 * 1024);

/**
 * Whether ref can name a container at all: a name (as --name accepts them) or a prefix of an id.
 * Anything else (a path, a newline, 300 characters) names none, and never reaches a path.
 */
export function isContainerRef(ref: string): boolean {
  return NAME_RE.test(ref) || /^[0-9a-f]{1,64}$/.test(ref);
}

/** A container by name, full id or unique id prefix, as Docker resolves references. */
export function findContainer(ref: string): ContainerRecord | undefined {
  if (!isContainerRef(ref)) return undefined;
  const byName = NAME_RE.test(ref) ? readText(`${NAMES_DIR}/${ref}`) : undefined;
  if (byName !== undefined && ID_RE.test(byName)) {
    const r = loadRecord(byName);
    if (r) return r;
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
  const hits = listRecords().filter((r) => r.id.startsWith(ref));
  // Exit 1, as for no such container: the reference is well formed, the objects are the problem
  // (Docker's "multiple IDs found with provided prefix" exits 1 from every command).
  if (hits.length > 1) throw new TsnetError(`"${ref}" matches ${hits.length} containers: give more of the id or the name`, 1);
  return hits[0];
}

/**
 * Serialises read-modify-write of one record between the container's manager and commands that
 * change a running container (network connect/disconnect).
 */
export function withRecordLock<T>(id: string, fn: () => T): T {
  return withLock(containerLock(id), fn);
}

/** The name of a container's lock (src/state/files.ts withLock/takeLock). */
export function containerLock(id: string): string {
  return `container-${checkedId(id).slice(0, 12)}`;
}

export function deleteRecord(r: ContainerRecord): void {
  removeFile(`${CONTAINERS_DIR}/${checkedId(r.id)}.json`);
  // Whoever waits on this lock finds no record once it gets it, and gives up.
  removeFile(`${LOCKS_DIR}/container-${r.id.slice(0, 12)}.lock`);
  releaseName(r.name, r.id);
}

/**
 * Forgets a container for good (rm, --rm): its record, and with it its log and what it was
 * started with, so that `run -d --rm` leaves no file behind. (deleteRecord alone keeps them: a
 * failed `tsnet restart` puts the record back.)
 */
export function forgetContainer(r: ContainerRecord): void {
  deleteRecord(r);
  const logs = logPaths(r.id);
  for (const path of [logs.stdout, logs.stderr, logs.times, runSpecPath(r.id)]) removeFile(path);
}
