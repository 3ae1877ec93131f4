// The only doorway to libc. Every wrapper reads errno right after the call, in the same
// synchronous frame (nothing else can run in between), and turns a failure into a KernelError.
import { dlopen, FFIType, read, ptr as addressOf, CString, type FFIFunction, type Pointer } from "bun:ffi";
import { KernelError } from "../src/errors/errors.ts";
import { EINVAL } from "../src/errors/errno.ts";

const { i32, u32, u64, i64, ptr, cstring } = FFIType;

// dlopen compiles a trampoline for every symbol it is given (about 20 us each, measured), so libc
// is opened in groups, each on its first call: a command pays for the calls it makes (a CNI DEL
// needs 6 of these 22).
export function group<T extends Record<string, FFIFunction>>(symbols: T): () => ReturnType<typeof dlopen<T>>["symbols"] {
  let opened: ReturnType<typeof dlopen<T>>["symbols"] | undefined;
  return () => (opened ??= dlopen("libc.so.6", symbols).symbols);
}
// What every command that speaks netlink needs (sockets get SO_RCVTIMEO; errors read errno).
const core = group({
  setns: { args: [i32, i32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, ptr, u32], returns: i32 },
  open: { args: [ptr, i32, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  strerror: { args: [i32], returns: cstring },
  __errno_location: { args: [], returns: ptr },
});
const namespaces = group({
  unshare: { args: [i32], returns: i32 },
  mount: { args: [ptr, ptr, ptr, u64, ptr], returns: i32 },
  umount2: { args: [ptr, i32], returns: i32 },
  sethostname: { args: [ptr, u64], returns: i32 },
  chroot: { args: [ptr], returns: i32 },
  fchdir: { args: [i32], returns: i32 },
});
const locks = group({ flock: { args: [i32, i32], returns: i32 } });
const processes = group({
  geteuid: { args: [], returns: u32 },
  kill: { args: [i32, i32], returns: i32 },
  prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
  waitpid: { args: [i32, ptr, i32], returns: i32 },
  waitid: { args: [i32, i32, ptr, i32], returns: i32 },
  signal: { args: [i32, u64], returns: u64 },
  sysconf: { args: [i32], returns: i64 },
});
const sockets = group({
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, ptr, u32], returns: i32 },
  getsockname: { args: [i32, ptr, ptr], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
});
const passing = group({
  socketpair: { args: [i32, i32, i32, ptr], returns: i32 },
  sendmsg: { args: [i32, ptr, i32], returns: i64 },
});
// glibc 2.27 and newer; an older one fails this group's dlopen (libmnl.ts then uses the system's copy).
const memfd = group({
  memfd_create: { args: [ptr, u32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
});
const inotify = group({
  inotify_init1: { args: [i32], returns: i32 },
  inotify_add_watch: { args: [i32, ptr, u32], returns: i32 },
});

// Kernel constants (sched.h, sys/mount.h, fcntl.h, sys/file.h, sys/socket.h) under their C names.
export const CLONE_NEWNS = 0x00020000, CLONE_FS = 0x00000200, CLONE_NEWUTS = 0x04000000, CLONE_NEWNET = 0x40000000;
export const MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_BIND = 4096, MS_REC = 16384, MS_PRIVATE = 262144, MS_SLAVE = 524288,
  MS_SHARED = 1048576;
export const MNT_DETACH = 2;
export const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 64, O_EXCL = 128, O_TRUNC = 512,
  O_NOCTTY = 256, O_APPEND = 1024, O_NONBLOCK = 2048, O_CLOEXEC = 524288;
/** Never follow a symbolic link in the last component. arm64 has its own value (asm/fcntl.h). */
export const O_NOFOLLOW = process.arch === "arm64" ? 0o100000 : 0o400000;
/** An fd that only names a place (for fchdir, or a bind mount's source through /proc); the same on x86-64 and arm64. */
export const O_PATH = 0o10000000;
/** Fail unless a directory; arm64's value differs too. */
export const O_DIRECTORY = process.arch === "arm64" ? 0o40000 : 0o200000;
export const LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
export const SOL_SOCKET = 1, SO_RCVTIMEO = 20, SO_RCVBUF = 8, SO_SNDBUF = 7, SO_SNDBUFFORCE = 32, SO_ATTACH_FILTER = 26;
export const AF_INET = 2, AF_INET6 = 10, SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_CLOEXEC = 524288;
export const SO_REUSEPORT = 15, IPPROTO_IPV6 = 41, IPV6_V6ONLY = 26;

export function errno(): number {
  const p = core().__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

export function strerror(e: number): string {
  return String(core().strerror(e));
}

/** NUL-terminated copy of a JS string; the caller keeps it referenced for the call's duration. */
export function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

function fail(op: string, object: string): never {
  const e = errno();
  throw new KernelError(op, object, e, strerror(e));
}

function check(rc: number, op: string, object: string): number {
  if (rc < 0) fail(op, object);
  return rc;
}

export function unshare(flags: number, what = "namespace"): void {
  check(namespaces().unshare(flags), "unshare", what);
}

export function setns(fd: number, nstype: number, what = "namespace"): void {
  check(core().setns(fd, nstype), "setns", what);
}

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data?: string): void {
  const s = source === null ? null : cstr(source);
  const t = cstr(target);
  const f = fstype === null ? null : cstr(fstype);
  const d = data === undefined ? null : cstr(data);
  check(namespaces().mount(s, t, f, flags, d), "mount", target);
}

/** chroot(".") after fchdir(fd): makes the directory behind fd the calling thread's root. */
export function chrootTo(fd: number, what: string): void {
  check(namespaces().fchdir(fd), "fchdir", what);
  check(namespaces().chroot(cstr(".")), "chroot", what);
}

export function fchdir(fd: number, what: string): void {
  check(namespaces().fchdir(fd), "fchdir", what);
}

export function umount2(target: string, flags: number): void {
  check(namespaces().umount2(cstr(target), flags), "umount", target);
}

export function open(path: string, flags: number, mode = 0o644): number {
  return check(core().open(cstr(path), flags | O_CLOEXEC, mode), "open", path);
}

export function close(fd: number): void {
  core().close(fd);
}

export function flock(fd: number, op: number, what: string): void {
  check(locks().flock(fd, op), "flock", what);
}

/** flock(LOCK_EX|LOCK_NB): false when another open file description holds the lock. */
export function tryLock(fd: number, what: string): boolean {
  if (locks().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const e = errno();
  if (e === 11) return false;
  throw new KernelError("flock", what, e, strerror(e));
}

/** SO_RCVTIMEO: a netlink read never blocks forever if the kernel stays silent. */
export function setReceiveTimeout(fd: number, ms: number): void {
  const tv = new BigInt64Array([BigInt(Math.floor(ms / 1000)), BigInt((ms % 1000) * 1000)]);
  check(core().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16), "setsockopt", "SO_RCVTIMEO");
}

/**
 * Lets one sendmsg on fd carry `bytes`: a netlink message (an nf_tables transaction with thousands
 * of port elements) larger than the socket's send buffer fails with EMSGSIZE, and a transaction
 * cannot be split across writes. SO_SNDBUFFORCE (CAP_NET_ADMIN) passes net.core.wmem_max;
 * SO_SNDBUF, capped by it, is the fallback. The kernel doubles the value for its bookkeeping.
 */
export function setSendBuffer(fd: number, bytes: number): void {
  const v = new Int32Array([bytes]);
  if (core().setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, v, 4) === 0) return;
  check(core().setsockopt(fd, SOL_SOCKET, SO_SNDBUF, v, 4), "setsockopt", "SO_SNDBUF");
}

/** Sets the hostname of the calling thread's UTS namespace. */
export function sethostname(name: string): void {
  const b = Buffer.from(name, "utf8");
  check(namespaces().sethostname(b, b.length), "sethostname", name);
}

export function geteuid(): number {
  return processes().geteuid();
}

export const PR_SET_CHILD_SUBREAPER = 36;
export const WNOHANG = 1;

/** kill(2); false when the process is gone (ESRCH). */
export function kill(pid: number, signal: number): boolean {
  if (processes().kill(pid, signal) === 0) return true;
  const e = errno();
  if (e === 3) return false;
  throw new KernelError("kill", `process ${pid}`, e, strerror(e));
}

/**
 * Orphaned descendants are re-parented to this process instead of to init. False when the call is
 * refused with EINVAL: a kernel before 3.4, or qemu-user, which answers it without asking the kernel.
 */
export function becomeSubreaper(): boolean {
  if (processes().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) === 0) return true;
  const e = errno();
  if (e === EINVAL) return false;
  throw new KernelError("prctl", "PR_SET_CHILD_SUBREAPER", e, strerror(e));
}

// sys/mman.h, fcntl.h (F_LINUX_SPECIFIC_BASE 1024 + 9); the same on x86_64 and arm64.
export const MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
export const F_ADD_SEALS = 1033, F_SEAL_SEAL = 1, F_SEAL_SHRINK = 2, F_SEAL_GROW = 4, F_SEAL_WRITE = 8;

/** An anonymous file in memory (memfd_create), named `name` in /proc/PID/maps and fd links. */
export function memfdCreate(name: string, flags: number): number {
  return check(memfd().memfd_create(cstr(name), flags), "memfd_create", name);
}

/** fcntl(F_ADD_SEALS): after F_SEAL_WRITE|F_SEAL_SHRINK|F_SEAL_GROW nobody can change the file. */
export function addSeals(fd: number, seals: number, what: string): void {
  check(memfd().fcntl(fd, F_ADD_SEALS, seals), "fcntl F_ADD_SEALS", what);
}

/** Reaps one exited child without blocking; returns its pid, or 0 when it has not exited. */
export function reapChild(pid: number): number {
  const status = new Int32Array(1);
  return processes().waitpid(pid, status, WNOHANG);
}

// waitid(2) (sys/wait.h): idtype P_ALL, options WEXITED | WNOHANG | WNOWAIT.
export const P_ALL = 0, WEXITED = 4, WNOWAIT = 0x01000000;
// siginfo_t as waitid fills it (x86_64 and arm64 alike):
// | si_signo i32 | si_errno i32 | si_code i32 | pad i32 | si_pid i32 @16 | si_uid u32 | si_status i32 |
const siginfo = new Int32Array(32);

/**
 * The pid of one exited child that nobody has reaped yet, leaving it reapable (WNOWAIT); 0 when
 * there is none. The kernel offers the first such child it finds, in the order children came.
 */
export function peekExitedChild(): number {
  siginfo.fill(0);
  if (processes().waitid(P_ALL, 0, siginfo, WEXITED | WNOHANG | WNOWAIT) < 0) return 0; // ECHILD: no children
  return siginfo[4]!;
}

/** SIG_IGN for a signal Bun cannot handle, so that it does not kill tsnet. Bun.spawn gives its
 * children every signal back at its default. */
export function ignoreSignal(sig: number): void {
  processes().signal(sig, 1); // SIG_IGN is (void (*)(int)) 1
}

const _SC_ARG_MAX = 0, _SC_CLK_TCK = 2;
/** 3/4 of _STK_LIM: the kernel never allows more for arguments and environment (fs/exec.c). */
const ARG_MAX_CEILING = 6 * 1024 * 1024;

/** Bytes of arguments and environment execve accepts: a quarter of the stack limit (glibc's
 * sysconf), capped as the kernel caps it. */
export function argMax(): number {
  return Math.min(Number(processes().sysconf(_SC_ARG_MAX)), ARG_MAX_CEILING);
}

/** Clock ticks per second, the unit of the CPU times in /proc/PID/stat. */
export function clockTicks(): number {
  return Number(processes().sysconf(_SC_CLK_TCK));
}

// struct sockaddr_in: | family u16 (host order) | port u16 (network order) | addr u32 (network) | zero[8] |
function sockaddrIn(address: number, port: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET, true);
  v.setUint16(2, port, false);
  v.setUint32(4, address, false);
  return b;
}

