// Published ports as nf_tables map elements in tsnet's own table (src/nat/ruleset.ts): one
// element per host port, tagged with the container's short id, added and removed each in one
// transaction. The table itself is (re)made in the same transaction when it is missing or was
// changed behind tsnet's back.
import { KernelError, TsnetError } from "../errors/errors.ts";
import { EEXIST } from "../errors/errno.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { deleteTaggedElements, ensureTable, openNftSocket, tableExists } from "../nftables/index.ts";
import type { BridgeNetwork } from "../network/bridge.ts";
import type { ContainerRecord } from "../state/containers.ts";
import { PORT_SETS, portElements, portPublishingTable } from "./ruleset.ts";

export const NAT_TABLE = "tsnet";

let socket: NetlinkSocket | undefined;
function nft(): NetlinkSocket {
  socket ??= openNftSocket();
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

export function publishPorts(rec: ContainerRecord, net: BridgeNetwork): void {
  const ep = rec.endpoint;
  if (!ep || !rec.ports?.length) return;
  const ports = rec.ports.map((m) => ({
    proto: m.proto,
    hostPort: m.hostPort,
    hostIp: m.hostIp === 0 ? undefined : m.hostIp,
    containerIp: ep.address,
    containerPort: m.containerPort,
  }));
  try {
    // Also rewrites any chain that drifted from tsnet's rules, in the same transaction.
    ensureTable(nft(), tableFor(net), { add: portElements(ownerTag(rec), rec.name, ports) });
  } catch (e) {
    if (e instanceof KernelError && e.errno === EEXIST) {
      throw new TsnetError(`a host port of ${rec.name} is still published by an earlier container (${e.message})`);
    }
    throw e;
  }
}

export function unpublishPorts(rec: ContainerRecord): void {
  deleteTaggedElements(nft(), "inet", NAT_TABLE, PORT_SETS, ownerTag(rec));
}
