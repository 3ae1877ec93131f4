// Published ports as nf_tables map elements in tsnet's own table (src/nat/ruleset.ts): one
// element per host port, tagged with its owner (a container's short id), added and removed each
// in one transaction. The table itself is (re)made in the same transaction when it is missing or
// was changed behind tsnet's back. Owners are plain tags, so anything that publishes ports (a
// container of `tsnet run`, a CNI attachment) goes through the same code.
import { KernelError, TsnetError } from "../errors/errors.ts";
import { EEXIST, ENOENT } from "../errors/errno.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { commentTag, deleteTaggedElements, ensureTable, listElements, openNftSocket, tableExists } from "../nftables/index.ts";
import { ipFromBytes } from "../ip/addr.ts";
import { ANY_V4, ANY_V6, clashes, formatHostPort, isAnyAddress, type AimedPort } from "../ip/port.ts";
import { PORT_SETS, mapLayout, natTable, portElements, type NatNetwork } from "./ruleset.ts";

export const NAT_TABLE = "tsnet";

let socket: NetlinkSocket | undefined;
/** The process's one nf_tables socket for tsnet's table (its port id marks our own notifications). */
export function natSocket(): NetlinkSocket {
  return nft();
}
function nft(): NetlinkSocket {
  socket ??= openNftSocket();
  return socket;
}

/** Closes that socket; the next use opens another (a test that changed the transport sockets get). */
export function closeNatSocket(): void {
  socket?.close();
  socket = undefined;
}

/** Who published a set of ports: `tag` (one word) starts each element's comment. */
export interface PortOwner {
  tag: string;
  name: string;
}

/** Whether tsnet's table is there (one lookup): the network layer makes it when it is not. */
export function natTableExists(): boolean {
  return tableExists(nft(), "inet", NAT_TABLE);
}

/** Makes tsnet's table match the set of networks, in one transaction. */
export function ensureNatTable(networks: readonly NatNetwork[]): void {
  ensureTable(nft(), natTable({ table: NAT_TABLE, networks }));
}

/** The whole table re-made from the networks, the owner's elements included, in one transaction. */
export function publishPortsRepairing(owner: PortOwner, ports: readonly AimedPort[], networks: readonly NatNetwork[]): void {
  const adds = portElements(owner.tag, owner.name, ports);
  nameTaken(owner, ports, () => ensureTable(nft(), natTable({ table: NAT_TABLE, networks }), { add: adds }));
}

/** A host port the owner would publish is another owner's (the kernel refused a second element with its key). */
export class PortTakenError extends TsnetError {}

/**
 * Runs fn, which adds the owner's elements; the kernel's EEXIST (another owner's element holds a
 * key) becomes a PortTakenError naming that owner and port.
 */
export function nameTaken<T>(owner: PortOwner, ports: readonly AimedPort[], fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof KernelError && e.errno === EEXIST) {
      // Someone else's element holds one of the keys (the kernel refuses to replace it): name it.
      const taken = listPublished().find((k) => ports.some((p) => clashes(p, k)));
      if (taken) {
        const host = isAnyAddress(taken.hostIp) ? `${taken.hostPort}` : formatHostPort(taken.hostIp, taken.hostPort);
        throw new PortTakenError(`host port ${host}/${taken.proto} is already published by ${taken.name} (${taken.tag}): choose another host port`);
      }
      throw new PortTakenError(`a host port of ${owner.name} is still published by an earlier container (${e.message})`);
    }
    throw e;
  }
}

/**
 * Deletes every element of the owner's tag from tsnet's maps, in one transaction (the maps are
 * read first): for a record that may name ports it never published, whose keys may be another
 * owner's, so nothing is deleted by key.
 */
export function unpublishTagged(owner: PortOwner): void {
  deleteTaggedElements(nft(), "inet", NAT_TABLE, PORT_SETS, owner.tag);
}

/** A published port as the kernel holds it, with the owner its element's comment names. */
export interface OwnedPort extends AimedPort {
  tag: string;
  name: string;
}

/** The owner's published ports as the kernel holds them (not as a record remembers them). */
export function publishedPorts(tag: string): AimedPort[] {
  return publishedPortsByOwner().get(tag) ?? [];
}

/** Every owner's published ports as the kernel holds them: one dump of each map, whatever the number of owners. */
export function publishedPortsByOwner(): Map<string, AimedPort[]> {
  const out = new Map<string, AimedPort[]>();
  for (const { tag, name: _, ...port } of listPublished()) {
    let list = out.get(tag);
    if (!list) out.set(tag, (list = []));
    list.push(port);
  }
  return out;
}

// Element layouts (each field padded to 4 bytes, ports big-endian in the first two; A is 4
// bytes in the IPv4 maps, 16 in the IPv6 ones):
//   ports, ports6:               key | proto u8 ... | port be16 .. |          data | A | port be16 .. |
//   hostip_ports, hostip_ports6: key | A | proto u8 ... | port be16 .. |      data as above
/** Every published port in tsnet's maps (or in the ones named), with the owner its comment names. */
export function listPublished(maps: readonly string[] = PORT_SETS): OwnedPort[] {
  const nl = nft();
  if (!tableExists(nl, "inet", NAT_TABLE)) return [];
  const out: OwnedPort[] = [];
  for (const set of maps) {
    let elements;
    try {
      elements = listElements(nl, "inet", NAT_TABLE, set);
    } catch (e) {
      // A map someone deleted (or a table made before the IPv6 maps existed) holds no ports.
      if (e instanceof KernelError && e.errno === ENOENT) continue;
      throw e;
    }
    const { family, keyed } = mapLayout(set);
    const alen = family === 4 ? 4 : 16;
    for (const e of elements) {
      const tag = commentTag(e.comment);
      if (tag === undefined || !e.data) continue;
      const k = new DataView(e.key.buffer, e.key.byteOffset, e.key.byteLength);
      const d = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
      const off = keyed ? alen : 0;
      out.push({
        tag,
        name: e.comment?.split(" ")[1] ?? "",
        proto: k.getUint8(off) === 17 ? "udp" : "tcp",
        hostIp: keyed ? ipFromBytes(e.key.slice(0, alen)) : family === 4 ? ANY_V4 : ANY_V6,
        hostPort: k.getUint16(off + 4, false),
        containerIp: ipFromBytes(e.data.slice(0, alen)),
        containerPort: d.getUint16(alen, false),
      });
    }
  }
  return out;
}
