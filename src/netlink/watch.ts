// Notifications read from Bun's event loop. NetlinkSocket's reads block (with a receive timeout),
// which is right for a request and its answer; notifications come whenever the kernel has one,
// and the JS thread must not sit in recvfrom() waiting for them.
//
// Bun.file(fd).stream() on a socket does what is needed, measured with strace: it dups the fd,
// registers the dup with the event loop's epoll (EPOLLONESHOT, re-armed after each read) and,
// when it is readable, reads with recvfrom(MSG_DONTWAIT) until EAGAIN. Nothing runs while the
// kernel is silent: no thread, no timer, no wake-up. Cancelling the stream closes the dup only.
// Datagrams read together arrive as one chunk; netlink datagrams are whole, 4-byte aligned
// messages, so a chunk splits like one datagram.
import { NLMSG_ALIGN } from "./constants.ts";
import { splitMessages, type NetlinkMessage } from "./reader.ts";

// Bun reads into a 256 KiB buffer and passes what room is left to recvfrom: a datagram that
// does not fit is truncated. A chunk this large may end in one, so it counts as an overrun.
const MAYBE_TRUNCATED = 192 * 1024;

export interface WatchHandlers {
  /**
   * Messages that arrived together. `overrun`: some were lost (the socket's receive buffer
   * overflowed, ENOBUFS, or a datagram may have been cut short): assume anything changed.
   */
  messages(ms: NetlinkMessage[], overrun: boolean): void;
  /** The socket failed for good (not an overrun); watching has stopped. */
  failed(e: Error): void;
}

export interface Watch {
  stop(): void;
}

/** Delivers what arrives on a (multicast) netlink socket to `on`, from the event loop. */
export function watchSocket(fd: number, on: WatchHandlers): Watch {
  let stopped = false;
  let reader: { cancel(): Promise<void> } | undefined;
  const start = () => {
    const r = Bun.file(fd).stream().getReader();
    reader = r;
    void (async () => {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof r.read>>;
        try {
          chunk = await r.read();
        } catch (e) {
          if (stopped) return;
          // An overflowed socket reports ENOBUFS once and then reads on normally; the stream,
          // though, is finished: read on with a new one.
          if ((e as NodeJS.ErrnoException).code === "ENOBUFS") {
            on.messages([], true);
            start();
          } else {
            stopped = true;
            on.failed(e as Error);
          }
          return;
        }
        if (stopped) return;
        if (chunk.done) {
          stopped = true;
          on.failed(new Error("the kernel closed the notification socket"));
          return;
        }
        const buf = chunk.value;
        const ms = splitMessages(buf, buf.byteLength);
        // Bytes splitMessages could not account for: a cut datagram.
        const whole = ms.reduce((n, m) => n + NLMSG_ALIGN(m.view.byteLength), 0) === buf.byteLength;
        try {
          on.messages(ms, !whole || buf.byteLength >= MAYBE_TRUNCATED);
        } catch (e) {
          // Not the socket's fault, but a handler that throws must not become an unhandled
          // rejection (which ends the process): report it and stop.
          stopped = true;
          void r.cancel().catch(() => {});
          on.failed(e as Error);
          return;
        }
      }
    })();
  };
  start();
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      reader?.cancel().catch(() => {});
    },
  };
}
