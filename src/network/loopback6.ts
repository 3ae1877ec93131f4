// [::1]:PORT of a published TCP port, relayed by the process that holds the port (a run, or the
// supervisor). IPv6 has no route_localnet: a connection to ::1 that nf_tables DNATs into a
// container is masqueraded on its way out, but br_netfilter translates the answer back to ::1 at
// the bridge, and IPv6 input then drops a packet for ::1 that came in on an interface other than
// lo (measured on 6.18; ARCHITECTURE.md, "IPv6"). Docker has docker-proxy do this for every
// published port; tsnet relays only this one address, which no kernel rule can serve. Every
// other address keeps the kernel's DNAT (the ruleset leaves ::1 out of it).
//
// The listener binds [::1]:PORT with SO_REUSEPORT, beside the [::]:PORT reservation socket
// (which has it too): the kernel gives a connection to the socket with the more specific
// address, so ::1 comes here and nothing else does.
import { formatIp, type IpAddress } from "../ip/addr.ts";
import { warn } from "../errors/notice.ts";

/** Unwritten bytes one direction holds before its source is paused (until the socket drains). */
const HIGH_WATER = 1 << 20;
/** What one direction may hold at all: past it (a source that would not pause) the pair is cut. */
const MAX_PENDING = 16 << 20;
/** Connections relayed at once; more are closed as they are accepted (each costs two fds). */
const MAX_CONNECTIONS = 512;

interface End {
  peer?: Bun.Socket<End>;
  /** Bytes for this socket that it has not taken yet. */
  out: Uint8Array;
  /** Its peer's remote has sent FIN: send FIN on this one once `out` is written (a half-close). */
  ending: boolean;
  /** Its peer is gone: close this one once `out` is written. */
  closing: boolean;
  /** FIN received from this socket's remote / sent to it; both, and the socket is done. */
  finIn: boolean;
  finOut: boolean;
  closed: boolean;
  /** A client's bytes that came before its container end was open. */
  early?: Uint8Array;
  counted?: boolean;
}

export interface Relay {
  port: number;
  close(): void;
}

function fresh(): End {
  return { out: new Uint8Array(0), ending: false, closing: false, finIn: false, finOut: false, closed: false };
}

// Bun's sockets have pause() and resume() (they stop and restart reading), which its types do
// not name.
type Pausable = { pause(): void; resume(): void };

function flush(s: Bun.Socket<End>): void {
  const d = s.data;
  if (d.closed) return;
  if (d.out.length) {
    const n = s.write(d.out);
    if (n > 0) d.out = d.out.slice(n);
  }
  if (d.out.length) return;
  // Written out: the other end may be read again.
  if (d.peer && !d.peer.data.closed) (d.peer as unknown as Pausable).resume();
  if (d.closing) return void s.end();
  // A half-close passes through as one (a client that sends its request and shuts its write
  // side still gets the whole answer), and a socket both sides have finished is closed.
  if (d.ending && !d.finOut) {
    d.finOut = true;
    s.shutdown();
  }
  if (d.finIn && d.finOut) s.end();
}

function joined(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function send(to: Bun.Socket<End>, chunk: Uint8Array): void {
  const d = to.data;
  if (d.closed) return;
  d.out = joined(d.out, chunk);
  if (d.out.length > MAX_PENDING) {
    to.terminate();
    d.peer?.terminate();
    return;
  }
  flush(to);
  // A reader slower than the other end: stop reading the other end until this one drains.
  if (d.out.length > HIGH_WATER && d.peer) (d.peer as unknown as Pausable).pause();
}

/** A fault in one connection ends that connection, never the process holding the port. */
function guarded(s: Bun.Socket<End>, fn: () => void): void {
  try {
    fn();
  } catch {
    s.terminate();
    s.data.peer?.terminate();
  }
}

function closed(s: Bun.Socket<End>): void {
  s.data.closed = true;
  const p = s.data.peer;
  if (p && !p.data.closed) {
    p.data.closing = true;
    flush(p);
  }
}

/** s's remote has sent FIN: its peer sends FIN in turn once what it holds is written. */
function finished(s: Bun.Socket<End>): void {
  s.data.finIn = true;
  const p = s.data.peer;
  if (p && !p.data.closed) {
    p.data.ending = true;
    flush(p);
  }
  if (s.data.finOut) s.end();
}

/**
 * Listens on [::1]:port and relays each connection to the container's address (IPv6 if it has
 * one, else IPv4) at containerPort. `target` is asked per connection: the address is known only
 * once the endpoint is made, and a connection before that is closed.
 */
export function relayLoopback6(port: number, containerPort: number, target: () => IpAddress | undefined): Relay {
  let open = 0;
  // What both ends of a pair do alike: write on, pass a FIN on, and end on an error.
  const either = {
    drain: (s: Bun.Socket<End>) => guarded(s, () => flush(s)),
    end: (s: Bun.Socket<End>) => guarded(s, () => finished(s)),
    error: (s: Bun.Socket<End>) => s.terminate(),
  };
  const onError = (e: unknown) => warn(`relay [::1]:${port}: ${(e as Error).message}`);
  // reusePort is honoured by Bun.listen (SO_REUSEPORT) though its types name it only for connect.
  const options: Bun.TCPSocketListenOptions<End> & { reusePort: boolean } = {
    hostname: "::1",
    port,
    reusePort: true,
    allowHalfOpen: true,
    socket: {
      open(c) {
        c.data = fresh();
        try {
          const to = target();
          if (!to || open >= MAX_CONNECTIONS) return void c.terminate();
          open++;
          c.data.counted = true;
          void Bun.connect<End>({
            hostname: formatIp(to),
            port: containerPort,
            allowHalfOpen: true,
            socket: {
              open(u) {
                // A client that has already half-closed gets its FIN passed on after its bytes.
                u.data = { ...fresh(), peer: c, out: c.data.early ?? new Uint8Array(0), ending: c.data.finIn };
                c.data.early = undefined;
                c.data.peer = u;
                if (c.data.closed) u.data.closing = true;
                // What the client sent while this connection was being made.
                guarded(u, () => flush(u));
              },
              data(u, chunk) {
                guarded(u, () => send(c, chunk));
              },
              ...either,
              close(u) {
                if (u.data) closed(u);
              },
              connectError() {
                c.terminate();
              },
            },
          }).catch(() => c.terminate());
        } catch (e) {
          onError(e);
          c.terminate();
        }
      },
      data(c, chunk) {
        guarded(c, () => {
          const u = c.data.peer;
          if (u) return send(u, chunk);
          // Held until the container end is open: the same cap applies.
          const out = (c.data.early = joined(c.data.early ?? new Uint8Array(0), chunk));
          if (out.length > MAX_PENDING) c.terminate();
          else if (out.length > HIGH_WATER) (c as unknown as Pausable).pause();
        });
      },
      ...either,
      close(c) {
        if (c.data.counted) open--;
        closed(c);
      },
    },
  };
  const server = Bun.listen<End>(options);
  return { port: server.port, close: () => server.stop(true) };
}
