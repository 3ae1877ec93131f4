// Network records: ${STATE_DIR}/networks/ID.json, one per network, written atomically. A record
// is the definition (name, bridge, subnets, options); the kernel objects it describes are made
// from it on first use, so a record survives a reboot and its network comes back as it was.
// There are few networks, so lookups by name simply read them all.
import { RefusedStateError, TsnetError } from "../errors/errors.ts";
import { createExclusive, ensureDir, listDir, readText, removeFile, writeAtomic } from "./files.ts";
import { ID_RE, NETWORKS_DIR, NETWORKS_RUN_DIR } from "./paths.ts";

/** Docker's driver names: "null" is the network of `--network none`. */
export type Driver = "bridge" | "host" | "null";

export interface SubnetConfig {
  /** "10.77.0.0/16"; the family is the address's own (IPv6 subnets need no other field). */
  subnet: string;
  gateway: string;
  /** `--ip-range`: containers lease addresses only inside this prefix of the subnet (`--ip` may go outside it). */
  ipRange?: string;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: Driver;
  /**
   * The Linux bridge of a bridge network: tsnet's own name (BRIDGE_RE), or any interface name given
   * by `-o com.docker.network.bridge.name` or a CNI configuration, which `network rm` deletes only
   * when tsnet made that bridge (bridgeMadeByTsnet).
   */
  bridge?: string;
  /** At most one IPv4 and one IPv6 subnet. */
  subnets: SubnetConfig[];
  /**
   * Dual stack (`network create --ipv6`): the network has an IPv6 subnet, its containers an IPv6
   * address each. Absent (false): IPv4 only, and its containers' interfaces have IPv6 turned off.
   */
  enableIPv6?: boolean;
  /** No way out: no masquerade, no forwarding beyond its bridge, no published ports. */
  internal: boolean;
  /** bridge, host and none: made by tsnet, never removed. */
  builtin: boolean;
  created: string;
  /** When its bridge was first made (TSNET_BRIDGE_SUBNET seeds the default network until then). */
  madeAt?: string;
  labels: Record<string, string>;
  // Options a CNI configuration can set (src/cni/config.ts); each is absent for tsnet's default,
  // so records written before they existed read as they always behaved.
  /** false: what leaves the host is not masqueraded (CNI `ipMasq`). Default true. */
  ipMasq?: boolean;
  /** MTU of both ends of every container's veth (CNI `mtu`). Default: the kernel's (1500). */
  mtu?: number;
  /**
   * Bridge ports in hairpin mode (CNI `hairpinMode`): true for every endpoint, false for none
   * (and no hairpin masquerade in the ruleset). Default: for endpoints that publish ports.
   */
  hairpin?: boolean;
  /**
   * false: the bridge holds no address and containers get no default route through it (CNI
   * `isGateway`), so the host neither routes for them nor reaches them. Default true.
   */
  isGateway?: boolean;
  // Docker's `-o` driver options (src/network/options.ts); each absent for Docker's default.
  /** false (enable_icc=false): containers of this network cannot reach each other. Default true. */
  icc?: boolean;
  /** The host address `-p` publishes on when it names none (host_binding_ipv4). */
  hostBindingIpv4?: string;
  /** Every `-o KEY=VALUE` as given, unknown keys too (Docker keeps them): `network inspect`'s Options. */
  options?: Record<string, string>;
}

export const BUILTIN_NETWORKS = ["bridge", "host", "none"] as const;

const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** A bridge of tsnet's: "tsnet" and up to 10 more characters (IFNAMSIZ allows 15). */
export const BRIDGE_RE = /^tsnet[a-zA-Z0-9_.-]{1,10}$/;
/** An interface name the kernel takes (at most 15 bytes, not "." or ".."), in a safe alphabet. */
export const IFNAME_RE = /^(?!\.\.?$)[a-zA-Z0-9_.-]{1,15}$/;

