// File descriptors held in reserve for undoing. A setup that fails because the process has run
// out of descriptors (EMFILE: `ulimit -n`, or a supervisor holding many containers' sockets)
// must still undo what it made, and undoing opens files too: the cgroup's events to wait for it
// to empty, the nf_tables socket to delete its ports, the record's lock. Without a reserve the
// undo failed the same way and left a record, a name and a published port behind. So a few
// descriptors on /dev/null are held from before a container is made, and let go of just before
// it is undone (or finished), then taken again.
import { O_RDONLY, close, open } from "../../ffi/libc.ts";

/** Enough for the undo's own opens (measured: up to 6 at once), with room to spare. */
const SPARE = 8;
const held: number[] = [];

/** Takes the reserve back up to its size, as far as the process's limit allows. */
export function reserveFds(): void {
  while (held.length < SPARE) {
    try {
      held.push(open("/dev/null", O_RDONLY));
    } catch {
      return; // out of descriptors already: whatever was freed meanwhile is the reserve
    }
  }
}

/** Runs fn (an undo, a teardown) with the reserve let go of, and takes it again after. */
export function withSpareFds<T>(fn: () => T): T {
  for (const fd of held.splice(0)) close(fd);
  try {
    return fn();
  } finally {
    reserveFds();
  }
}
