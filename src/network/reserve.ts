// A published host port is reserved by holding a socket bound to it, as Docker does: a host
// program that tries the port later gets EADDRINUSE instead of silently losing its traffic to
// the DNAT rule, and a port some program already holds is refused before anything starts. The
// kernel closes the sockets when their holder exits, however it exits.
import { readdirSync, readFileSync, readlinkSync } from "../../ffi/fs.ts";
import { SOCK_DGRAM, SOCK_STREAM, attachDropAllFilter, bindInet, close } from "../../ffi/libc.ts";
import { KernelError, TsnetError } from "../errors/errors.ts";
import { EADDRINUSE, EADDRNOTAVAIL } from "../errors/errno.ts";
import { formatIPv4 } from "../ip/ipv4.ts";
import { listRecords } from "../state/containers.ts";
import { describeMapping, type PortMapping } from "./ports.ts";

export interface Reservation {
  mapping: PortMapping;
  fd: number;
}

/** Binds every host port (choosing free ones for port 0); all or nothing. */
export function reservePorts(mappings: PortMapping[], selfId: string): Reservation[] {
  const held: Reservation[] = [];
  try {
    for (const m of mappings) {
      const what = `host port ${m.hostPort || "(any)"}/${m.proto}`;
      try {
        const { fd, port } = bindInet(m.proto === "tcp" ? SOCK_STREAM : SOCK_DGRAM, m.hostIp, m.hostPort, what);
        held.push({ mapping: { ...m, hostPort: port }, fd });
        if (m.proto === "udp") attachDropAllFilter(fd, what);
      } catch (e) {
        if (e instanceof KernelError && e.errno === EADDRINUSE) {
          throw new TsnetError(`host port ${m.hostPort}/${m.proto} is already in use by ${holderOf(m, selfId)}: publish another host port, e.g. -p ${m.hostPort + 1}:${m.containerPort}`);
        }
        if (e instanceof KernelError && e.errno === EADDRNOTAVAIL && m.hostIp) {
          throw new TsnetError(`cannot publish on ${formatIPv4(m.hostIp)}: it is not an address of this host: give one of the host's addresses, or none for every address (-p ${m.hostPort || ""}${m.hostPort ? ":" : ""}${m.containerPort})`);
        }
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
  for (const r of held) close(r.fd);
  held.length = 0;
}

/** Who holds a port: a tsnet container if one published it, else the process owning the socket. */
function holderOf(m: PortMapping, selfId: string): string {
  const container = () => {
    for (const r of listRecords()) {
      if (r.id === selfId || r.status === "exited") continue;
      const p = r.ports?.find((x) => x.proto === m.proto && x.hostPort === m.hostPort);
      if (p) return `container "${r.name}" (${r.id.slice(0, 12)}, ${describeMapping(p)})`;
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
function processHolding(m: PortMapping): { text: string; tsnet: boolean } | undefined {
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
