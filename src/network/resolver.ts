// A container's DNS resolver, at 127.0.0.11:53 inside its own namespace (where Docker puts its
// embedded DNS), served by the process that manages the container (the foreground `tsnet run`
// or the supervisor), which lives exactly as long as the container does. It answers the names of
// containers on the same user networks (name, aliases, short id) from tsnet's leases, read at
// query time so names appear and disappear with their containers, and forwards every other
// question through a socket in the host's namespace, so a host resolver on loopback
// (systemd-resolved's 127.0.0.53) works as well as any other. ARCHITECTURE.md says why this and
// not a resolver on each network's gateway.
import { readFileSync, statSync } from "../../ffi/fs.ts";
import {
  RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA, TYPE_PTR, buildHeaderError, buildReply,
  answersQuestion, encodeName, messageId, parseQuestion, reverseV4, withId, type Answer,
} from "../dns/message.ts";
import { formatIp, ipBytes, parseIp, toV4, type IpAddress } from "../ip/addr.ts";
import { dnsRedirectTable } from "../nat/dns.ts";
import { createTable, openNftSocket } from "../nftables/index.ts";
import { inNetns } from "../netns/netns.ts";
import { warn } from "../errors/notice.ts";
import { loadRecord, type ContainerRecord } from "../state/containers.ts";
import { leaseDir, listLeases, type Lease } from "../state/leases.ts";
import { loadNetwork, type NetworkRecord } from "../state/networks.ts";
import { CONTAINERS_DIR } from "../state/paths.ts";

export const RESOLVER_ADDRESS = "127.0.0.11";
const TTL = 600;
const UPSTREAM_TIMEOUT_MS = 2500;

export interface ResolverConfig {
  containerId: string;
  /** Where other names go: the host's nameservers, or --dns. */
  upstream: string[];
}

export interface Resolver {
  close(): void;
}

/** The nameservers and search domains of a resolv.conf (the host's, usually). */
export function readResolvConf(path = "/etc/resolv.conf"): { nameservers: string[]; search: string[]; options: string[] } {
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {}
  const out = { nameservers: [] as string[], search: [] as string[], options: [] as string[] };
  for (const line of text.split("\n")) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === "nameserver" && rest[0] && parseIp(rest[0].split("%")[0]!)) out.nameservers.push(rest[0]);
    else if (key === "search" || key === "domain") out.search = rest;
    else if (key === "options") out.options.push(...rest);
  }
  return out;
}

// Reading the leases of each network per query would cost a file read per container; they are
// cached and re-read only when the lease directory (or the record) changes, which is a stat.
const cache = new Map<string, { mtime: number; value: unknown }>();
function cached<T>(key: string, path: string, read: () => T): T {
  let mtime = -1;
  try {
    mtime = statSync(path).mtimeMs;
  } catch {}
  const hit = cache.get(key);
  if (hit && hit.mtime === mtime && mtime !== -1) return hit.value as T;
  const value = read();
  cache.set(key, { mtime, value });
  return value;
}

function recordOf(id: string): ContainerRecord | undefined {
  return cached(`rec:${id}`, `${CONTAINERS_DIR}/${id}.json`, () => loadRecord(id));
}

function networkOf(id: string): NetworkRecord | undefined {
  const hit = cache.get(`net:${id}`);
  if (hit) return hit.value as NetworkRecord | undefined;
  const n = loadNetwork(id);
  cache.set(`net:${id}`, { mtime: 0, value: n });
  return n;
}

function leasesOf(networkId: string): Lease[] {
  return cached(`leases:${networkId}`, leaseDir(networkId), () => listLeases(networkId));
}

/**
 * The user networks the container is on. As in Docker, the default bridge network has no names:
 * containers find each other by name only on networks of their own.
 */
function namedNetworks(rec: ContainerRecord): NetworkRecord[] {
  return (rec.endpoints ?? []).map((e) => networkOf(e.networkId)).filter((n): n is NetworkRecord => !!n && !n.builtin);
}