// struct sockaddr_in6: | family u16 (host order) | port u16 (network order) | flowinfo u32 |
//                      addr[16] (network order) | scope_id u32 |
function sockaddrIn6(address: Uint8Array, port: number): Uint8Array {
  const b = new Uint8Array(28);
  const v = new DataView(b.buffer);
  v.setUint16(0, AF_INET6, true);
  v.setUint16(2, port, false);
  b.set(address, 8);
  return b;
}

export interface BindOptions {
  /** IPv6 only (IPV6_V6ONLY): [::] then leaves 0.0.0.0 to its own socket, as Docker binds them. */
  v6only?: boolean;
  /** SO_REUSEPORT before bind: another socket of this uid may take a more specific address. */
  reusePort?: boolean;
  /** Runs between bind and listen (a socket filter must be in place before the first SYN). */
  beforeListen?: (fd: number) => void;
  /** listen(2) with this backlog once bound (TCP). */
  listen?: number;
}

/**
 * A socket bound to address:port, an IPv4 address (4 bytes) or an IPv6 one (16), port 0: the
 * kernel picks a free one. Returns the fd and the port actually bound. Holding it is what
 * reserves the port, as Docker does for published ports.
 */
export function bindInet(type: number, address: Uint8Array, port: number, what: string, o: BindOptions = {}): { fd: number; port: number } {
  const v6 = address.length === 16;
  const fd = check(sockets().socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0), "socket", what);
  try {
    const one = new Int32Array([1]);
    if (v6 && o.v6only) check(core().setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4), "setsockopt IPV6_V6ONLY", what);
    if (o.reusePort) check(core().setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, one, 4), "setsockopt SO_REUSEPORT", what);
    const sa = v6 ? sockaddrIn6(address, port) : sockaddrIn(new DataView(address.buffer, address.byteOffset).getUint32(0, false), port);
    check(sockets().bind(fd, sa, sa.length), "bind", what);
    const got = new Uint8Array(sa.length);
    const len = new Uint32Array([sa.length]);
    check(sockets().getsockname(fd, got, len), "getsockname", what);
    o.beforeListen?.(fd);
    if (o.listen !== undefined) check(sockets().listen(fd, o.listen), "listen", what);
    return { fd, port: new DataView(got.buffer).getUint16(2, false) };
  } catch (e) {
    core().close(fd);
    throw e;
  }
}

