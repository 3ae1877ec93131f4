// A published port, one shape from the command line to the kernel and back: `-p` parses into it,
// the reservation holds it, the record (a container's, a CNI attachment's) keeps it, nf_tables'
// maps are written from it (with the container's address of the same family) and read back into
// it for inspect, ps and port. "Every address" is the unspecified address of a family (0.0.0.0
// or ::), as Docker writes it, never a missing field or a 0.
//
// On disk and on the supervisor's socket an address is its text ("0.0.0.0", "::1"); records
// written before IPv6 hold IPv4 host addresses as a u32 (0: every address) and still read.
import { formatIp, parseIp, sameIp, type Family, type IpAddress } from "./addr.ts";

export type Proto = "tcp" | "udp";

export interface PublishedPort {
  proto: Proto;
  /** The host address; the unspecified address of its family (0.0.0.0, ::) is every address of that family. */
  hostIp: IpAddress;
  /** 0 until a free port has been chosen for a spec that named none (`-p 80`). */
  hostPort: number;
  containerPort: number;
  /** The container's address of hostIp's family: set once the endpoint has one (what the kernel's maps hold). */
  containerIp?: IpAddress;
}

/** A port aimed at its container: what goes into the kernel and comes back from it. */
export type AimedPort = PublishedPort & { containerIp: IpAddress };

export const ANY_V4: IpAddress = { family: 4, value: 0n };
export const ANY_V6: IpAddress = { family: 6, value: 0n };
export const LOOPBACK_V6: IpAddress = { family: 6, value: 1n };

export function anyAddress(family: Family): IpAddress {
  return family === 4 ? ANY_V4 : ANY_V6;
}

/** 0.0.0.0 or ::: every host address of the family. */
export function isAnyAddress(a: IpAddress): boolean {
  return a.value === 0n;
}

/** Docker's text of a host address and port: `0.0.0.0:8080`, `[::]:8080`. */
export function formatHostPort(a: IpAddress, port: number): string {
  return a.family === 6 ? `[${formatIp(a)}]:${port}` : `${formatIp(a)}:${port}`;
}

/** `ps`'s form: `0.0.0.0:8080->80/tcp`, `[::1]:8081->80/tcp`. */
export function describePort(p: PublishedPort): string {
  return `${formatHostPort(p.hostIp, p.hostPort)}->${p.containerPort}/${p.proto}`;
}

/** Same host side (protocol, address, port): two ports that would be one map key. */
export function sameHostSide(a: PublishedPort, b: PublishedPort): boolean {
  return a.proto === b.proto && a.hostPort === b.hostPort && sameIp(a.hostIp, b.hostIp);
}

/**
 * Whether two ports compete for one host port: same protocol and port, and addresses that
 * overlap (equal, or one of them every address of the same family).
 */
export function clashes(a: PublishedPort, b: PublishedPort): boolean {
  if (a.proto !== b.proto || a.hostPort !== b.hostPort || a.hostIp.family !== b.hostIp.family) return false;
  return isAnyAddress(a.hostIp) || isAnyAddress(b.hostIp) || sameIp(a.hostIp, b.hostIp);
}

/**
 * The ports aimed at the owner's addresses: each at the address of its host address's family.
 * A port whose family the owner has no address of is not published in the kernel (run refuses
 * such a port before anything is made, see refuseUnreachable; ::1 is served without the kernel's
 * NAT, see src/network/loopback6.ts).
 */
export function aimPorts(ports: readonly PublishedPort[], addresses: readonly IpAddress[]): AimedPort[] {
  const out: AimedPort[] = [];
  for (const p of ports) {
    if (sameIp(p.hostIp, LOOPBACK_V6)) continue;
    const to = addresses.find((a) => a.family === p.hostIp.family);
    if (to) out.push({ ...p, containerIp: to });
  }
  return out;
}

/** The JSON form of a port (records, the supervisor's socket): addresses as text. */
export interface PortJson {
  proto: Proto;
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

export function portToJson(p: PublishedPort): PortJson {
  return { proto: p.proto, hostIp: formatIp(p.hostIp), hostPort: p.hostPort, containerPort: p.containerPort };
}

const isPort = (v: unknown, min: number) => Number.isInteger(v) && (v as number) >= min && (v as number) <= 65535;

/**
 * A port read back from JSON, or undefined when it is not one tsnet writes. Also reads the form
 * records had before IPv6: hostIp a u32, 0 for every address.
 */
export function portFromJson(v: unknown): PublishedPort | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const p = v as Record<string, unknown>;
  if ((p.proto !== "tcp" && p.proto !== "udp") || !isPort(p.hostPort, 0) || !isPort(p.containerPort, 1)) return undefined;
  let hostIp: IpAddress | undefined;
  if (typeof p.hostIp === "string") hostIp = parseIp(p.hostIp);
  else if (Number.isInteger(p.hostIp) && (p.hostIp as number) >= 0 && (p.hostIp as number) <= 0xffffffff) hostIp = { family: 4, value: BigInt(p.hostIp as number) };
  if (!hostIp) return undefined;
  return { proto: p.proto, hostIp, hostPort: p.hostPort as number, containerPort: p.containerPort as number };
}

/** Every port of a JSON list, or undefined when one of them is not a port. */
export function portsFromJson(v: unknown): PublishedPort[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: PublishedPort[] = [];
  for (const x of v) {
    const p = portFromJson(x);
    if (!p) return undefined;
    out.push(p);
  }
  return out;
}
