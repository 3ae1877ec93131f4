// A container's DNS resolver, at 127.0.0.11:53 inside its own namespace (where Docker puts its
// embedded DNS), served by the process that manages the container (the foreground `tsnet run`
// or the supervisor), which lives exactly as long as the container does. It answers the names of
// containers on the same user networks (name, aliases, short id) from tsnet's leases, read at
// query time so names appear and disappear with their containers, and forwards every other
// question through a socket in the host's namespace, so a host resolver on loopback
// (systemd-resolved's 127.0.0.53) works as well as any other. ARCHITECTURE.md says why this and
// not a resolver on each network's gateway.
//
// The supervisor serves every detached container's resolver from one event loop, so each is
// built to be harmless to the others: what a container sends is metered (a token bucket checked
// before any parsing, a cap on queries in flight and on open TCP connections, an idle timeout),
// whatever it holds is dropped with it, every socket has an error path, and an error while
// answering one query is logged, never thrown into the event loop (which would end the process
// and every container it manages).
import { readFileSync, statSync } from "../../ffi/fs.ts";
import {
  RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_REFUSED, RCODE_SERVFAIL, TYPE_A, TYPE_AAAA, TYPE_PTR, CLASS_IN, buildReply, fitForUdp,
  answersQuestion, encodeName, messageId, reverseV4, reverseV6, screenQuery, withId, type Answer, type Question,
} from "../dns/message.ts";
import { ipBytes, ipFromBytes, parseIp, sameIp, toV4, type IpAddress } from "../ip/addr.ts";
import { dnsRedirectTable } from "../nat/dns.ts";
import { createTable, openNftSocket } from "../nftables/index.ts";
import { inNetns } from "../netns/netns.ts";
import { log, logLines, warn } from "../errors/notice.ts";
import { loadRecord, type ContainerRecord } from "../state/containers.ts";
import { leaseDir, listLeases, type Lease } from "../state/leases.ts";
import { loadNetwork, type NetworkRecord } from "../state/networks.ts";
import { CONTAINERS_DIR } from "../state/paths.ts";

export const RESOLVER_ADDRESS = "127.0.0.11";
const TTL = 600;
/** How long one upstream server is waited for before the next is asked (or SERVFAIL given). */
const UPSTREAM_TIMEOUT_MS = 2500;

/**
 * What one container may ask of its resolver. The bucket refills at RATE queries a second up to
 * BURST; a query beyond it is dropped unread (a client asks again, a flood costs one callback
 * per datagram). Queries in flight upstream hold a socket (a file descriptor) each, hence the
 * caps, per container and for the whole process; beyond them the answer is SERVFAIL.
 */
export const RESOLVER_LIMITS = {
  rate: 500,
  burst: 1000,
  inFlight: 64,
  inFlightTotal: 4096,
  tcpConnections: 16,
  tcpIdleSeconds: 10,
} as const;
/** A TCP message is at most 65,535 bytes after its 2-byte length. */
const TCP_MAX_BUFFER = 2 + 65535;
/** Internal errors logged per resolver, at most, each minute (a packet must not flood the log). */
const ERRORS_PER_MINUTE = 5;

