// Publishing a container's (or CNI attachment's) ports: which host addresses a `-p` without one
// means on a network, the ports aimed at the endpoint's addresses, and the map elements added,
// with the whole table re-made from the set of networks when the kernel says it is missing.
import { TsnetError, UsageError } from "../errors/errors.ts";
import { formatIp, parseIp, sameIp, type IpAddress } from "../ip/addr.ts";
import { LOOPBACK_V6, aimPorts, describePort, type AimedPort, type PublishedPort } from "../ip/port.ts";
import { KernelError } from "../errors/errors.ts";
import { ENOENT } from "../errors/errno.ts";
import { nameTaken, publishPortsRepairing, publishedPortsByOwner, unpublishTagged, type PortOwner } from "../nat/portmap.ts";
import { planPublish, planUnpublish } from "../plan/attach.ts";
import { commitOnHost } from "./commit.ts";
import type { ContainerRecord, EndpointIp } from "../state/containers.ts";
import type { NetworkRecord } from "../state/networks.ts";
import type { CniAttachment } from "../state/cni.ts";
import { natNetworks, subnetsOf } from "./networks.ts";
import { resolvePorts, type HostAddresses, type PortRequest } from "./ports.ts";

/** Whether the network gives its containers IPv6 addresses (a dual-stack network). */
export function hasIPv6(net: NetworkRecord): boolean {
  return net.enableIPv6 === true || subnetsOf(net).some((s) => s.subnet.family === 6);
}

/** What a `-p` that names no address publishes on, on this network. */
export function hostAddressesOf(net: NetworkRecord): HostAddresses {
  const binding = net.hostBindingIpv4 === undefined ? undefined : parseIp(net.hostBindingIpv4);
  return { ipv6: hasIPv6(net), ...(binding?.family === 4 && { hostBindingIpv4: binding }) };
}

/**
 * The ports a run on the network publishes. An IPv6 host address on a network without IPv6 has
 * no container address to lead to (nf_tables does not translate between families), except ::1,
 * which the holding process relays: refused before anything is made.
 */
export function portsOn(net: NetworkRecord, requests: readonly PortRequest[]): PublishedPort[] {
  const ports = resolvePorts(requests, hostAddressesOf(net));
  if (!hasIPv6(net)) {
    const v6 = ports.find((p) => p.hostIp.family === 6 && !sameIp(p.hostIp, LOOPBACK_V6));
    if (v6) throw new UsageError(`-p ${describePort(v6)} publishes on an IPv6 address, but network ${net.name} has no IPv6: use a network made with --ipv6, or an IPv4 host address`);
  }
  const udp1 = ports.find((p) => p.proto === "udp" && sameIp(p.hostIp, LOOPBACK_V6));
  if (udp1) throw new UsageError(`-p ${describePort(udp1)}: UDP cannot be published on [::1] (IPv6 has no route_localnet, and tsnet relays only TCP there): publish on [::] or an address of the host`);
  return ports;
}

/** Where a relay of [::1] sends a connection: the container's IPv6 address, else its IPv4 one. */
export function relayTarget(addresses: readonly IpAddress[]): IpAddress | undefined {
  return addresses.find((a) => a.family === 6) ?? addresses.find((a) => a.family === 4);
}

/** The endpoint's addresses, as the record holds them (IPv4 and IPv6 leases alike). */
export function addressesOf(ips: readonly EndpointIp[] | undefined): IpAddress[] {
  return (ips ?? []).flatMap((i) => {
    const a = parseIp(i.address);
    return a ? [a] : [];
  });
}

/** The one place ports meet their container: every port at the endpoint's address of its family. */
export function aimedAt(ports: readonly PublishedPort[] | undefined, ips: readonly EndpointIp[] | undefined): AimedPort[] {
  return aimPorts(ports ?? [], addressesOf(ips));
}

/**
 * Adds the owner's elements: planned (planPublish) and committed as one transaction of known
 * elements, nothing read first (the table was checked with the bridge). When the kernel says the
 * table or a map is missing, nothing was committed: the whole table is re-made from the networks
 * with the elements in it, in one transaction.
 */
export function publishAimed(owner: PortOwner, ports: readonly AimedPort[], run?: () => void): void {
  if (!publishPorts(owner, ports, run)) publishPortsRepairing(owner, ports, natNetworks());
}

/**
 * The owner's elements in one transaction; false, having committed nothing, when the table or a
 * map is missing. `run` commits them as part of a larger plan (CNI ADD's, planCniAdd); by default
 * planPublish's plan is committed on its own.
 */
export function publishPorts(owner: PortOwner, ports: readonly AimedPort[], run = () => commitOnHost(planPublish(owner, ports))): boolean {
  return nameTaken(owner, ports, () => {
    try {
      run();
      return true;
    } catch (e) {
      if (e instanceof KernelError && e.errno === ENOENT) return false;
      throw e;
    }
  });
}

/**
 * Deletes the owner's elements. Given the ports it did publish (their keys are its own: the
 * kernel refuses a second element with a key), one transaction deletes them by key
 * (planUnpublish). Without them, or when that fails, the maps are searched for its tag: a crashed
 * run's record may name ports it never published, and such a key may be another owner's.
 */
export function unpublishPorts(owner: PortOwner, published?: readonly AimedPort[]): void {
  const plan = planUnpublish(owner, published ?? []);
  if (plan.ops.length) {
    try {
      commitOnHost(plan);
      return;
    } catch {}
  }
  unpublishTagged(owner);
}

/** A host address a port names must be one this host has (checked by binding it); text for errors. */
export function notHostAddress(a: IpAddress, p: PublishedPort): TsnetError {
  const none = `-p ${p.hostPort ? `${p.hostPort}:` : ""}${p.containerPort}`;
  return new TsnetError(`cannot publish on ${formatIp(a)}: it is not an address of this host: give one of the host's addresses, or none for every address (${none})`);
}


/** A CNI attachment's elements are tagged with 12 hex of its id and named after the runtime's container. */
export function attachmentPortOwner(a: Pick<CniAttachment, "id" | "containerId" | "ifname">): PortOwner {
  return { tag: a.id.slice(0, 12), name: `cni:${a.containerId.slice(0, 12)}:${a.ifname}` };
}

/** A CNI attachment's ports aimed at its endpoint's addresses. */
export function attachmentPorts(a: CniAttachment): AimedPort[] {
  return aimedAt(a.ports, a.endpoints[0]?.ips);
}

/**
 * A running container's published ports as they work now: what tsnet's maps hold for it (a
 * port whose element a firewall reload took away is not listed), and its [::1] ports, which no
 * element serves but its manager's relay.
 */
export function portsHeld(rec: ContainerRecord, kernel: ReadonlyMap<string, AimedPort[]> = publishedPortsByOwner()): AimedPort[] {
  const held = [...(kernel.get(rec.id.slice(0, 12)) ?? [])];
  const target = relayTarget(addressesOf(rec.endpoints?.[0]?.ips));
  if (target) for (const p of rec.ports ?? []) if (sameIp(p.hostIp, LOOPBACK_V6)) held.push({ ...p, containerIp: target });
  return held.sort(portOrder);
}

/** Docker's order: container port, protocol, then IPv4 before IPv6, host address, host port. */
export function portOrder(a: PublishedPort, b: PublishedPort): number {
  return (
    a.containerPort - b.containerPort ||
    a.proto.localeCompare(b.proto) ||
    a.hostIp.family - b.hostIp.family ||
    (a.hostIp.value < b.hostIp.value ? -1 : a.hostIp.value > b.hostIp.value ? 1 : 0) ||
    a.hostPort - b.hostPort
  );
}
