// libmnl owns the netlink socket (open, bind with an auto-assigned port id, sendto/recvfrom with
// the kernel as peer). Messages themselves are encoded in TypeScript (src/netlink).
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { KernelError } from "../src/errors/errors.ts";
import { writeFileSync } from "./fs.ts";
import {
  F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE, MFD_ALLOW_SEALING, MFD_CLOEXEC, addSeals, close, closeInKernelWorker, errno,
  memfdCreate, setReceiveTimeout, setSendBuffer, strerror,
} from "./libc.ts";

const { i32, u32, u64, i64, ptr } = FFIType;

// The executable carries its own libmnl (build.ts writes the library's bytes into the program as
// TSNET_LIBMNL, base64), so a server needs no libmnl0 package. It is loaded without touching the
// disk: written into a sealed memfd and dlopen'ed as /proc/self/fd/N. The system's libmnl.so.0 is
// the fallback (a glibc before 2.27 has no memfd_create, a root without /proc cannot name the
// memfd) and the only source when run from source. Nothing named by tsnet's environment or
// working directory is loaded: the fallback is the dynamic loader's search for the soname (which
// only LD_LIBRARY_PATH steers, as it steers the executable's own start).
declare const TSNET_LIBMNL: string | undefined;

const symbols = {
  mnl_socket_open: { args: [i32], returns: ptr },
  mnl_socket_bind: { args: [ptr, u32, i32], returns: i32 },
  mnl_socket_get_fd: { args: [ptr], returns: i32 },
  mnl_socket_get_portid: { args: [ptr], returns: u32 },
  mnl_socket_sendto: { args: [ptr, ptr, u64], returns: i64 },
  mnl_socket_recvfrom: { args: [ptr, ptr, u64], returns: i64 },
  mnl_socket_setsockopt: { args: [ptr, i32, ptr, u32], returns: i32 },
  mnl_socket_close: { args: [ptr], returns: i32 },
} as const;

function load(path: string) {
  return dlopen(path, symbols).symbols;
}

/** The embedded copy, through a memfd: the mapping stays once the fd is closed. */
function loadEmbedded(base64: string): ReturnType<typeof load> {
  const bytes = Buffer.from(base64, "base64");
  const fd = memfdCreate("libmnl.so.0", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  try {
    writeFileSync(fd, bytes);
    addSeals(fd, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, "libmnl.so.0");
    return load(`/proc/self/fd/${fd}`);
  } finally {
    close(fd);
  }
}

let lib: ReturnType<typeof load> | undefined;
function mnl() {
  if (lib !== undefined) return lib;
  let embedded: string | undefined;
  if (typeof TSNET_LIBMNL === "string") {
    try {
      return (lib = loadEmbedded(TSNET_LIBMNL));
    } catch (e) {
      embedded = e instanceof Error ? e.message : String(e);
    }
  }
  try {
    return (lib = load("libmnl.so.0"));
  } catch {
    const hint = embedded === undefined ? "install Debian's libmnl0 package" : `the embedded copy failed too (${embedded}); install Debian's libmnl0 package`;
    throw new KernelError("load", "libmnl.so.0", 2, hint);
  }
}

function fail(op: string, what: string): never {
  const e = errno();
  throw new KernelError(op, what, e, strerror(e));
}

/** A raw netlink socket on one bus, bound in the network namespace of the calling thread. */
export class MnlSocket {
  readonly fd: number;
  readonly portid: number;
  private handle: Pointer | null;

  /** groups: multicast groups to join at bind time (e.g. RTMGRP_LINK for link events). */
  constructor(bus: number, readonly what: string, timeoutMs = 5000, groups = 0) {
    const m = mnl();
    const h = m.mnl_socket_open(bus) as Pointer | null;
    if (h === null) fail("socket", what);
    this.handle = h;
    if (m.mnl_socket_bind(h, groups, 0) < 0) {
      const e = errno();
      m.mnl_socket_close(h);
      throw new KernelError("bind", what, e, strerror(e));
    }
    this.fd = m.mnl_socket_get_fd(h);
    this.portid = m.mnl_socket_get_portid(h);
    setReceiveTimeout(this.fd, timeoutMs);
  }

  /** SOL_NETLINK option with an int value (NETLINK_EXT_ACK, NETLINK_CAP_ACK, ...). */
  setOption(name: number, value: number): void {
    const b = new Int32Array([value]);
    if (mnl().mnl_socket_setsockopt(this.live(), name, b, 4) < 0) fail("setsockopt", this.what);
  }

  /** What the send buffer was raised to (0: the system's default, which passes 64 KiB). */
  private sendBuffer = 0;

  send(buf: Uint8Array, len: number): void {
    if (len > 65536 && len > this.sendBuffer) {
      setSendBuffer(this.fd, len);
      this.sendBuffer = len;
    }
    const n = Number(mnl().mnl_socket_sendto(this.live(), buf, len));
    if (n < 0) fail("sendto", this.what);
  }

  /** Returns the byte count; throws KernelError (EAGAIN after the receive timeout). */
  receive(buf: Uint8Array): number {
    const n = Number(mnl().mnl_socket_recvfrom(this.live(), buf, buf.byteLength));
    if (n < 0) fail("recvfrom", this.what);
    return n;
  }

  /** inWorker: let the kernel's unix garbage collector drop the last reference (see closeInKernelWorker). */
  close(inWorker = false): void {
    const h = this.handle;
    if (h === null) return;
    this.handle = null;
    if (inWorker) closeInKernelWorker(this.fd, () => mnl().mnl_socket_close(h));
    else mnl().mnl_socket_close(h);
  }

  private live(): Pointer {
    if (this.handle === null) throw new KernelError("use", `${this.what} (closed socket)`, 9);
    return this.handle;
  }
}