// Classic BPF program of one instruction, `ret #0`: every packet is dropped before it queues on
// the socket. struct sock_filter: | code u16 | jt u8 | jf u8 | k u32 |  (BPF_RET|BPF_K = 6).
const DROP_ALL = new Uint8Array([6, 0, 0, 0, 0, 0, 0, 0]);
// struct sock_fprog: | len u16 | pad[6] | filter pointer u64 |; DROP_ALL lives as long as the module.
const DROP_ALL_PROG = (() => {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, 1, true);
  v.setBigUint64(8, BigInt(addressOf(DROP_ALL)), true);
  return b;
})();

/**
 * Attaches a classic BPF program (struct sock_filter[]: | code u16 | jt u8 | jf u8 | k u32 |,
 * host order) to a socket. The kernel copies it during the call.
 */
export function attachSocketFilter(fd: number, program: Uint8Array, what: string): void {
  const prog = new Uint8Array(16);
  const v = new DataView(prog.buffer);
  v.setUint16(0, program.byteLength / 8, true);
  v.setBigUint64(8, BigInt(addressOf(program)), true);
  check(core().setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, prog, 16), "setsockopt SO_ATTACH_FILTER", what);
}

/** A reserved UDP port must not collect datagrams nobody reads. */
export function attachDropAllFilter(fd: number, what: string): void {
  check(core().setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, DROP_ALL_PROG, 16), "setsockopt SO_ATTACH_FILTER", what);
}

