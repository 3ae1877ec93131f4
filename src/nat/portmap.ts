// Published ports as nf_tables map elements in tsnet's own table (src/nat/ruleset.ts): one
// element per host port, tagged with the container's short id, added and removed each in one
// transaction. The table itself is (re)made in the same transaction when it is missing or was
// changed behind tsnet's back.
import { KernelError, TsnetError } from "../errors/errors.ts";
import { EEXIST, ENOENT } from "../errors/errno.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { lingerOnExit } from "../netlink/linger.ts";
import { Batch, addElements, commentTag, deleteElements, deleteTaggedElements, ensureTable, listElements, openNftSocket, tableExists, type ElementAdd } from "../nftables/index.ts";
import { ipv4FromBytes } from "../ip/ipv4.ts";
import type { PortMapping } from "../network/ports.ts";
import type { BridgeNetwork } from "../network/bridge.ts";
import type { ContainerRecord } from "../state/containers.ts";
import { HOSTIP_PORTS_MAP, PORTS_MAP, PORT_SETS, portElements, portPublishingTable } from "./ruleset.ts";

export const NAT_TABLE = "tsnet";

let socket: NetlinkSocket | undefined;
function nft(): NetlinkSocket {
  if (!socket) {
    socket = openNftSocket();
    lingerOnExit(socket.fd);
  }
  return socket;
}

function tableFor(net: BridgeNetwork) {
  return portPublishingTable({ table: NAT_TABLE, bridge: net.bridge, subnet: net.subnet });
}

/** The short id that tags a container's elements (the first word of their comment). */
export function ownerTag(rec: ContainerRecord): string {
  return rec.id.slice(0, 12);
}

/**
 * Makes sure tsnet's table exists (outbound masquerade serves every container, published ports
 * or not). Cheap when it is there: one lookup.
 */
export function ensureNatTable(net: BridgeNetwork, repair = false): void {
  if (!repair && tableExists(nft(), "inet", NAT_TABLE)) return;
  ensureTable(nft(), tableFor(net));
}

function elementsOf(rec: ContainerRecord): ElementAdd[] {
  const ep = rec.endpoint;
  if (!ep || !rec.ports?.length) return [];
  const ports = rec.ports.map((m) => ({
    proto: m.proto,
    hostPort: m.hostPort,
    hostIp: m.hostIp === 0 ? undefined : m.hostIp,
    containerIp: ep.address,
    containerPort: m.containerPort,
  }));
  return portElements(ownerTag(rec), rec.name, ports);
}

/**
 * Adds the container's elements in one transaction. The common case is a single batch of known
 * elements (the table was checked when the bridge was); only when the kernel says the table or a
 * map is missing is the whole table re-made, elements included, in one transaction.
 */
export function publishPorts(rec: ContainerRecord, net: BridgeNetwork): void {
  const adds = elementsOf(rec);
  if (!adds.length) return;
  try {
    try {
      const b = new Batch();
      for (const a of adds) addElements(b, "inet", NAT_TABLE, a.set, a.elements);
      b.commitUnconditional(nft());
    } catch (e) {
      if (!(e instanceof KernelError && e.errno === ENOENT)) throw e;
      ensureTable(nft(), tableFor(net), { add: adds });
    }
  } catch (e) {
    if (e instanceof KernelError && e.errno === EEXIST) {
      throw new TsnetError(`a host port of ${rec.name} is still published by an earlier container (${e.message})`);
    }
    throw e;
  }
}

/**
 * Deletes the container's elements: by their known keys in one batch, or, when that fails (a
 * crashed run's record may name ports it never published), by searching the maps for its tag.
 */
export function unpublishPorts(rec: ContainerRecord): void {
  const adds = elementsOf(rec);
  try {
    const b = new Batch();
    for (const a of adds) deleteElements(b, "inet", NAT_TABLE, a.set, a.elements);
    b.commitUnconditional(nft());
  } catch {
    deleteTaggedElements(nft(), "inet", NAT_TABLE, PORT_SETS, ownerTag(rec));
  }
}

// Element layouts (each field padded to 4 bytes, ports big-endian in the first two):
//   ports:        key | proto u8 ... | port be16 .. |            data | ip 4 | port be16 .. |
//   hostip_ports: key | ip 4 | proto u8 ... | port be16 .. |       data as above
/** The container's published ports as the kernel holds them (not as the record remembers). */
export function publishedPorts(rec: ContainerRecord): PortMapping[] {
  const nl = nft();
  if (!tableExists(nl, "inet", NAT_TABLE)) return [];
  const tag = ownerTag(rec);
  const out: PortMapping[] = [];
  for (const set of [PORTS_MAP, HOSTIP_PORTS_MAP]) {
    for (const e of listElements(nl, "inet", NAT_TABLE, set)) {
      if (commentTag(e.comment) !== tag || !e.data) continue;
      const k = new DataView(e.key.buffer, e.key.byteOffset, e.key.byteLength);
      const d = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
      const off = set === HOSTIP_PORTS_MAP ? 4 : 0;
      out.push({
        proto: k.getUint8(off) === 17 ? "udp" : "tcp",
        hostIp: set === HOSTIP_PORTS_MAP ? ipv4FromBytes(e.key.subarray(0, 4)) : 0,
        hostPort: k.getUint16(off + 4, false),
        containerPort: d.getUint16(4, false),
      });
    }
  }
  return out;
}
