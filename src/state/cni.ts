// CNI attachments: /run/tsnet/cni/NETWORK/ID.json, one per (network name, runtime's container
// id, interface), the key the CNI specification gives an attachment. Filed under the network's
// name, the key a request carries, so DEL reads one file and no network record. ID is derived from that key
// (sha256), so DEL finds everything an attachment made (its lease, host veth and port elements
// are named after the ID) even without the file: after a crash between taking an address and
// recording it, or on a second DEL. The file is the attachment's record, as a container's record
// is a container's: written before each kernel object it names is made, so teardown always knows
// what to remove. /run is a tmpfs: attachments vanish with the kernel objects at reboot.
import { rmdirSync } from "../../ffi/fs.ts";
import type { Endpoint } from "./containers.ts";
import { RefusedStateError } from "../errors/errors.ts";
import { portToJson, portsFromJson, type PublishedPort } from "../ip/port.ts";
import { createExclusive, ensureDir, forgetDir, fsError, listDir, readText, removeFile, trustDir, writeAtomic } from "./files.ts";
import { CNI_DIR, ID_RE } from "./paths.ts";

export interface CniAttachment {
  /** 64 hex digits: sha256 of the network name, container id and interface name. */
  id: string;
  network: string;
  /** The network's id when attached: its leases are filed under it. */
  networkId: string;
  /** CNI_CONTAINERID */
  containerId: string;
  /** CNI_IFNAME */
  ifname: string;
  /** CNI_NETNS at ADD. */
  netns: string;
  created: string;
  /** The delegated IPAM plugin that gave the address (its `type`); absent: tsnet's own leases. */
  ipam?: string;
  /** The endpoint (one: an attachment is one interface), written before its veth is made. */
  endpoints: Endpoint[];
  /** Published ports (runtimeConfig.portMappings), written before their elements are added. */
  ports: PublishedPort[];
  /** Set once the elements are in: their keys are then this attachment's to delete. */
  published?: boolean;
}

export function attachmentId(network: string, containerId: string, ifname: string): string {
  // Bun's own hasher: node:crypto would cost its module load on every plugin call.
  return new Bun.CryptoHasher("sha256").update(`tsnet-cni\0${network}\0${containerId}\0${ifname}`).digest("hex");
}

// Network names are path-safe: letters, digits, '_', '.', '-', starting with a letter or digit.
function dirOf(network: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(network)) throw new Error(`not a network name: ${JSON.stringify(network)}`);
  return `${CNI_DIR}/${network}`;
}

function pathOf(network: string, id: string): string {
  if (!ID_RE.test(id)) throw new Error(`not an attachment id: ${JSON.stringify(id)}`);
  return `${dirOf(network)}/${id}.json`;
}

/**
 * Removes a network's attachment directory once the network goes (empty by then: a network with
 * attachments is not removed); one left behind for every CNI network ever made would pile up.
 */
export function forgetAttachmentDir(network: string): void {
  const dir = dirOf(network);
  if (!trustDir(dir)) return;
  try {
    rmdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" && code !== "ENOTEMPTY") throw fsError("remove directory", dir, e);
  }
  forgetDir(dir);
}

/** Writes a new attachment's record; false when one with its key exists already. */
export function createAttachment(a: CniAttachment): boolean {
  ensureDir(dirOf(a.network));
  return createExclusive(pathOf(a.network, a.id), toJson(a));
}

export function saveAttachment(a: CniAttachment): void {
  writeAtomic(pathOf(a.network, a.id), toJson(a));
}

// Addresses as text: an IpAddress holds a bigint, which JSON cannot.
function toJson(a: CniAttachment): string {
  return JSON.stringify({ ...a, ports: a.ports.map(portToJson) });
}

export function loadAttachment(network: string, id: string): CniAttachment | undefined {
  const path = pathOf(network, id);
  const text = readText(path);
  if (text === undefined) return undefined;
  let a: unknown;
  try {
    a = JSON.parse(text);
  } catch {
    throw notAnAttachment(path, "it is not JSON");
  }
  const bad = badField(a, network, id);
  if (bad) throw notAnAttachment(path, `its field ${bad} is not one tsnet writes`);
  const att = a as CniAttachment;
  att.ports = portsFromJson(att.ports)!;
  return att;
}

function notAnAttachment(path: string, why: string): RefusedStateError {
  return new RefusedStateError(`refusing ${path}: not a CNI attachment record of tsnet's (${why}): remove it`);
}

/**
 * The first field tsnet would never have written, or undefined. DEL moves away and deletes the
 * link a record names, so it must be the one this attachment's id names (veth + 7 hex digits).
 */
function badField(v: unknown, network: string, id: string): string | undefined {
  if (typeof v !== "object" || v === null) return "(the whole record)";
  const a = v as Record<string, any>;
  if (a.id !== id) return "id";
  if (a.network !== network) return "network";
  if (typeof a.networkId !== "string" || !ID_RE.test(a.networkId)) return "networkId";
  if (typeof a.containerId !== "string" || typeof a.ifname !== "string") return "containerId";
  if (portsFromJson(a.ports) === undefined) return "ports";
  if (!Array.isArray(a.endpoints) || a.endpoints.length > 1) return "endpoints";
  for (const ep of a.endpoints) {
    if (typeof ep !== "object" || ep === null || ep.hostVeth !== `veth${id.slice(0, 7)}` || ep.networkId !== a.networkId || !Array.isArray(ep.ips)) return "endpoints";
  }
  return undefined;
}

export function deleteAttachment(a: Pick<CniAttachment, "network" | "id">): void {
  removeFile(pathOf(a.network, a.id));
}

/** Every attachment recorded, on every network (`tsnet firewall-reload` puts their ports back). */
export function listAllAttachments(): CniAttachment[] {
  return listDir(CNI_DIR).filter((n) => /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(n)).flatMap(listAttachments);
}

/** Every attachment recorded on the network. */
export function listAttachments(network: string): CniAttachment[] {
  const out: CniAttachment[] = [];
  for (const f of listDir(dirOf(network))) {
    const m = /^([0-9a-f]{64})\.json$/.exec(f);
    const a = m ? loadAttachment(network, m[1]!) : undefined;
    if (a) out.push(a);
  }
  return out;
}
