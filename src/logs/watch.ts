// The supervisor's side of detached containers' logs. A command writes its stdout and stderr
// straight into two files of its own (no process copies its output: a chatty container costs the
// supervisor nothing per byte, and a slow supervisor never holds the command back). What the
// files cannot say is when each part was written, and in which order the two streams were:
// the supervisor watches the directory that holds them (one inotify instance for all containers)
// and, when files have grown, appends one mark per grown file to the container's times file:
//
//     o 4096 1732800000123456000      stream (o stdout, e stderr), size now, time in ns
//
// The inotify fd is read through Bun's event loop (epoll: nothing runs while nothing is written).
// After each read the next one waits 10 ms, so that a busy writer's events pile up in the kernel,
// which merges repeated ones, and cost one read and one stat per file per 10 ms instead of work
// per write(2). So a line's time is when the supervisor saw it: at once for a quiet container,
// within 10 ms for a busy one; marks follow the kernel's order of events, so lines of the two
// streams keep their order unless both were written within the same 10 ms. src/logs/read.ts
// turns files and marks back into lines. (ARCHITECTURE.md: the costs measured, and why not pipes.)
import { closeSync, fstatSync, statSync, writeSync } from "../../ffi/fs.ts";
import { IN_Q_OVERFLOW, O_APPEND, O_CREAT, O_WRONLY, watchWrites } from "../../ffi/libc.ts";
import { ensureDir, openOwned } from "../state/files.ts";
import { LOGS_DIR, logPaths } from "../state/paths.ts";
import { nowNs } from "./time.ts";

/** How long a read of events waits after the previous one: the batching window under load. */
export const BATCH_MS = 10;

interface Tracked {
  id: string;
  stream: "o" | "e";
  path: string;
  /** Size at the last mark. */
  size: number;
}

export class LogWatch {
  private started = false;
  /** Tracked files by their name in LOGS_DIR. */
  private readonly files = new Map<string, Tracked>();

  /**
   * Opens (creating them) the container's two log files for its command to write, appending to
   * what an earlier run of it wrote, and watches them. The caller closes the fds once the command
   * has them.
   */
  open(id: string): { stdout: number; stderr: number } {
    ensureDir(LOGS_DIR);
    if (!this.started) this.start();
    const paths = logPaths(id);
    const fds: number[] = [];
    try {
      for (const [stream, path] of [["o", paths.stdout], ["e", paths.stderr]] as const) {
        const fd = openOwned(path, O_WRONLY | O_CREAT | O_APPEND)!;
        fds.push(fd);
        const name = path.slice(LOGS_DIR.length + 1);
        if (!this.files.has(name)) this.files.set(name, { id, stream, path, size: fstatSync(fd).size });
      }
    } catch (e) {
      for (const fd of fds) closeSync(fd);
      throw e;
    }
    return { stdout: fds[0]!, stderr: fds[1]! };
  }

  /**
   * Watches the files of a container adopted from a supervisor that died, which its command goes
   * on writing (it holds them open itself). What they gained while nobody watched is marked with
   * the time each was last written: no line of it was written later than that.
   */
  watch(id: string): void {
    ensureDir(LOGS_DIR);
    if (!this.started) this.start();
    const paths = logPaths(id);
    let text = "";
    for (const [stream, path] of [["o", paths.stdout], ["e", paths.stderr]] as const) {
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) continue;
      const name = path.slice(LOGS_DIR.length + 1);
      if (!this.files.has(name)) this.files.set(name, { id, stream, path, size: st.size });
      if (st.size > 0) text += `${stream} ${st.size} ${st.mtimeNs}\n`;
    }
    if (text) appendMarks(paths.times, text);
  }

  /** Marks whatever the container's files hold past the last mark, and stops watching them. */
  close(id: string): void {
    const mine = [...this.files.entries()].filter(([, t]) => t.id === id).map(([name]) => name);
    this.mark(mine);
    for (const name of mine) this.files.delete(name);
  }

  /** One inotify instance for the supervisor's life (it exits when idle), read as a stream. */
  private start(): void {
    this.started = true;
    const reader = Bun.file(watchWrites(LOGS_DIR)).stream().getReader();
    const loop = async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        this.events(value);
        await Bun.sleep(BATCH_MS);
      }
    };
    void loop();
  }

  /** struct inotify_event, one after another: | wd i32 | mask u32 | cookie u32 | len u32 | name[len] | */
  private events(buf: Uint8Array): void {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    // Names in the order of their first event (a Set keeps insertion order).
    const names = new Set<string>();
    for (let off = 0; off + 16 <= buf.length; ) {
      const mask = view.getUint32(off + 4, true);
      const len = view.getUint32(off + 12, true);
      if (mask & IN_Q_OVERFLOW) {
        // Events were lost: every file may have grown.
        for (const n of this.files.keys()) names.add(n);
      } else if (len) {
        const start = off + 16;
        let end = start;
        while (end < start + len && buf[end] !== 0) end++;
        const name = Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
        names.add(name);
      }
      off += 16 + len;
    }
    this.mark([...names]);
  }

  /** Appends a mark for each of these files that has grown, in this order, all with this time. */
  private mark(names: string[]): void {
    const now = nowNs();
    const byTimes = new Map<string, string>();
    for (const name of names) {
      const t = this.files.get(name);
      if (!t) continue;
      let size: number;
      try {
        size = statSync(t.path).size;
      } catch {
        continue; // removed meanwhile (rm -f)
      }
      if (size <= t.size) continue;
      t.size = size;
      const times = logPaths(t.id).times;
      byTimes.set(times, `${byTimes.get(times) ?? ""}${t.stream} ${size} ${now}\n`);
    }
    for (const [path, text] of byTimes) appendMarks(path, text);
  }
}

function appendMarks(path: string, text: string): void {
  // A mark that cannot be written (a full /run) only costs the lines their exact time: the
  // reader dates what no mark covers by the file's modification time.
  try {
    const fd = openOwned(path, O_WRONLY | O_CREAT | O_APPEND);
    if (fd === undefined) return;
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  } catch {}
}
