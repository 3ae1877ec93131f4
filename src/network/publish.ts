// Publishing a container's (or CNI attachment's) ports: which host addresses a `-p` without one
// means on a network, the ports aimed at the endpoint's addresses, and the map elements added,
// with the whole table re-made from the set of networks when the kernel says it is missing.
import { TsnetError, UsageError } from "../errors/errors.ts";
import { formatIp, parseIp, sameIp, type IpAddress } from "../ip/addr.ts";
import { LOOPBACK_V6, aimPorts, describePort, type AimedPort, type PublishedPort } from "../ip/port.ts";
import { publishPorts, publishPortsRepairing, publishedPortsByOwner, type PortOwner } from "../nat/portmap.ts";
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

/** Adds the owner's elements; the table is re-made from the networks if the kernel lacks it. */
export function publishAimed(owner: PortOwner, ports: readonly AimedPort[]): void {
  if (!publishPorts(owner, ports)) publishPortsRepairing(owner, ports, natNetworks());
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
