// A CNI attachment as tsnet's network layer sees it: an endpoint owner (src/network/sandbox.ts)
// whose endpoints are recorded in its attachment record, and a port owner (src/nat/portmap.ts)
// whose elements are tagged with its id. `tsnet run` containers are the other kind of owner of
// both; the veth, lease, address, route and port code is theirs.
import { mark } from "../errors/trace.ts";
import { Cleanup } from "../errors/errors.ts";
import { unpublishPorts } from "../network/publish.ts";
import { detachEndpoint, type EndpointOwner } from "../network/sandbox.ts";
import { deleteAttachment, saveAttachment, type CniAttachment } from "../state/cni.ts";
import { attachmentPortOwner as portOwnerOf, attachmentPorts as publishedFor } from "../network/publish.ts";

export { portOwnerOf, publishedFor };
import { listLeases, releaseLease } from "../state/leases.ts";

/** The host end of an attachment's veth: veth and 7 hex of its id, as a container's eth0. */
export function hostVethOf(id: string): string {
  return `veth${id.slice(0, 7)}`;
}

export function attachmentOwner(a: CniAttachment): EndpointOwner {
  return {
    id: a.id,
    what: `CNI attachment ${a.containerId.slice(0, 12)}/${a.ifname}`,
    netns: a.netns,
    endpoints: a.endpoints,
    nextIfname: () => a.ifname,
    hostVethName: () => hostVethOf(a.id),
    leaseOwner: (ifname, aliases) => ({ container: a.id, ifname, names: [...aliases], cniContainer: a.containerId }),
    save: () => saveAttachment(a),
  };
}

/**
 * Releases everything the attachment holds, each step tolerating what is already gone and the
 * rest going on past a failure: its port elements, its veth, its lease (also one taken but not yet recorded when a crash came),
 * and its record. Shared by DEL, GC and a failed ADD's undo. `ns`: an fd on the container's
 * namespace, or "gone": the veth is then set aside, gone from the namespace and the bridge at
 * once and destroyed with the namespace, instead of a deletion that blocks for the kernel's
 * rcu_barrier() (detachEndpoint); without it (the undo) it is deleted.
 */
export function teardownAttachment(a: CniAttachment, ns?: number | "gone"): void {
  const c = new Cleanup();
  const owner = attachmentOwner(a);
  // Ports are recorded before they are published, so a record without any published none; by
  // key only once published (a failed publish met a key another owner holds), else by tag. The
  // record stops saying so first: `tsnet firewall-reload` puts back what records say is published,
  // and must not put back what is being deleted.
  if (a.ports.length) {
    const published = a.published === true;
    if (published) {
      a.published = false;
      c.step(() => saveAttachment(a));
    }
    c.step(() => unpublishPorts(portOwnerOf(a), published ? publishedFor(a) : undefined));
    mark("unpublished");
  }
  // The endpoint is recorded before its veth is made, so the veth can exist only if recorded.
  for (const ep of [...a.endpoints]) c.step(() => detachEndpoint(owner, ep, ns));
  // A lease is taken just before its endpoint is recorded: a crash in between leaves one that
  // only its owner id names.
  mark("detached");
  if (!a.endpoints.length) c.step(() => releaseLeasesOf(a.networkId, a.id));
  c.step(() => deleteAttachment(a));
  c.done();
}

/** Releases the leases on the network that the owner id holds. */
export function releaseLeasesOf(networkId: string, id: string): void {
  for (const l of listLeases(networkId)) if (l.container === id) releaseLease(networkId, l.address, id);
}
