// Published ports: `-p` specs parsed into one request per host port, then resolved against the
// network into the one port model (src/ip/port.ts). Ranges expand here, so every later layer
// (reservation, nf_tables map elements, inspect) handles single ports only.
import { UsageError } from "../errors/errors.ts";
import { formatIp, parseIp, type IpAddress } from "../ip/addr.ts";
import { ANY_V4, ANY_V6, describePort, type Proto, type PublishedPort } from "../ip/port.ts";

/**
 * A `-p` as given: without an address, it publishes on the network's host addresses
 * (0.0.0.0, or its host_binding_ipv4; and :: on a dual-stack network). It travels to the
 * supervisor and into a detached container's .spec as JSON, so its address is the address's
 * canonical text; resolvePorts makes it the port model once the network is known.
 */
export interface PortRequest {
  proto: Proto;
  /** The address the spec named (canonical text: "127.0.0.1", "::1"); absent: the network's. */
  hostIp?: string;
  /** 0 until a free port has been chosen (`-p 80`). */
  hostPort: number;
  containerPort: number;
}

const FORMS = "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp], e.g. -p 8080:80, -p 127.0.0.1:8080:80/udp, -p [::1]:8080:80 or -p 8080-8081:80-81";

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

/**
 * `PORT[-PORT][/proto]` (`--expose`, and the filters of ps): the ports and their protocol.
 * `flag` names what gave it in an error ("--expose", "--filter publish="), as it is written.
 */
export function parsePortRange(text: string, flag: string): { proto: Proto; lo: number; hi: number } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp))?$/i.exec(text);
  const sep = flag.endsWith("=") ? "" : " ";
  const use = `give PORT[-PORT][/tcp|/udp], e.g. ${flag}${sep}8080 or ${flag}${sep}9000-9010/udp`;
  const shown = `${flag}${sep}"${text}"`;
  if (!m) throw new UsageError(`invalid ${shown}: ${use}`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || hi < lo) throw new UsageError(`invalid ${shown}: ports run from 1 to 65535, low to high; ${use}`);
  return { proto: (m[3]?.toLowerCase() ?? "tcp") as Proto, lo, hi };
}

export function parsePublish(spec: string): PortRequest[] {
  let body = spec;
  let proto: Proto = "tcp";
  const slash = spec.lastIndexOf("/");
  if (slash >= 0) {
    const p = spec.slice(slash + 1).toLowerCase();
    if (p !== "tcp" && p !== "udp") bad(spec, `unknown protocol "${spec.slice(slash + 1)}" (tcp or udp)`);
    proto = p;
    body = spec.slice(0, slash);
  }
  let hostIp: string | undefined;
  // An IPv6 host address is written in brackets, as in a URL: [::1]:8080:80.
  if (body.startsWith("[")) {
    const close = body.indexOf("]");
    if (close < 0) bad(spec, `"[" opens an IPv6 address that no "]" closes`);
    const text = body.slice(1, close);
    const a = parseIp(text);
    if (!a || a.family !== 6) bad(spec, `"${text}" is not an IPv6 address`);
    if (body[close + 1] !== ":") bad(spec, `the address [${text}] must be followed by ":HOST_PORT:CONTAINER_PORT"`);
    hostIp = formatIp(a);
    body = body.slice(close + 2);
    if (body.split(":").length !== 2) bad(spec, `after [${text}] give HOST_PORT:CONTAINER_PORT (HOST_PORT may be empty)`);
  }
  const parts = body.split(":");
  if (parts.length > 3) bad(spec, "too many ':' (an IPv6 address goes in brackets: [::1]:8080:80)");
  if (parts.length === 3) {
    const ip = parseIp(parts[0]!);
    if (ip === undefined || ip.family !== 4) bad(spec, `"${parts[0]}" is not an IPv4 address`);
    hostIp = formatIp(ip);
    parts.shift();
  }
  const containerText = parts[parts.length - 1]!;
  const hostText = parts.length >= 2 ? parts[parts.length - 2]! : "";
  if (containerText === "") bad(spec, "the container port is missing");
  const [cLo, cHi] = portRange(spec, containerText, "container port");
  const at = hostIp ? { hostIp } : {};
  if (hostText === "") {
    // `-p 80` / `-p IP::80`: free host ports are chosen when they are reserved.
    return range(cLo, cHi).map((c) => ({ proto, ...at, hostPort: 0, containerPort: c }));
  }
  const [hLo, hHi] = portRange(spec, hostText, "host port");
  if (hHi - hLo !== cHi - cLo) {
    bad(spec, `host range ${hostText} and container range ${containerText} differ in length`);
  }
  return range(cLo, cHi).map((c, i) => ({ proto, ...at, hostPort: hLo + i, containerPort: c }));
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

/** Parses every -p; the same host port twice in one run is refused. */
export function parsePublishAll(specs: string[]): PortRequest[] {
  const all = specs.flatMap(parsePublish);
  all.forEach((m, i) => {
    if (m.hostPort === 0) return;
    // Without an address a request takes every address, so it meets any other on its port.
    const twice = all.slice(0, i).some((o) => o.proto === m.proto && o.hostPort === m.hostPort && (!o.hostIp || !m.hostIp || o.hostIp === m.hostIp));
    if (twice) throw new UsageError(`host port ${m.hostPort}/${m.proto} is published twice: give each -p its own host port`);
  });
  return all;
}

/** What a network gives a port request that names no address. */
export interface HostAddresses {
  /** Dual stack: the network has IPv6 (its containers an IPv6 address). */
  ipv6: boolean;
  /** com.docker.network.bridge.host_binding_ipv4: the IPv4 address instead of 0.0.0.0. */
  hostBindingIpv4?: IpAddress;
}

/**
 * The ports a run publishes: a request with an address as it is; one without on 0.0.0.0 (or the
 * network's host_binding_ipv4) and, on a dual-stack network, on :: too, as Docker 27 does.
 */
export function resolvePorts(requests: readonly PortRequest[], net: HostAddresses): PublishedPort[] {
  const out: PublishedPort[] = [];
  for (const { hostIp, ...r } of requests) {
    if (hostIp !== undefined) {
      const a = parseIp(hostIp);
      if (!a) throw new UsageError(`invalid -p host address "${hostIp}": give an IPv4 address, or an IPv6 one in brackets`);
      out.push({ ...r, hostIp: a });
      continue;
    }
    out.push({ ...r, hostIp: net.hostBindingIpv4 ?? ANY_V4 });
    if (net.ipv6) out.push({ ...r, hostIp: ANY_V6 });
  }
  return out;
}

export function describeRequest(r: PortRequest): string {
  const a = r.hostIp === undefined ? undefined : parseIp(r.hostIp);
  return a ? describePort({ ...r, hostIp: a }) : `${r.hostPort}->${r.containerPort}/${r.proto}`;
}
