// Network records: ${STATE_DIR}/networks/ID.json, one per network, written atomically. A record
// is the definition (name, bridge, subnets, options); the kernel objects it describes are made
// from it on first use, so a record survives a reboot and its network comes back as it was.
// There are few networks, so lookups by name simply read them all.
import { readdirSync } from "node:fs";
import { TsnetError } from "../errors/errors.ts";
import { ensureDir, fsError, readText, removeFile, trustDir, writeAtomic } from "./files.ts";
import { ID_RE, NETWORKS_DIR } from "./paths.ts";

/** Docker's driver names: "null" is the network of `--network none`. */
export type Driver = "bridge" | "host" | "null";

export interface SubnetConfig {
  /** "10.77.0.0/16"; the family is the address's own (IPv6 subnets need no other field). */
  subnet: string;
  gateway: string;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: Driver;
  /** The Linux bridge of a bridge network. */
  bridge?: string;
  subnets: SubnetConfig[];
  /** No way out: no masquerade, no forwarding beyond its bridge, no published ports. */
  internal: boolean;
  /** bridge, host and none: made by tsnet, never removed. */
  builtin: boolean;
  created: string;
  /** When its bridge was first made (TSNET_BRIDGE_SUBNET seeds the default network until then). */
  madeAt?: string;
  labels: Record<string, string>;
}

export const BUILTIN_NETWORKS = ["bridge", "host", "none"] as const;

const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export function checkNetworkName(name: string): void {
  if (!NETWORK_NAME_RE.test(name)) {
    throw new TsnetError(`invalid network name "${name}": use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
}

function networkPath(id: string): string {
  if (!ID_RE.test(id)) throw new Error(`not a network id: ${JSON.stringify(id)}`);
  return `${NETWORKS_DIR}/${id}.json`;
}

export function saveNetwork(n: NetworkRecord): void {
  ensureDir(NETWORKS_DIR);
  writeAtomic(networkPath(n.id), `${JSON.stringify(n, null, 2)}\n`);
}

export function deleteNetworkRecord(n: NetworkRecord): void {
  removeFile(networkPath(n.id));
}

export function loadNetwork(id: string): NetworkRecord | undefined {
  if (!ID_RE.test(id)) return undefined;
  const path = networkPath(id);
  const text = readText(path);
  if (text === undefined) return undefined;
  let n: unknown;
  try {
    n = JSON.parse(text);
  } catch {
    throw notANetwork(path, "it is not JSON");
  }
  const bad = badField(n, id);
  if (bad) throw notANetwork(path, `its field ${bad} is not one tsnet writes`);
  return n as NetworkRecord;
}

function notANetwork(path: string, why: string): TsnetError {
  return new TsnetError(`refusing ${path}: not a network record of tsnet's (${why}): remove it`);
}

/**
 * The first field tsnet would never have written, or undefined. `network rm` deletes the bridge a
 * record names, so it must be one of tsnet's: tsnet0, or tsnet- and 9 hex digits of the id.
 */
function badField(v: unknown, id: string): string | undefined {
  if (typeof v !== "object" || v === null) return "(the whole record)";
  const n = v as Record<string, any>;
  if (n.id !== id) return "id";
  if (typeof n.name !== "string" || !NETWORK_NAME_RE.test(n.name)) return "name";
  if (!["bridge", "host", "null"].includes(n.driver)) return "driver";
  if (n.bridge !== undefined && (typeof n.bridge !== "string" || !/^tsnet(0|-[0-9a-f]{9})$/.test(n.bridge))) return "bridge";
  if (!Array.isArray(n.subnets) || !n.subnets.every((s: any) => typeof s?.subnet === "string" && typeof s?.gateway === "string")) return "subnets";
  return undefined;
}

export function listNetworks(): NetworkRecord[] {
  if (!trustDir(NETWORKS_DIR)) return [];
  let files: string[];
  try {
    files = readdirSync(NETWORKS_DIR);
  } catch (e) {
    throw fsError("read directory", NETWORKS_DIR, e);
  }
  const out: NetworkRecord[] = [];
  for (const f of files) {
    const m = /^([0-9a-f]{64})\.json$/.exec(f);
    const n = m ? loadNetwork(m[1]!) : undefined;
    if (n) out.push(n);
  }
  return out.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
}

/** A network by name, full id or unique id prefix, as Docker resolves references. */
export function findNetwork(ref: string, all = listNetworks()): NetworkRecord | undefined {
  const byName = all.find((n) => n.name === ref);
  if (byName) return byName;
  if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
  const hits = all.filter((n) => n.id.startsWith(ref));
  if (hits.length > 1) throw new TsnetError(`"${ref}" matches ${hits.length} networks: give more of the id or the name`, 1);
  return hits[0];
}
