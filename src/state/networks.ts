// Network records: ${STATE_DIR}/networks/ID.json, one per network, written atomically. A record
// is the definition (name, bridge, subnets, options); the kernel objects it describes are made
// from it on first use, so a record survives a reboot and its network comes back as it was.
// There are few networks, so lookups by name simply read them all.
import { readdirSync } from "../../ffi/fs.ts";
import { TsnetError } from "../errors/errors.ts";
import { ensureDir, readText, removeFile, writeAtomic } from "./files.ts";
import { NETWORKS_DIR } from "./paths.ts";

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
}

export const BUILTIN_NETWORKS = ["bridge", "host", "none"] as const;

const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export function checkNetworkName(name: string): void {
  if (!NETWORK_NAME_RE.test(name)) {
    throw new TsnetError(`invalid network name "${name}": use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
}

export function saveNetwork(n: NetworkRecord): void {
  ensureDir(NETWORKS_DIR);
  writeAtomic(`${NETWORKS_DIR}/${n.id}.json`, `${JSON.stringify(n, null, 2)}\n`);
}

export function deleteNetworkRecord(n: NetworkRecord): void {
  removeFile(`${NETWORKS_DIR}/${n.id}.json`);
}

export function loadNetwork(id: string): NetworkRecord | undefined {
  if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
  const text = readText(`${NETWORKS_DIR}/${id}.json`);
  return text === undefined ? undefined : (JSON.parse(text) as NetworkRecord);
}

export function listNetworks(): NetworkRecord[] {
  let files: string[];
  try {
    files = readdirSync(NETWORKS_DIR);
  } catch {
    return [];
  }
  const out: NetworkRecord[] = [];
  for (const f of files) {
    const m = /^([0-9a-f]{64})\.json$/.exec(f);
    const n = m ? loadNetwork(m[1]!) : undefined;
    if (n) out.push(n);
  }
  // Code-unit order, not localeCompare: ISO timestamps and names sort the same either way here,
  // and the first localeCompare of a process costs 0.4 ms (ICU's collator) on every command.
  const cmp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return out.sort((a, b) => cmp(a.created, b.created) || cmp(a.name, b.name));
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
