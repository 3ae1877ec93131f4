// Published ports: `-p` specs parsed into one mapping per host port. Ranges expand here, so every
// later layer (reservation, nf_tables map elements, inspect) handles single ports only.
import { UsageError } from "../errors/errors.ts";
import { formatIPv4, parseIPv4 } from "../ip/ipv4.ts";

export type Proto = "tcp" | "udp";

export interface PortMapping {
  proto: Proto;
  /** Host address the port is published on; 0 means every address (0.0.0.0). */
  hostIp: number;
  /** 0 until a free port has been chosen for a spec that named none (`-p 80`). */
  hostPort: number;
  containerPort: number;
}

const FORMS = "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp], e.g. -p 8080:80, -p 127.0.0.1:8080:80/udp or -p 8080-8081:80-81";

function bad(spec: string, why: string): never {
  throw new UsageError(`invalid -p "${spec}": ${why}; use ${FORMS}`);
}

function portRange(spec: string, text: string, what: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) bad(spec, `${what} "${text}" is not a port or a range of ports`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  for (const p of [lo, hi]) if (p < 1 || p > 65535) bad(spec, `${what} ${p} is outside 1-65535`);
  if (hi < lo) bad(spec, `${what} range ${text} runs backwards`);
  return [lo, hi];
}

export function parsePublish(spec: string): PortMapping[] {
  let body = spec;
  let proto: Proto = "tcp";
  const slash = spec.lastIndexOf("/");
  if (slash >= 0) {
    const p = spec.slice(slash + 1).toLowerCase();
    if (p !== "tcp" && p !== "udp") bad(spec, `unknown protocol "${spec.slice(slash + 1)}" (tcp or udp)`);
    proto = p;
    body = spec.slice(0, slash);
  }
  const parts = body.split(":");
  if (parts.length > 3) bad(spec, "too many ':'");
  let hostIp = 0;
  if (parts.length === 3) {
    const ip = parseIPv4(parts[0]!);
    if (ip === undefined) bad(spec, `"${parts[0]}" is not an IPv4 address`);
    hostIp = ip;
  }
  const containerText = parts[parts.length - 1]!;
  const hostText = parts.length >= 2 ? parts[parts.length - 2]! : "";
  if (containerText === "") bad(spec, "the container port is missing");
  const [cLo, cHi] = portRange(spec, containerText, "container port");
  if (hostText === "") {
    // `-p 80` / `-p IP::80`: free host ports are chosen when they are reserved.
    return range(cLo, cHi).map((c) => ({ proto, hostIp, hostPort: 0, containerPort: c }));
  }
  const [hLo, hHi] = portRange(spec, hostText, "host port");
  if (hHi - hLo !== cHi - cLo) {
    bad(spec, `host range ${hostText} and container range ${containerText} differ in length`);
  }
  return range(cLo, cHi).map((c, i) => ({ proto, hostIp, hostPort: hLo + i, containerPort: c }));
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** Parses every -p; the same host port twice in one run is refused. */
export function parsePublishAll(specs: string[]): PortMapping[] {
  const all = specs.flatMap(parsePublish);
  const seen = new Set<string>();
  for (const m of all) {
    if (m.hostPort === 0) continue;
    const key = `${m.proto}/${m.hostPort}`;
    if (seen.has(key)) throw new UsageError(`host port ${m.hostPort}/${m.proto} is published twice: give each -p its own host port`);
    seen.add(key);
  }
  return all;
}

export function describeMapping(m: PortMapping): string {
  return `${formatIPv4(m.hostIp)}:${m.hostPort}->${m.containerPort}/${m.proto}`;
}
