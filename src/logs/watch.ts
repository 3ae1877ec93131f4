// The supervisor's side of detached containers' logs. A command writes its stdout and stderr
// straight into two files of its own (no process copies its output: a chatty container costs the
// supervisor nothing per byte, and a busy supervisor never holds the command back). What the
// files cannot say is when each part was written, and in which order the two streams were:
// the supervisor watches the directory that holds them (one inotify watch for all containers)
// and, when files have grown, appends one mark per grown file to the container's times file:
//
//     o 4096 1732800000123456000      stream (o stdout, e stderr), size now, time in ns
//
// Marks are written in the order the kernel reported the writes, batched per turn of the event
// loop (coalesced inotify events, one stat per grown file), so a line's time is when the
// supervisor saw it, within about a millisecond of the write, and lines of the two streams keep
// their order except within one batch. src/logs/read.ts turns files and marks back into lines.
import { closeSync, fstatSync, statSync, watch, writeSync, type FSWatcher } from "node:fs";
import { O_APPEND, O_CREAT, O_WRONLY } from "../../ffi/libc.ts";
import { ensureDir, openOwned } from "../state/files.ts";
import { LOGS_DIR, logPaths } from "../state/paths.ts";
import { nowNs } from "./time.ts";

interface Tracked {
  id: string;
  stream: "o" | "e";
  path: string;
  /** Size at the last mark. */
  size: number;
}

export class LogWatch {
  private watcher?: FSWatcher;
  /** Tracked files by their name in LOGS_DIR. */
  private readonly files = new Map<string, Tracked>();
  private readonly dirty = new Set<string>();
  private scheduled = false;

  /**
   * Opens (creating them) the container's two log files for its command to write, appending to
   * what an earlier run of it wrote, and watches them. The caller closes the fds once the command
   * has them.
   */
  open(id: string): { stdout: number; stderr: number } {
    ensureDir(LOGS_DIR);
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
    this.watcher ??= watch(LOGS_DIR, (_event, name) => this.changed(name));
    return { stdout: fds[0]!, stderr: fds[1]! };
  }

  /** Marks whatever the container's files hold past the last mark, and stops watching them. */
  close(id: string): void {
    const mine = [...this.files.entries()].filter(([, t]) => t.id === id);
    this.mark(mine.map(([name]) => name));
    for (const [name] of mine) {
      this.files.delete(name);
      this.dirty.delete(name);
    }
    if (this.files.size === 0) {
      this.watcher?.close();
      this.watcher = undefined;
    }
  }

  private changed(name: string | Buffer | null): void {
    if (typeof name !== "string" || !this.files.has(name)) return;
    this.dirty.add(name);
    if (this.scheduled) return;
    this.scheduled = true;
    // Every event the kernel has queued is delivered before this runs: one mark per grown file.
    setImmediate(() => {
      this.scheduled = false;
      const names = [...this.dirty];
      this.dirty.clear();
      this.mark(names);
    });
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
    for (const [path, text] of byTimes) {
      // A mark that cannot be written (a full /run) only costs the lines their exact time: the
      // reader dates what no mark covers by the file's modification time.
      try {
        const fd = openOwned(path, O_WRONLY | O_CREAT | O_APPEND);
        if (fd === undefined) continue;
        try {
          writeSync(fd, text);
        } finally {
          closeSync(fd);
        }
      } catch {}
    }
  }
}
