// Every Linux errno (asm-generic/errno-base.h and errno.h, the same numbers on x86_64 and arm64),
// and the kernel-internal codes above 511 (include/linux/errno.h) that a netlink ack can still
// carry, mapped to their names: an error line says "EXFULL", never "errno 54".
const NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
  9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
  16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
  23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
  30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EDEADLK",
  36: "ENAMETOOLONG", 37: "ENOLCK", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 42: "ENOMSG",
  43: "EIDRM", 44: "ECHRNG", 45: "EL2NSYNC", 46: "EL3HLT", 47: "EL3RST", 48: "ELNRNG",
  49: "EUNATCH", 50: "ENOCSI", 51: "EL2HLT", 52: "EBADE", 53: "EBADR", 54: "EXFULL", 55: "ENOANO",
  56: "EBADRQC", 57: "EBADSLT", 59: "EBFONT", 60: "ENOSTR", 61: "ENODATA", 62: "ETIME",
  63: "ENOSR", 64: "ENONET", 65: "ENOPKG", 66: "EREMOTE", 67: "ENOLINK", 68: "EADV", 69: "ESRMNT",
  70: "ECOMM", 71: "EPROTO", 72: "EMULTIHOP", 73: "EDOTDOT", 74: "EBADMSG", 75: "EOVERFLOW",
  76: "ENOTUNIQ", 77: "EBADFD", 78: "EREMCHG", 79: "ELIBACC", 80: "ELIBBAD", 81: "ELIBSCN",
  82: "ELIBMAX", 83: "ELIBEXEC", 84: "EILSEQ", 85: "ERESTART", 86: "ESTRPIPE", 87: "EUSERS",
  88: "ENOTSOCK", 89: "EDESTADDRREQ", 90: "EMSGSIZE", 91: "EPROTOTYPE", 92: "ENOPROTOOPT",
  93: "EPROTONOSUPPORT", 94: "ESOCKTNOSUPPORT", 95: "EOPNOTSUPP", 96: "EPFNOSUPPORT",
  97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH",
  102: "ENETRESET", 103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS", 106: "EISCONN",
  107: "ENOTCONN", 108: "ESHUTDOWN", 109: "ETOOMANYREFS", 110: "ETIMEDOUT", 111: "ECONNREFUSED",
  112: "EHOSTDOWN", 113: "EHOSTUNREACH", 114: "EALREADY", 115: "EINPROGRESS", 116: "ESTALE",
  117: "EUCLEAN", 118: "ENOTNAM", 119: "ENAVAIL", 120: "EISNAM", 121: "EREMOTEIO", 122: "EDQUOT",
  123: "ENOMEDIUM", 124: "EMEDIUMTYPE", 125: "ECANCELED", 126: "ENOKEY", 127: "EKEYEXPIRED",
  128: "EKEYREVOKED", 129: "EKEYREJECTED", 130: "EOWNERDEAD", 131: "ENOTRECOVERABLE",
  132: "ERFKILL", 133: "EHWPOISON", 512: "ERESTARTSYS", 513: "ERESTARTNOINTR",
  514: "ERESTARTNOHAND", 515: "ENOIOCTLCMD", 516: "ERESTART_RESTARTBLOCK", 517: "EPROBE_DEFER",
  518: "EOPENSTALE", 519: "ENOPARAM", 521: "EBADHANDLE", 522: "ENOTSYNC", 523: "EBADCOOKIE",
  524: "ENOTSUPP", 525: "ETOOSMALL", 526: "ESERVERFAULT", 527: "EBADTYPE", 528: "EJUKEBOX",
  529: "EIOCBQUEUED", 530: "ERECALLCONFLICT",
};

export const EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EAGAIN = 11, EACCES = 13, EBUSY = 16,
  EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSPC = 28, EXFULL = 54, ENODATA = 61, EOPNOTSUPP = 95,
  EADDRINUSE = 98, EADDRNOTAVAIL = 99, ERESTART = 85, EROFS = 30;

export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}

// What to do, for the errnos that say the same thing wherever tsnet meets them: a limit reached
// or a kernel feature missing. The rest depend on the call, and the call's site says what to do
// (a name taken, a path refused, a port in use: see the error lines in README.md).
const HINTS: Record<number, string> = {
  12: "the system is out of memory", // ENOMEM
  23: "the system's open-file table is full: raise fs.file-max or end what holds files", // ENFILE
  24: "tsnet has as many files open as its limit allows: raise it (ulimit -n, or LimitNOFILE= for a service)", // EMFILE
  38: "the kernel lacks a system call tsnet needs (an old kernel, or an emulator)", // ENOSYS
  54: "a kernel table is full (a bridge takes at most 1,023 ports)", // EXFULL
  90: "the request is larger than the kernel takes in one message", // EMSGSIZE
  // qemu-user (7.2) refuses every netlink protocol but rtnetlink, uevent and audit itself.
  93: "the kernel lacks a protocol tsnet needs (a module not loaded, or built without it), or an emulator does not pass it (qemu-user passes no nf_tables netlink)", // EPROTONOSUPPORT
  95: "the kernel lacks a feature tsnet needs (a module not loaded, or built without it)", // EOPNOTSUPP
  97: "the kernel lacks an address family tsnet needs (a module not loaded, or built without it)", // EAFNOSUPPORT
  105: "the kernel is out of buffer memory: free memory, then try again", // ENOBUFS
  524: "the kernel lacks a feature tsnet needs (a module not loaded, or built without it)", // ENOTSUPP
};

/** What to do about errno wherever it comes from, if anything general can be said. */
export function errnoHint(errno: number): string | undefined {
  return HINTS[errno];
}