function answerLocally(rec: ContainerRecord, name: string, type: number): { rcode: number; answers: Answer[] } | undefined {
  if (type === TYPE_PTR) {
    const bytes = reverseV4(name);
    if (!bytes) return undefined;
    const want = bytes.join(".");
    for (const n of namedNetworks(rec)) {
      const l = leasesOf(n.id).find((x) => formatIp(x.address) === want);
      if (l?.names[0]) return { rcode: RCODE_NOERROR, answers: [{ type: TYPE_PTR, ttl: TTL, data: encodeName(`${l.names[0]}.${n.name}`) }] };
    }
    return undefined;
  }
  // "web" and "web.mynet" both name container web on network mynet.
  const found: IpAddress[] = [];
  let known = false;
  for (const n of namedNetworks(rec)) {
    const suffix = `.${n.name.toLowerCase()}`;
    const short = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
    for (const l of leasesOf(n.id)) {
      if (!l.names.some((x) => x.toLowerCase() === short)) continue;
      known = true;
      found.push(l.address);
    }
  }
  if (!known) return undefined;
  const family = type === TYPE_A ? 4 : type === TYPE_AAAA ? 6 : 0;
  // A known name with no address of the asked family (or another type) is NODATA, not NXDOMAIN,
  // so clients do not go on to ask the world about it.
  const answers = found.filter((a) => a.family === family).map((a) => ({ type, ttl: TTL, data: ipBytes(a) }));
  return { rcode: RCODE_NOERROR, answers };
}

/** Upstream queries of this process, by the id they were sent with. */
interface Waiting {
  reply: (msg: Uint8Array) => void;
  originalId: number;
  query: Uint8Array;
  servers: string[];
  next: number;
  /** The server asked last: only its answer, from its port 53, is taken. */
  server?: string;
  timer: Timer;
}
const waiting = new Map<number, Waiting>();
let upstreamSocket: Promise<Bun.udp.Socket<"buffer">> | undefined;

/**
 * One UDP socket in the host's namespace carries every container's forwarded questions. Anyone
 * who can reach it (a container, through its gateway address) may send it datagrams, so an answer
 * is taken only if its id is one this process drew at random and is waiting on, it comes from the
 * server that was asked, from port 53, and it repeats the question asked (RFC 5452's checks).
 */
function upstream() {
  upstreamSocket ??= Bun.udpSocket<"buffer">({
    socket: {
      data(_s, buf, port, address) {
        const msg = new Uint8Array(buf);
        const id = messageId(msg);
        const w = waiting.get(id);
        if (!w || port !== 53 || address !== w.server || !answersQuestion(w.query, msg)) return;
        clearTimeout(w.timer);
        waiting.delete(id);
        w.reply(withId(msg, w.originalId));
      },
    },
  });
  return upstreamSocket;
}

const ID_BYTES = new Uint16Array(1);

/** A random id no waiting query has (sequential ids would let anyone guess the next one). */
function allocateId(): number {
  for (let i = 0; i < 64; i++) {
    crypto.getRandomValues(ID_BYTES);
    if (!waiting.has(ID_BYTES[0]!)) return ID_BYTES[0]!;
  }
  return -1;
}

function forward(query: Uint8Array, servers: string[], reply: (msg: Uint8Array) => void): void {
  const id = allocateId();
  if (id < 0 || servers.length === 0) {
    const err = buildHeaderError(query, RCODE_SERVFAIL);
    if (err) reply(err);
    return;
  }
  const w: Waiting = { reply, originalId: messageId(query), query: withId(query, id), servers, next: 0, timer: undefined as unknown as Timer };
  waiting.set(id, w);
  const attempt = () => {
    const server = w.servers[w.next++];
    if (server === undefined) {
      waiting.delete(id);
      const err = buildHeaderError(query, RCODE_SERVFAIL);
      if (err) w.reply(err);
      return;
    }
    w.server = server;
    w.timer = setTimeout(attempt, UPSTREAM_TIMEOUT_MS);
    // An unreachable server (ENETUNREACH at send) is skipped at once rather than waited for.
    upstream().then(
      (s) => {
        try {
          s.send(w.query, 53, server);
        } catch {
          clearTimeout(w.timer);
          attempt();
        }
      },
      () => {
        clearTimeout(w.timer);
        attempt();
      },
    );
  };
  attempt();
}

/** Answers one question: locally when it names a container, else upstream (never for internal-only containers). */
function handle(cfg: ResolverConfig, query: Uint8Array, reply: (msg: Uint8Array) => void, overTcp = false): void {
  const q = parseQuestion(query);
  const rec = recordOf(cfg.containerId);
  if (q && rec) {
    const local = answerLocally(rec, q.name, q.type);
    if (local) {
      reply(buildReply(query, q, local.rcode, local.answers));
      return;
    }
  }
  const eps = rec?.endpoints ?? [];
  // An internal network has no way out, and that includes DNS (no exfiltration by lookups).
  if (eps.length > 0 && eps.every((e) => networkOf(e.networkId)?.internal)) {
    reply(q ? buildReply(query, q, q.type === TYPE_A || q.type === TYPE_AAAA ? RCODE_NXDOMAIN : RCODE_REFUSED) : buildHeaderError(query, RCODE_REFUSED)!);
    return;
  }
  (overTcp ? forwardTcp : forward)(query, cfg.upstream, reply);
}

