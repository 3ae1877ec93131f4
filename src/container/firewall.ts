// `tsnet firewall-reload`: the restore every manager does for its own containers when it sees
// tsnet's rules removed (src/network/firewall.ts), done once for every running container, from
// the records. It is what a firewall's reload hook runs (see README), and the way back when no
// manager is there to notice (one stopped, or the host's firewall reloaded while it was busy).
import { natNetworks } from "../network/networks.ts";
import { restoreFirewall, type FirewallRestore, type OwnedPorts } from "../network/firewall.ts";
import { linkGet } from "../rtnetlink/link.ts";
import { hostRtnl } from "../network/host.ts";
import { listAllAttachments } from "../state/cni.ts";
import { attachmentPortOwner, attachmentPorts } from "../network/publish.ts";
import { listRecords } from "../state/containers.ts";
import { firewallOf } from "./lifecycle.ts";

/**
 * Restores tsnet's table, the guard, route_localnet and every running container's and CNI
 * attachment's published ports. A host where no tsnet bridge exists and no container runs is left alone: there is
 * nothing to protect, and a firewall hook must not add a table to a host that never used tsnet.
 */
export function reloadFirewall(): FirewallRestore {
  const running = listRecords().filter((r) => r.status === "running");
  const owned = running.map(firewallOf).filter((o): o is OwnedPorts => o !== undefined);
  // A CNI attachment has no manager to watch over its ports: this is what puts them back.
  const cni = listAllAttachments().filter((a) => a.published && a.ports.length);
  for (const a of cni) owned.push({ owner: attachmentPortOwner(a), ports: attachmentPorts(a) });
  const nl = hostRtnl();
  const inUse = running.length > 0 || cni.length > 0 || natNetworks().some((n) => linkGet(nl, n.bridge) !== undefined);
  if (!inUse) return { repaired: false, tableWasMissing: false, guardWasMissing: false, portsAdded: 0 };
  return restoreFirewall(owned);
}
