// Sockets whose last close can block: closing an nf_tables socket right after a commit waits for
// the kernel's transaction clean-up (nft_rcv_nl_event flushes it; an RCU grace period, 8-30 ms
// measured), and exit closes it too. The short-lived helper tsnet starts for link deletion anyway
// (src/network/dellink.ts) inherits these fds, so the last close, and that wait, are its own.
const fds = new Set<number>();

export function lingerOnExit(fd: number): void {
  fds.add(fd);
}

export function lingeringFds(): number[] {
  return [...fds];
}