/** A question that came over TCP goes upstream over TCP (its answer may not fit a datagram). */
function forwardTcp(query: Uint8Array, servers: string[], reply: (msg: Uint8Array) => void): void {
  const fail = () => {
    const err = buildHeaderError(query, RCODE_SERVFAIL);
    if (err) reply(err);
  };
  const attempt = (i: number) => {
    const server = servers[i];
    if (server === undefined) return fail();
    let buf = new Uint8Array(0);
    let done = false;
    const next = () => {
      if (done) return;
      done = true;
      attempt(i + 1);
    };
    Bun.connect({
      hostname: server,
      port: 53,
      socket: {
        open(s) {
          s.write(frame(query));
          s.timeout(UPSTREAM_TIMEOUT_MS / 1000);
        },
        data(s, chunk) {
          const joined = new Uint8Array(buf.length + chunk.length);
          joined.set(buf);
          joined.set(chunk, buf.length);
          buf = joined;
          if (buf.length >= 2 && buf.length >= 2 + ((buf[0]! << 8) | buf[1]!)) {
            done = true;
            reply(buf.slice(2, 2 + ((buf[0]! << 8) | buf[1]!)));
            s.end();
          }
        },
        timeout: next,
        close: next,
        error: next,
        connectError: next,
      },
    }).catch(next);
  };
  attempt(0);
}

function frame(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(msg.length + 2);
  out[0] = msg.length >> 8;
  out[1] = msg.length & 255;
  out.set(msg, 2);
  return out;
}

/**
 * Opens the resolver's sockets inside the container's namespace (socket() lands in the calling
 * thread's namespace, and Bun creates these synchronously) on a port the kernel picks, redirects
 * 127.0.0.11:53 there (src/nat/dns.ts), and serves from this process's event loop. UDP, and TCP
 * for answers too long for a datagram.
 */
export function startResolver(nsFd: number, cfg: ResolverConfig): Resolver {
  const { udp, tcp } = inNetns(nsFd, () => {
    // TCP first: its port is known at once; the same number is free for UDP in a new namespace.
    const tcp = Bun.listen<{ buf: Uint8Array }>({
      hostname: RESOLVER_ADDRESS,
      port: 0,
      socket: {
        open(s) {
          s.data = { buf: new Uint8Array(0) };
        },
        data(s, chunk) {
          const joined = new Uint8Array(s.data.buf.length + chunk.length);
          joined.set(s.data.buf);
          joined.set(chunk, s.data.buf.length);
          s.data.buf = joined;
          // TCP frames each message with a 2-byte length.
          while (s.data.buf.length >= 2) {
            const len = (s.data.buf[0]! << 8) | s.data.buf[1]!;
            if (s.data.buf.length < 2 + len) break;
            const msg = s.data.buf.slice(2, 2 + len);
            s.data.buf = s.data.buf.slice(2 + len);
            handle(cfg, msg, (answer) => s.write(frame(answer)), true);
          }
        },
      },
    });
    const udp = Bun.udpSocket({
      hostname: RESOLVER_ADDRESS,
      port: tcp.port,
      socket: {
        data(sock, buf, port, address) {
          handle(cfg, new Uint8Array(buf), (msg) => {
            try {
              sock.send(msg, port, address);
            } catch {}
          });
        },
      },
    });
    // Closed at once: its release, which waits for an RCU grace period, is left to a kernel
    // worker (openNftSocket), and a socket kept per container would hold its buffers.
    const nft = openNftSocket();
    try {
      // The namespace is new: nothing to compare with, one batch.
      createTable(nft, dnsRedirectTable(toV4(parseIp(RESOLVER_ADDRESS)!), tcp.port));
    } catch (e) {
      tcp.stop(true);
      void udp.then((x) => x.close(), () => {});
      throw e;
    } finally {
      nft.close();
    }
    return { udp, tcp };
  });
  let closed = false;
  // Bun binds a UDP socket before its promise settles; a failure would leave names unanswered.
  const udpReady = udp.catch((e) => {
    warn(`the container's resolver cannot listen on ${RESOLVER_ADDRESS}: ${(e as Error).message}`);
    return undefined;
  });
  return {
    close() {
      if (closed) return;
      closed = true;
      tcp.stop(true);
      void udpReady.then((s) => s?.close());
    },
  };
}