export interface ResolverConfig {
  containerId: string;
  /** Where other names go: the host's nameservers, or --dns. */
  upstream: string[];
  /** Served by the supervisor: its log is the only place an internal error is seen, stack and all. */
  supervised?: boolean;
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

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

// Reading the leases of each network per query would cost a file read per container; they are
// cached and re-read only when the lease directory changes, which is a stat. Networks are shared
// by containers, so this cache is the process's; it is bounded (least recently used out first),
// as networks come and go over a long-lived supervisor's life. A container's own record is cached
// by its resolver, and goes with it.
const SHARED_CACHE_MAX = 256;
const shared = new Map<string, { mtime: number; value: unknown }>();
function sharedCached<T>(key: string, mtime: number, read: () => T): T {
  const hit = shared.get(key);
  if (hit && hit.mtime === mtime && mtime !== -1) {
    shared.delete(key);
    shared.set(key, hit);
    return hit.value as T;
  }
  const value = read();
  shared.delete(key);
  shared.set(key, { mtime, value });
  if (shared.size > SHARED_CACHE_MAX) shared.delete(shared.keys().next().value!);
  return value;
}

/** A network record does not change once written (its id is never reused). */
function networkOf(id: string): NetworkRecord | undefined {
  return sharedCached(`net:${id}`, 0, () => loadNetwork(id));
}

function leasesOf(networkId: string): Lease[] {
  return sharedCached(`leases:${networkId}`, mtimeOf(leaseDir(networkId)), () => listLeases(networkId));
}

/**
 * The user networks the container is on. As in Docker, the default bridge network has no names:
 * containers find each other by name only on networks of their own.
 */
function namedNetworks(rec: ContainerRecord): NetworkRecord[] {
  return (rec.endpoints ?? []).map((e) => networkOf(e.networkId)).filter((n): n is NetworkRecord => !!n && !n.builtin);
}

function answerLocally(rec: ContainerRecord, q: Question): { rcode: number; answers: Answer[] } | undefined {
  return answerFromLeases(namedNetworks(rec).map((n) => ({ name: n.name, leases: () => leasesOf(n.id) })), q);
}

/** A network whose names the container sees, and its leases (read when a question needs them). */
export interface NamedLeases {
  name: string;
  leases: () => readonly Lease[];
}

/**
 * The answer to a question about a container name, alias or address from the leases of the
 * networks the asker is on: A from IPv4 leases, AAAA from IPv6 ones (a dual-stack network leases
 * one of each under the same names), PTR for either family; undefined when no lease knows it
 * (the question goes upstream).
 */
export function answerFromLeases(nets: readonly NamedLeases[], q: Pick<Question, "name" | "type" | "qclass">): { rcode: number; answers: Answer[] } | undefined {
  if (q.qclass !== CLASS_IN) return undefined;
  const { name, type } = q;
  if (type === TYPE_PTR) {
    const bytes = reverseV4(name) ?? reverseV6(name);
    if (!bytes) return undefined;
    const want = ipFromBytes(bytes);
    for (const n of nets) {
      const l = n.leases().find((x) => sameIp(x.address, want));
      if (l?.names[0]) return { rcode: RCODE_NOERROR, answers: [{ type: TYPE_PTR, ttl: TTL, data: encodeName(`${l.names[0]}.${n.name}`) }] };
    }
    return undefined;
  }
  // "web" and "web.mynet" both name container web on network mynet.
  const found: IpAddress[] = [];
  let known = false;
  for (const n of nets) {
    const suffix = `.${n.name.toLowerCase()}`;
    const short = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
    for (const l of n.leases()) {
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

const ID_BYTES = new Uint16Array(1);

/** A query id from the kernel's CSPRNG (a guessable id is half of a forged answer). */
function randomId(): number {
  crypto.getRandomValues(ID_BYTES);
  return ID_BYTES[0]!;
}

/** Queries of every resolver of this process that hold an upstream socket now. */
let inFlightTotal = 0;

/** One container's resolver: its meters, its record, and everything it holds open. */
class ContainerResolver {
  private tokens: number = RESOLVER_LIMITS.burst;
  private refilled = performance.now();
  private inFlight = 0;
  tcpOpen = 0;
  closed = false;
  /** Ends each query in flight (its sockets, its timer), so none outlives the container. */
  readonly pending = new Set<() => void>();
  private rec?: { mtime: number; value: ContainerRecord | undefined };
  private errors = 0;
  private errorsSince = 0;

  constructor(readonly cfg: ResolverConfig) {}

  /** One token from the bucket, or false: the query is dropped unread. */
  admit(): boolean {
    if (this.closed) return false;
    const now = performance.now();
    this.tokens = Math.min(RESOLVER_LIMITS.burst, this.tokens + ((now - this.refilled) * RESOLVER_LIMITS.rate) / 1000);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /** A slot for an upstream query, or false (the caller answers SERVFAIL). */
  acquire(): boolean {
    if (this.inFlight >= RESOLVER_LIMITS.inFlight || inFlightTotal >= RESOLVER_LIMITS.inFlightTotal) return false;
    this.inFlight++;
    inFlightTotal++;
    return true;
  }

  release(): void {
    this.inFlight--;
    inFlightTotal--;
  }

  record(): ContainerRecord | undefined {
    const mtime = mtimeOf(`${CONTAINERS_DIR}/${this.cfg.containerId}.json`);
    if (this.rec && this.rec.mtime === mtime && mtime !== -1) return this.rec.value;
    this.rec = { mtime, value: loadRecord(this.cfg.containerId) };
    return this.rec.value;
  }

  /**
   * A bug met while answering: logged (the stack in the supervisor's log, or with TSNET_DEBUG),
   * at most a few a minute, and the query dropped; the process and the other containers go on.
   */
  internalError(e: unknown): void {
    try {
      const now = performance.now();
      if (now - this.errorsSince > 60_000) {
        this.errorsSince = now;
        this.errors = 0;
      }
      if (++this.errors > ERRORS_PER_MINUTE) return;
      const name = this.rec?.value?.name ?? this.cfg.containerId.slice(0, 12);
      const err = e instanceof Error ? e : new Error(String(e));
      log.error(`the resolver of container ${name}: internal error: ${err.message}`);
      if ((this.cfg.supervised || process.env.TSNET_DEBUG) && err.stack) logLines(err.stack);
    } catch {}
  }

  close(): void {
    this.closed = true;
    for (const end of [...this.pending]) end();
    this.rec = undefined;
  }
}

/**
 * Whether the container's resolver asks no server upstream: every network it is on is internal.
 * An internal network has no way out, and that includes DNS (no exfiltration by lookups).
 */
export function forwardsNothing(rec: ContainerRecord): boolean {
  const eps = rec.endpoints ?? [];
  return eps.length > 0 && eps.every((e) => networkOf(e.networkId)?.internal);
}

/** Answers one question: locally when it names a container, else upstream (never for internal-only containers). */
function handle(r: ContainerResolver, query: Uint8Array, reply: (msg: Uint8Array) => void, overTcp = false): void {
  const screened = screenQuery(query);
  if (!screened) return;
  if ("error" in screened) return reply(screened.error);
  const q = screened.question;
  // Over UDP an answer larger than the client takes goes back truncated (TC), to be asked again
  // over TCP: an upstream's, or a forged one's, 65 KB datagram never reaches a client that said 512.
  const answer = overTcp ? reply : (m: Uint8Array) => reply(fitForUdp(m, query, q));
  const rec = r.record();
  if (rec) {
    const local = answerLocally(rec, q);
    if (local) return answer(buildReply(query, q, local.rcode, local.answers));
  }
  if (rec && forwardsNothing(rec)) {
    return answer(buildReply(query, q, q.type === TYPE_A || q.type === TYPE_AAAA ? RCODE_NXDOMAIN : RCODE_REFUSED));
  }
  // SERVFAIL repeats the question: a stub resolver (glibc's) ignores an answer whose question
  // count differs from its query's, and would wait out its timeout.
  if (r.cfg.upstream.length === 0 || !r.acquire()) return answer(buildReply(query, q, RCODE_SERVFAIL));
  forward(r, query, q, overTcp, answer);
}

/**
 * Asks the upstream servers in turn, each through a socket of its own in the host's namespace,
 * made for this query and closed with it: the kernel gives it a random source port, and connecting
 * it to the server binds it to the address that reaches the server and lets only that server's
 * port 53 answer, so a forger must guess the port and a fresh random id, and repeat the question
 * (RFC 5452). An error on the socket (an ICMP port or host unreachable, which anyone on the path
 * can send) or a timeout moves on to the next server; after the last the answer is SERVFAIL.
 * A question that came over TCP goes upstream over TCP (its answer may not fit a datagram).
 */
function forward(r: ContainerResolver, query: Uint8Array, q: Question, overTcp: boolean, reply: (msg: Uint8Array) => void): void {
  const originalId = messageId(query);
  const servers = r.cfg.upstream;
  let done = false;
  let timer: Timer | undefined;
  let closeSocket: (() => void) | undefined;
  let attemptNo = -1;

  const stop = () => {
    clearTimeout(timer);
    const c = closeSocket;
    closeSocket = undefined;
    try {
      c?.();
    } catch {}
  };
  const finish = (answer: Uint8Array | undefined) => {
    if (done) return;
    done = true;
    stop();
    r.pending.delete(abandon);
    r.release();
    try {
      if (answer && !r.closed) reply(answer);
    } catch (e) {
      r.internalError(e);
    }
  };
  const abandon = () => finish(undefined);
  r.pending.add(abandon);

  const attempt = (i: number) => {
    if (done) return;
    stop();
    attemptNo = i;
    const server = servers[i];
    if (server === undefined) return finish(buildReply(query, q, RCODE_SERVFAIL));
    // These run from socket events and timers, where a throw would reach the event loop and end
    // the process: a bug is logged and ends this question alone.
    const next = () => {
      try {
        // Only the attempt in progress moves on; a late event from an earlier one is ignored.
        if (!done && attemptNo === i) attempt(i + 1);
      } catch (e) {
        r.internalError(e);
        finish(undefined);
      }
    };
    const id = randomId();
    const sent = withId(query, id);
    const accept = (msg: Uint8Array) => {
      try {
        if (done || attemptNo !== i || messageId(msg) !== id || !answersQuestion(sent, q, msg)) return;
        finish(withId(msg, originalId));
      } catch (e) {
        r.internalError(e);
        finish(undefined);
      }
    };
    timer = setTimeout(next, UPSTREAM_TIMEOUT_MS);
    try {
      closeSocket = overTcp ? askTcp(server, sent, accept, next) : askUdp(server, sent, accept, next);
    } catch {
      // A socket that cannot be made (EMFILE, an address of no family we have): the next server.
      queueMicrotask(next);
    }
  };
  attempt(0);
}

/** One datagram to server:53 from a socket of its own; returns what closes it. */
function askUdp(server: string, msg: Uint8Array, accept: (m: Uint8Array) => void, fail: () => void): () => void {
  let closed = false;
  let sock: Bun.udp.ConnectedSocket<"uint8array"> | undefined;
  const v6 = server.includes(":");
  Bun.udpSocket({
    binaryType: "uint8array",
    // Bun binds an unnamed socket for IPv4; an IPv6 server needs an IPv6 one.
    ...(v6 && { hostname: "::" }),
    connect: { hostname: server, port: 53 },
    socket: {
      // Connected: the kernel takes datagrams from server:53 alone (its scope id included, where
      // an address text compared here would not match).
      data(_s, buf) {
        accept(buf);
      },
      error() {
        fail();
      },
    },
  }).then(
    (s) => {
      sock = s;
      try {
        if (closed) s.close();
        else if (!s.send(msg)) fail();
      } catch {
        fail();
      }
    },
    () => fail(),
  );
  return () => {
    closed = true;
    sock?.close();
  };
}

/** One question to server:53 over TCP (RFC 7766 framing); returns what closes the connection. */
function askTcp(server: string, msg: Uint8Array, accept: (m: Uint8Array) => void, fail: () => void): () => void {
  let closed = false;
  let conn: Bun.Socket<undefined> | undefined;
  let buf: Uint8Array = new Uint8Array(0);
  void Bun.connect({
    hostname: server,
    port: 53,
    socket: {
      open(s) {
        conn = s;
        if (closed) return void s.terminate();
        s.write(frame(msg));
      },
      data(s, chunk) {
        buf = append(buf, chunk);
        if (buf.length > TCP_MAX_BUFFER) return void s.terminate();
        if (buf.length >= 2 && buf.length >= 2 + ((buf[0]! << 8) | buf[1]!)) accept(buf.slice(2, 2 + ((buf[0]! << 8) | buf[1]!)));
      },
      close: fail,
      error: fail,
      connectError: fail,
      end: fail,
    },
  }).catch(fail);
  return () => {
    closed = true;
    conn?.terminate();
  };
}

function append(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function frame(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(msg.length + 2);
  out[0] = msg.length >> 8;
  out[1] = msg.length & 255;
  out.set(msg, 2);
  return out;
}

/** A client's TCP connection to the resolver: what it sent so far, what is left to write to it. */
interface TcpClient {
  buf: Uint8Array;
  out: Uint8Array;
  counted: boolean;
  closed: boolean;
}

/** Writes what fits now and keeps the rest for drain; a client that reads nothing is cut off. */
function writeTcp(s: Bun.Socket<TcpClient>, msg: Uint8Array): void {
  if (s.data.closed) return;
  s.data.out = append(s.data.out, msg);
  if (s.data.out.length > 4 * TCP_MAX_BUFFER) return void s.terminate();
  const n = s.write(s.data.out);
  if (n > 0) s.data.out = s.data.out.slice(n);
}

/**
 * Opens the resolver's sockets inside the container's namespace (socket() lands in the calling
 * thread's namespace, and Bun creates these synchronously) on a port the kernel picks, redirects
 * 127.0.0.11:53 there (src/nat/dns.ts), and serves from this process's event loop. UDP, and TCP
 * for answers too long for a datagram.
 */
export function startResolver(nsFd: number, cfg: ResolverConfig): Resolver {
  const r = new ContainerResolver(cfg);
  const { udp, tcp } = inNetns(nsFd, () => {
    // TCP first: its port is known at once; the same number is free for UDP in a new namespace.
    const tcp = Bun.listen<TcpClient>({
      hostname: RESOLVER_ADDRESS,
      port: 0,
      socket: {
        open(s) {
          s.data = { buf: new Uint8Array(0), out: new Uint8Array(0), counted: false, closed: false };
          // Connections beyond the cap are closed as they are accepted: each costs the process a
          // file descriptor, and the supervisor's are shared by every container.
          if (r.closed || r.tcpOpen >= RESOLVER_LIMITS.tcpConnections) return void s.terminate();
          s.data.counted = true;
          r.tcpOpen++;
          s.timeout(RESOLVER_LIMITS.tcpIdleSeconds);
        },
        data(s, chunk) {
          try {
            s.timeout(RESOLVER_LIMITS.tcpIdleSeconds);
            s.data.buf = append(s.data.buf, chunk);
            // TCP frames each message with a 2-byte length.
            while (s.data.buf.length >= 2) {
              const len = (s.data.buf[0]! << 8) | s.data.buf[1]!;
              if (s.data.buf.length < 2 + len) break;
              const msg = s.data.buf.slice(2, 2 + len);
              s.data.buf = s.data.buf.slice(2 + len);
              if (!r.admit()) continue;
              handle(r, msg, (answer) => writeTcp(s, frame(answer)), true);
            }
          } catch (e) {
            r.internalError(e);
            s.terminate();
          }
        },
        drain(s) {
          if (s.data.out.length === 0) return;
          const n = s.write(s.data.out);
          if (n > 0) s.data.out = s.data.out.slice(n);
        },
        timeout(s) {
          s.terminate();
        },
        close(s) {
          s.data.closed = true;
          if (s.data.counted) r.tcpOpen--;
          s.data.counted = false;
        },
        error() {},
      },
    });
    const udp = Bun.udpSocket<"uint8array">({
      hostname: RESOLVER_ADDRESS,
      port: tcp.port,
      binaryType: "uint8array",
      socket: {
        data(sock, buf, port, address) {
          // The bucket first: a flood is dropped before any of it is read.
          if (!r.admit()) return;
          try {
            // A copy of its own: an answer is built from the query after this callback has returned.
            handle(r, buf.slice(), (msg) => {
              try {
                sock.send(msg, port, address);
              } catch {}
            });
          } catch (e) {
            r.internalError(e);
          }
        },
        // An ICMP error for an earlier answer (its client had gone): nothing to do.
        error() {},
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
  // Bun binds a UDP socket before its promise settles; a failure would leave names unanswered.
  const udpReady = udp.catch((e) => {
    warn(`the container's resolver cannot listen on ${RESOLVER_ADDRESS}: ${(e as Error).message}`);
    return undefined;
  });
  return {
    close() {
      if (r.closed) return;
      r.close();
      tcp.stop(true);
      void udpReady.then((s) => s?.close());
    },
  };
}