const AF_UNIX = 1, SCM_RIGHTS = 1, MSG_DONTWAIT = 0x40;

/**
 * Closes fd with its last reference dropped by the kernel's unix-socket garbage collector, a
 * worker thread, instead of by this process. For a socket whose release blocks (an nf_tables
 * socket after a commit waits for an RCU grace period, 6-30 ms here) this takes the wait off
 * the caller and off its exit, with no process of ours involved.
 *
 * How: a unix datagram pair (a, b); one message on a carries SCM_RIGHTS [b, fd], so b's own
 * queue holds b and fd. Then fd, b and a are closed: b is reachable only from itself, a cycle
 * that only the garbage collector frees, and it frees fd with it (within milliseconds, measured
 * in /proc/net/netlink). Where the collector runs inline (kernels before its rework into a work
 * item), the close costs what a plain close costs. On any failure fd is simply closed.
 *
 * closeFd closes fd itself (a library may own the descriptor); it runs after fd is in flight and
 * before b and a are closed, so the collector can never find the cycle while fd is still open.
 */
export function closeInKernelWorker(fd: number, closeFd: () => void): void {
  const pair = new Int32Array(2);
  if (passing().socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair) < 0) return closeFd();
  const [a, b] = [pair[0]!, pair[1]!];
  // struct cmsghdr: | cmsg_len u64 | cmsg_level i32 | cmsg_type i32 | int fds[2] |  (CMSG_LEN 24)
  const control = new Uint8Array(24);
  const c = new DataView(control.buffer);
  c.setBigUint64(0, 24n, true);
  c.setInt32(8, SOL_SOCKET, true);
  c.setInt32(12, SCM_RIGHTS, true);
  c.setInt32(16, b, true);
  c.setInt32(20, fd, true);
  // struct iovec: | base ptr | len u64 |, one byte: a datagram with no data may carry no rights.
  const byte = new Uint8Array(1);
  const iov = new Uint8Array(16);
  const v = new DataView(iov.buffer);
  v.setBigUint64(0, BigInt(addressOf(byte)), true);
  v.setBigUint64(8, 1n, true);
  // struct msghdr: | name ptr | namelen u32 + pad | iov ptr | iovlen u64 | control ptr | controllen u64 | flags i32 + pad |
  const msg = new Uint8Array(56);
  const m = new DataView(msg.buffer);
  m.setBigUint64(16, BigInt(addressOf(iov)), true);
  m.setBigUint64(24, 1n, true);
  m.setBigUint64(32, BigInt(addressOf(control)), true);
  m.setBigUint64(40, 24n, true);
  passing().sendmsg(a, msg, MSG_DONTWAIT);
  closeFd();
  core().close(b);
  core().close(a);
}

