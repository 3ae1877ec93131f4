// A published host port is reserved by holding a socket bound to it, as Docker does: a host
// program that tries the port later gets EADDRINUSE instead of silently losing its traffic to
// the DNAT rule, and a port some program already holds is refused before anything starts. The
// kernel closes the sockets when their holder exits, however it exits.
//
// A TCP socket listens, so `ss -ltnp`, `lsof -i` and `fuser` name tsnet as the port's holder (as
// they name docker-proxy), with a socket filter that drops every packet attached before listen():
// a SYN that reaches it (DNAT did not take it: the table flushed, say) is dropped before it could
// queue, so tsnet never accepts a connection meant for the container. An IPv6 socket is
// IPV6_V6ONLY: 0.0.0.0 and [::] are separate reservations, as Docker binds them. [::1] is the
// relay's own listener (src/network/loopback6.ts), and [::] leaves room for it (SO_REUSEPORT).
import { readdirSync, readFileSync, readlinkSync } from "../../ffi/fs.ts";
import { SOCK_DGRAM, SOCK_STREAM, attachDropAllFilter, bindInet, close } from "../../ffi/libc.ts";
import { KernelError, TsnetError } from "../errors/errors.ts";
import { EADDRINUSE, EADDRNOTAVAIL } from "../errors/errno.ts";
import { ipBytes, sameIp, type IpAddress } from "../ip/addr.ts";
import { LOOPBACK_V6, clashes, describePort, formatHostPort, isAnyAddress, type PublishedPort } from "../ip/port.ts";
import { listRecords } from "../state/containers.ts";
import { relayLoopback6, type Relay } from "./loopback6.ts";
import { notHostAddress, relayTarget } from "./publish.ts";

export interface Reservation {
  port: PublishedPort;
  /** The reserving socket; absent for [::1], which the relay's listener holds. */
  fd?: number;
  relay?: Relay;
}

/** Where a relay of [::1] sends a connection: the container's addresses, once it has them. */
export type RelayTarget = () => readonly IpAddress[];

/** The address a relayed connection goes to, asked per connection. */
function relayTo(target: RelayTarget): () => IpAddress | undefined {
  return () => relayTarget(target());
}

function hold(p: PublishedPort, port: number, target: RelayTarget): Reservation {
  const what = `host port ${formatHostPort(p.hostIp, port || 0)}/${p.proto}`;
  const v6 = p.hostIp.family === 6;
  if (sameIp(p.hostIp, LOOPBACK_V6)) {
    let relay: Relay;
    try {
      relay = relayLoopback6(port, p.containerPort, relayTo(target));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new KernelError("bind", what, EADDRINUSE);
      throw new TsnetError(`cannot listen on ${what}: ${(e as Error).message}`);
    }
    return { port: { ...p, hostPort: relay.port }, relay };
  }
  const tcp = p.proto === "tcp";
  // [::] of a TCP port: ::1 is relayed, by a listener on the same port beside this one.
  const relayed = tcp && v6 && isAnyAddress(p.hostIp);
  const { fd, port: bound } = bindInet(tcp ? SOCK_STREAM : SOCK_DGRAM, ipBytes(p.hostIp), port, what, {
    v6only: v6,
    reusePort: relayed,
    beforeListen: (fd) => attachDropAllFilter(fd, what),
    ...(tcp && { listen: 1 }),
  });
  const r: Reservation = { port: { ...p, hostPort: bound }, fd };
  if (relayed) {
    try {
      r.relay = relayLoopback6(bound, p.containerPort, relayTo(target));
    } catch (e) {
      close(fd);
      if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") throw new KernelError("bind", `host port [::1]:${bound}/tcp`, EADDRINUSE);
      throw e;
    }
  }
  return r;
}

/**
 * Binds every host port (choosing free ones for port 0); all or nothing. A port 0 published on
 * both families gets the same number on both when it is free on both, as Docker gives it.
 */
export function reservePorts(ports: readonly PublishedPort[], selfId: string, target: RelayTarget = () => []): Reservation[] {
  const held: Reservation[] = [];
  try {
    for (const p of ports) {
      try {
        if (p.hostPort === 0) {
          // The port chosen for the same request on the other family, if it is free here too.
          const twin = held.find((r) => r.port.proto === p.proto && r.port.containerPort === p.containerPort && r.port.hostIp.family !== p.hostIp.family);
          if (twin) {
            try {
              held.push(hold(p, twin.port.hostPort, target));
              continue;
            } catch (e) {
              if (!(e instanceof KernelError && e.errno === EADDRINUSE)) throw e;
            }
          }
        }
        held.push(hold(p, p.hostPort, target));
      } catch (e) {
        if (e instanceof KernelError && e.errno === EADDRINUSE) {
          throw new TsnetError(`host port ${isAnyAddress(p.hostIp) && p.hostIp.family === 4 ? p.hostPort : formatHostPort(p.hostIp, p.hostPort)}/${p.proto} is already in use by ${holderOf(p, selfId)}: publish another host port, e.g. -p ${p.hostPort + 1}:${p.containerPort}`);
        }
        if (e instanceof KernelError && e.errno === EADDRNOTAVAIL && !isAnyAddress(p.hostIp)) throw notHostAddress(p.hostIp, p);
        throw e;
      }
    }
    return held;
  } catch (e) {
    releasePorts(held);
    throw e;
  }
}

export function releasePorts(held: Reservation[]): void {
  for (const r of held) {
    if (r.fd !== undefined) close(r.fd);
    r.relay?.close();
  }
  held.length = 0;
}

/** Who holds a port: a tsnet container if one published it, else the process owning the socket. */
function holderOf(m: PublishedPort, selfId: string): string {
  const container = () => {
    for (const r of listRecords()) {
      if (r.id === selfId || r.status === "exited") continue;
      const p = r.ports?.find((x) => clashes(x, m));
      if (p) return `container "${r.name}" (${r.id.slice(0, 12)}, ${describePort(p)})`;
    }
    return undefined;
  };
  const found = container();
  if (found) return found;
  const holder = processHolding(m);
  // A tsnet process that has bound the port but not yet written it to its record (another run
  // racing for the same port): its record says so within moments.
  if (holder?.tsnet) {
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      Bun.sleepSync(10);
      const again = container();
      if (again) return again;
    }
  }
  return holder?.text ?? "another program";
}

// /proc/net/{tcp,udp}[6]: "sl local_address rem_address st ... inode"; local is HEXIP:HEXPORT.
function processHolding(m: PublishedPort): { text: string; tsnet: boolean } | undefined {
  const inodes = new Set<string>();
  for (const file of [`/proc/net/${m.proto}`, `/proc/net/${m.proto}6`]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (!local || Number.parseInt(local.split(":")[1] ?? "", 16) !== m.hostPort) continue;
      if (cols[9] && cols[9] !== "0") inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode && inodes.has(inode)) {
        const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
        let tsnet = false;
        try {
          tsnet = readlinkSync(`/proc/${pid}/exe`) === readlinkSync("/proc/self/exe");
        } catch {}
        return { text: `${comm} (pid ${pid})`, tsnet };
      }
    }
  }
  return undefined;
}