export function checkNetworkName(name: string): void {
  if (!NETWORK_NAME_RE.test(name)) {
    throw new TsnetError(`invalid network name "${name}": use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
}

// A record's file is NAME.ID.json: a lookup by name (what every `run --network NAME` does) reads
// the directory and one file, not every record.
const FILE_RE = /^([a-zA-Z0-9][a-zA-Z0-9_.-]{0,62})\.([0-9a-f]{64})\.json$/;

function networkPath(n: Pick<NetworkRecord, "id" | "name">): string {
  if (!ID_RE.test(n.id)) throw new Error(`not a network id: ${JSON.stringify(n.id)}`);
  if (!NETWORK_NAME_RE.test(n.name)) throw new Error(`not a network name: ${JSON.stringify(n.name)}`);
  return `${NETWORKS_DIR}/${n.name}.${n.id}.json`;
}

/** The record files present, as name and id. */
function recordFiles(): { name: string; id: string }[] {
  const out: { name: string; id: string }[] = [];
  for (const f of listDir(NETWORKS_DIR)) {
    const m = FILE_RE.exec(f);
    if (m) out.push({ name: m[1]!, id: m[2]! });
  }
  return out;
}

export function saveNetwork(n: NetworkRecord): void {
  ensureDir(NETWORKS_DIR);
  writeAtomic(networkPath(n), `${JSON.stringify(n, null, 2)}\n`);
}

export function deleteNetworkRecord(n: NetworkRecord): void {
  removeFile(networkPath(n));
}

export function loadNetwork(id: string, name?: string): NetworkRecord | undefined {
  if (!ID_RE.test(id)) return undefined;
  const found = name ?? recordFiles().find((f) => f.id === id)?.name;
  if (found === undefined) return undefined;
  const path = networkPath({ id, name: found });
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

function notANetwork(path: string, why: string): RefusedStateError {
  return new RefusedStateError(`refusing ${path}: not a network record of tsnet's (${why}): remove it`);
}

/**
 * The first field tsnet would never have written, or undefined. A bridge name is an interface
 * name; `network rm` deletes one outside tsnet's own names only if tsnet made it (bridgeMadeByTsnet).
 */
function badField(v: unknown, id: string): string | undefined {
  if (typeof v !== "object" || v === null) return "(the whole record)";
  const n = v as Record<string, any>;
  if (n.id !== id) return "id";
  if (typeof n.name !== "string" || !NETWORK_NAME_RE.test(n.name)) return "name";
  if (!["bridge", "host", "null"].includes(n.driver)) return "driver";
  if (n.bridge !== undefined && (typeof n.bridge !== "string" || !IFNAME_RE.test(n.bridge))) return "bridge";
  if (!Array.isArray(n.subnets) || !n.subnets.every((s: any) => typeof s?.subnet === "string" && typeof s?.gateway === "string")) return "subnets";
  return undefined;
}

export function listNetworks(): NetworkRecord[] {
  const out: NetworkRecord[] = [];
  for (const f of recordFiles()) {
    const n = loadNetwork(f.id, f.name);
    if (n) out.push(n);
  }
  // Code-unit order, not localeCompare: ISO timestamps and names sort the same either way here,
  // and the first localeCompare of a process costs 0.4 ms (ICU's collator) on every command.
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return out.sort((a, b) => cmp(a.created, b.created) || cmp(a.name, b.name));
}

/** A network by name, full id or unique id prefix, as Docker resolves references. */
export function findNetwork(ref: string, all?: readonly NetworkRecord[]): NetworkRecord | undefined {
  if (!all) {
    // From the file names: only the record named is read.
    const files = recordFiles();
    const byName = files.find((f) => f.name === ref);
    if (byName) return loadNetwork(byName.id, byName.name);
    if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
    const hits = files.filter((f) => f.id.startsWith(ref));
    if (hits.length > 1) throw new TsnetError(`"${ref}" matches ${hits.length} networks: give more of the id or the name`, 1);
    return hits[0] && loadNetwork(hits[0].id, hits[0].name);
  }
  const byName = all.find((n) => n.name === ref);
  if (byName) return byName;
  if (!/^[0-9a-f]{1,64}$/.test(ref)) return undefined;
  const hits = all.filter((n) => n.id.startsWith(ref));
  if (hits.length > 1) throw new TsnetError(`"${ref}" matches ${hits.length} networks: give more of the id or the name`, 1);
  return hits[0];
}

// A bridge named by the user (`-o com.docker.network.bridge.name=br-web`) may be one the host had
// before: Docker then uses it and leaves it when the network goes. Whether tsnet made it is kept
// under /run, which a reboot empties as it removes the bridge: a bridge of that name made again
// by the host's own configuration after a reboot is never taken for tsnet's.
function bridgeMark(id: string): string {
  if (!ID_RE.test(id)) throw new Error(`not a network id: ${JSON.stringify(id)}`);
  return `${NETWORKS_RUN_DIR}/${id}/bridge-made`;
}

/** Notes that tsnet has just created the network's bridge. */
export function markBridgeMade(id: string, bridge: string): void {
  ensureDir(`${NETWORKS_RUN_DIR}/${id}`);
  createExclusive(bridgeMark(id), `${bridge}\n`);
}

/** Whether `network rm` may delete the network's bridge: a name of tsnet's, or one tsnet made since boot. */
export function bridgeMadeByTsnet(n: Pick<NetworkRecord, "id" | "bridge">): boolean {
  if (!n.bridge) return false;
  return BRIDGE_RE.test(n.bridge) || readText(bridgeMark(n.id))?.trim() === n.bridge;
}

export function forgetBridgeMark(id: string): void {
  removeFile(bridgeMark(id));
}
