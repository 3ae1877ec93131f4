// Reading a detached container's log back: its two files (stdout, stderr) cut into lines, each
// dated and put in order by the supervisor's marks (src/logs/watch.ts). A mark "o 4096 T" says
// that stdout had grown to 4096 bytes at time T: every line that ends between the previous
// stdout mark and it is dated T, and lines come out in the order of the marks that complete them.
// What no mark covers yet (written a moment ago, or after a crash of the supervisor) is dated by
// its file's modification time. Reading is incremental, so `logs -f` resumes where it was.
import { closeSync, fstatSync, readSync } from "../../ffi/fs.ts";
import { O_RDONLY } from "../../ffi/libc.ts";
import { fsError, openOwned } from "../state/files.ts";
import { logPaths } from "../state/paths.ts";

export interface LogLine {
  /** 1: the command's stdout, 2: its stderr. */
  stream: 1 | 2;
  /** The line with its newline; a line cut because it is long, or the last one, may have none. */
  bytes: Uint8Array;
  /** When the supervisor saw it written, in ns since the epoch. */
  time: bigint;
}

/** A line longer than this is cut into pieces, as Docker cuts log messages (its limit: 16 KiB). */
const MAX_LINE = 64 * 1024;
const CHUNK = 64 * 1024;
const NL = 10;

class Stream {
  /** Bytes already turned into lines (or held in `carry`). */
  pos = 0;
  carry: Uint8Array = new Uint8Array(0);
  /** When the end of `carry` was seen written. */
  carryTime = 0n;
  constructor(readonly path: string, readonly fd: number | undefined, readonly no: 1 | 2) {}

  size(): number {
    return this.fd === undefined ? 0 : fstatSync(this.fd).size;
  }

  mtimeNs(): bigint {
    return this.fd === undefined ? 0n : fstatSync(this.fd).mtimeNs;
  }

  /** The lines that end before byte `end`, dated `time`; an unfinished last line stays in carry. */
  take(end: number, time: bigint, emit: (l: LogLine) => void): void {
    const buf = Buffer.allocUnsafe(CHUNK);
    while (this.pos < end && this.fd !== undefined) {
      let n: number;
      try {
        n = readSync(this.fd, buf, 0, Math.min(CHUNK, end - this.pos), this.pos);
      } catch (e) {
        throw fsError("read", this.path, e);
      }
      if (n <= 0) break; // shorter than a mark says (truncated): nothing more to take
      this.pos += n;
      let data: Uint8Array = this.carry.length ? Buffer.concat([this.carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let start = 0;
      for (;;) {
        const nl = data.indexOf(NL, start);
        if (nl < 0 || nl - start >= MAX_LINE) {
          if (data.length - start < MAX_LINE) break;
          emit({ stream: this.no, bytes: Buffer.from(data.subarray(start, start + MAX_LINE)), time });
          start += MAX_LINE;
          continue;
        }
        emit({ stream: this.no, bytes: Buffer.from(data.subarray(start, nl + 1)), time });
        start = nl + 1;
      }
      this.carry = Buffer.from(data.subarray(start));
      this.carryTime = time;
    }
  }

  /** The unfinished last line, as it is, dated when its end was seen. */
  flush(emit: (l: LogLine) => void): void {
    if (!this.carry.length) return;
    emit({ stream: this.no, bytes: this.carry, time: this.carryTime });
    this.carry = new Uint8Array(0);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}

export class LogReader {
  private readonly streams: [Stream, Stream];
  private readonly timesPath: string;
  private timesFd: number | undefined;
  /** Bytes of the times file already read (complete marks only). */
  private timesPos = 0;
  private timesCarry = "";

  /** Opens the container's log; `exists` is false when it has none (it never ran detached). */
  constructor(id: string) {
    const paths = logPaths(id);
    this.streams = [new Stream(paths.stdout, openOwned(paths.stdout, O_RDONLY), 1), new Stream(paths.stderr, openOwned(paths.stderr, O_RDONLY), 2)];
    this.timesPath = paths.times;
    this.timesFd = openOwned(paths.times, O_RDONLY);
  }

  get exists(): boolean {
    return this.streams.some((s) => s.fd !== undefined);
  }

  /**
   * Emits the lines completed since the last call, in order. `unmarked`: also what no mark
   * covers yet, dated by its file's modification time; `partial`: also an unfinished last line
   * (the container has ended, or nothing more is coming).
   */
  read(emit: (l: LogLine) => void, opts: { unmarked: boolean; partial: boolean }): void {
    for (const mark of this.newMarks()) {
      const s = this.streams[mark.stream - 1]!;
      if (mark.size > s.pos) s.take(mark.size, mark.time, emit);
    }
    if (!opts.unmarked) return;
    // What no mark covers, oldest file first.
    const rest = this.streams.map((s) => ({ s, size: s.size(), time: s.mtimeNs() })).filter((r) => r.size > r.s.pos);
    rest.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.s.no - b.s.no));
    for (const r of rest) r.s.take(r.size, r.time, emit);
    if (opts.partial) for (const s of this.streams) s.flush(emit);
  }

  private newMarks(): { stream: 1 | 2; size: number; time: bigint }[] {
    // The times file appears with the first mark.
    if (this.timesFd === undefined) {
      this.timesFd = openOwned(this.timesPath, O_RDONLY);
      if (this.timesFd === undefined) return [];
    }
    const chunks: Buffer[] = [];
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.timesFd, buf, 0, CHUNK, this.timesPos);
      } catch (e) {
        throw fsError("read", this.timesPath, e);
      }
      if (n <= 0) break;
      this.timesPos += n;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    const text = this.timesCarry + Buffer.concat(chunks).toString("latin1");
    const end = text.lastIndexOf("\n") + 1;
    this.timesCarry = text.slice(end);
    const marks: { stream: 1 | 2; size: number; time: bigint }[] = [];
    for (const line of text.slice(0, end).split("\n")) {
      const m = /^([oe]) (\d+) (\d+)$/.exec(line);
      if (m) marks.push({ stream: m[1] === "o" ? 1 : 2, size: Number(m[2]), time: BigInt(m[3]!) });
    }
    return marks;
  }

  close(): void {
    for (const s of this.streams) s.close();
    if (this.timesFd !== undefined) closeSync(this.timesFd);
  }
}
