// What a NetlinkSocket speaks through. The kernel's transport is libmnl's socket (ffi/libmnl.ts);
// a replay transport (replay.ts) answers from recorded or scripted exchanges, so everything
// above the socket (encoders, decoders, the ack and dump logic, planners that read the kernel)
// runs in a test without root, without namespaces and without a kernel.
import { MnlSocket } from "../../ffi/libmnl.ts";

export interface NetlinkTransport {
  /** The descriptor, for socket filters and polling; -1 where there is no kernel socket. */
  readonly fd: number;
  /** The port id the kernel gave the socket; replies and notifications carry it. */
  readonly portid: number;
  /** A SOL_NETLINK option with an int value. */
  setOption(name: number, value: number): void;
  /** One datagram: len bytes of buf (one or more messages). */
  send(buf: Uint8Array, len: number): void;
  /** One datagram into buf; its length. Throws KernelError EAGAIN (11) when nothing came in time. */
  receive(buf: Uint8Array): number;
  close(inWorker?: boolean): void;
}

export interface TransportOptions {
  groups?: number;
  timeoutMs?: number;
}

export type TransportFactory = (bus: number, what: string, o: TransportOptions) => NetlinkTransport;

const kernel: TransportFactory = (bus, what, o) => new MnlSocket(bus, what, o.timeoutMs ?? 5000, o.groups ?? 0);
let factory: TransportFactory = kernel;

/** A transport for a new socket: the kernel's, unless a test has put another in its place. */
export function openTransport(bus: number, what: string, o: TransportOptions): NetlinkTransport {
  return factory(bus, what, o);
}

/**
 * Makes every socket opened from now on (by code that opens its own: the host's rtnetlink, the
 * nf_tables socket) use make's transport, until the returned function restores the kernel's.
 * For tests that drive a whole layer from replayed exchanges.
 */
export function useTransport(make: TransportFactory): () => void {
  factory = make;
  return () => {
    factory = kernel;
  };
}