export type { Pointer };
export { CString };


// sys/inotify.h
export const IN_MODIFY = 0x2, IN_Q_OVERFLOW = 0x4000;
const IN_NONBLOCK = 0o4000, IN_CLOEXEC = 0o2000000;

/**
 * An inotify instance watching `dir` for writes to the files in it (IN_MODIFY), non-blocking.
 * Its fd reads as a stream of struct inotify_event:
 *   | wd i32 | mask u32 | cookie u32 | len u32 | name[len] (NUL-padded) |
 */
export function watchWrites(dir: string): number {
  const fd = check(inotify().inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1", dir);
  if (inotify().inotify_add_watch(fd, cstr(dir), IN_MODIFY) < 0) {
    const e = errno();
    core().close(fd);
    throw new KernelError("inotify_add_watch", dir, e, strerror(e));
  }
  return fd;
}

// The caller's terminal, for `-t` (termios.h, sys/ioctl.h, poll.h). The pseudo-terminal the
// command gets is Bun.spawn's own (`terminal`), which makes it the child's controlling terminal;
// these calls only touch the terminal tsnet was started on.
const terminals = group({
  isatty: { args: [i32], returns: i32 },
  tcgetattr: { args: [i32, ptr], returns: i32 },
  tcsetattr: { args: [i32, i32, ptr], returns: i32 },
  cfmakeraw: { args: [ptr], returns: FFIType.void },
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  poll: { args: [ptr, u64, i32], returns: i32 },
});

export const TCSANOW = 0;
/** The same request number on x86_64 and arm64 (asm-generic/ioctls.h). */
export const TIOCGWINSZ = 0x5413;
export const POLLOUT = 0x4;
/** glibc's struct termios is 60 bytes on both architectures; a little room to spare. */
const TERMIOS_SIZE = 64;

export function isatty(fd: number): boolean {
  return terminals().isatty(fd) === 1;
}

/** The terminal's settings as opaque bytes (struct termios), to give back unchanged later. */
export function getTermios(fd: number): Uint8Array {
  const t = new Uint8Array(TERMIOS_SIZE);
  check(terminals().tcgetattr(fd, t), "tcgetattr", `fd ${fd}`);
  return t;
}

export function setTermios(fd: number, t: Uint8Array): void {
  check(terminals().tcsetattr(fd, TCSANOW, t), "tcsetattr", `fd ${fd}`);
}

/** The settings with cfmakeraw's changes: no echo, no line editing, no signals from keys, 8 bits. */
export function rawTermios(t: Uint8Array): Uint8Array {
  const raw = t.slice();
  terminals().cfmakeraw(raw);
  return raw;
}

// struct winsize: | ws_row u16 | ws_col u16 | ws_xpixel u16 | ws_ypixel u16 |
/** The terminal's window size, or undefined when fd is no terminal. */
export function windowSize(fd: number): { rows: number; cols: number } | undefined {
  const ws = new Uint16Array(4);
  if (terminals().ioctl(fd, TIOCGWINSZ, ws) < 0) return undefined;
  return { rows: ws[0]!, cols: ws[1]! };
}

// struct pollfd: | fd i32 | events i16 | revents i16 |
/** Waits until fd takes more bytes (a non-blocking descriptor that said EAGAIN). */
export function waitWritable(fd: number): void {
  const p = new Int32Array(2);
  p[0] = fd;
  p[1] = POLLOUT;
  terminals().poll(p, 1, -1);
}
