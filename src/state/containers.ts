// Container records: /run/tsnet/containers/ID.json, written atomically, plus a name index
// /run/tsnet/names/NAME holding the id (created O_EXCL, so a name is taken exactly once).
// The record lists every kernel object the container owns, written before the object is made,
// so teardown (normal, after a failure, or after a crash) knows what to remove.
import { TsnetError, UsageError } from "../errors/errors.ts";
import { createExclusive, ensureDir, readText, removeFile, writeAtomic } from "./files.ts";
import { CONTAINERS_DIR, NAMES_DIR } from "./paths.ts";

import { readdirSync } from "node:fs";
import type { PortMapping } from "../network/ports.ts";

/** "container" joins another container's namespace (`--network container:NAME`). */
export type NetworkMode = "none" | "host" | "bridge" | "container";

export interface Endpoint {
  network: string;
  bridge: string;
  hostVeth: string;
  ifname: string;
  address: number;
  prefix: number;
  gateway: number;
  mac: string;
}

export interface ContainerRecord {
  id: string;
  name: string;
  command: string[];
  created: string;
  mode: NetworkMode;
  status: "created" | "running" | "exited";
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
  /** With mode "container": the id and namespace path of the container whose network is shared. */
  joined?: { id: string; netns: string };
  endpoint?: Endpoint;
  /** Published ports, host ports resolved. */
  ports?: PortMapping[];
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

/** Reserves the name for id; a generated name is retried until one is free. */
export function reserveName(requested: string | undefined, id: string): string {
  ensureDir(NAMES_DIR);
  if (requested !== undefined) {
    checkName(requested);
    if (!createExclusive(`${NAMES_DIR}/${requested}`, id)) {
      const holder = readText(`${NAMES_DIR}/${requested}`)?.slice(0, 12) ?? "another container";
      throw new TsnetError(`the container name "${requested}" is already in use by ${holder}: choose another --name or remove that container`);
    }
    return requested;
  }
  for (let i = 0; ; i++) {
    const name = i < 50 ? `${pick(ADJECTIVES)}_${pick(NOUNS)}` : `${pick(ADJECTIVES)}_${pick(NOUNS)}_${i}`;
    if (createExclusive(`${NAMES_DIR}/${name}`, id)) return name;
  }
}

export function releaseName(name: string, id: string): void {
  if (!name) return; // not reserved yet
  const path = `${NAMES_DIR}/${name}`;
  if (readText(path) === id) removeFile(path);
}

export function saveRecord(r: ContainerRecord): void {
  ensureDir(CONTAINERS_DIR);
  writeAtomic(`${CONTAINERS_DIR}/${r.id}.json`, JSON.stringify(r));
}

export function loadRecord(id: string): ContainerRecord | undefined {
  const text = readText(`${CONTAINERS_DIR}/${id}.json`);
  return text === undefined ? undefined : (JSON.parse(text) as ContainerRecord);
}

export function listRecords(): ContainerRecord[] {
  let files: string[];
  try {
    files = readdirSync(CONTAINERS_DIR);
  } catch {
    return [];
  }
  const out: ContainerRecord[] = [];
  for (const f of files) {
    if (!f.endsWith(".json")) continue;
    const r = loadRecord(f.slice(0, -5));
    if (r) out.push(r);
  }
  return out;
}

/** A container by name, full id or unique id prefix, as Docker resolves references. */
export function findContainer(ref: string): ContainerRecord | undefined {
  const byName = readText(`${NAMES_DIR}/${ref}`);
  if (byName !== undefined && /^[0-9a-f]{64}$/.test(byName)) {
    const r = loadRecord(byName);
    if (r) return r;
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
  const hits = listRecords().filter((r) => r.id.startsWith(ref));
  if (hits.length > 1) throw new UsageError(`"${ref}" matches ${hits.length} containers: give more of the id or the name`);
  return hits[0];
}

export function deleteRecord(r: ContainerRecord): void {
  removeFile(`${CONTAINERS_DIR}/${r.id}.json`);
  releaseName(r.name, r.id);
}
