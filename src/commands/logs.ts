import { defineCommand } from "../cli/command.ts";
import { out, outStderr } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, isRunning, mustFind } from "../container/control.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { LogReader, type LogLine } from "../logs/read.ts";
import { formatTime, parseTime } from "../logs/time.ts";
import { loadRecord } from "../state/containers.ts";
import { recover } from "../supervisor/client.ts";

/** Lines written out in runs of one stream, each run in one write to stdout or stderr. */
class Printer {
  private stream: 1 | 2 = 1;
  private parts: Uint8Array[] = [];
  private size = 0;

  constructor(private readonly timestamps: boolean) {}

  add(l: LogLine): void {
    if (l.stream !== this.stream || this.size > 64 * 1024) this.flush();
    this.stream = l.stream;
    if (this.timestamps) this.push(Buffer.from(`${formatTime(l.time)} `));
    this.push(l.bytes);
  }

  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.size += b.length;
  }

  flush(): void {
    if (!this.parts.length) return;
    const all = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    (this.stream === 1 ? out : outStderr)(all);
  }
}

function parseTail(v: string | undefined): number | undefined {
  if (v === undefined || v === "all") return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new UsageError(`invalid --tail "${v}": give a number of lines, or all`);
  return Number(v);
}

export default defineCommand({
  name: "logs",
  details: [
    "Only detached containers (run -d) keep a log. The command's stdout is printed on stdout and its stderr on stderr, in the order they were written (as the supervisor saw it, within about a millisecond).",
  ],
  args: [{ name: "CONTAINER", what: "a container", description: "Name or id (a unique prefix is enough)", complete: "container" }],
  options: {
    follow: {
      type: "boolean", alias: "f",
      description: "Keep printing what the command writes until the container ends (across restarts)",
      example: "tsnet logs -f web",
    },
    tail: {
      type: "string", alias: "n", valueHint: "N",
      description: "Only the last N lines (all: every line, the default)",
      example: "tsnet logs --tail 20 web",
    },
    timestamps: {
      type: "boolean", alias: "t",
      description: "Start each line with the time it was written, RFC 3339 in UTC with nanoseconds",
      example: "tsnet logs -t web",
    },
    since: {
      type: "string", valueHint: "TIME",
      description: "Only lines written since TIME: RFC 3339 (2006-01-02T15:04:05Z), a date, Unix seconds, or a duration before now (10m, 1h30m)",
      example: "tsnet logs --since 10m web",
    },
  },
  examples: ["tsnet logs web", "tsnet logs -f --tail 10 web", "tsnet logs -t --since 2006-01-02T15:04:05Z web 2>/dev/null"],
  async run({ opts: values, args: rest }) {
    const tail = parseTail(values.tail);
    const since = values.since === undefined ? undefined : parseTime(values.since, "--since");
    requireRoot("tsnet logs", STATE_IS_ROOTS);
    await recover();
    const rec = mustFind(rest[0]!);
    const ended = () => {
      const now = loadRecord(rec.id);
      return !now || !isRunning(now);
    };
    const reader = new LogReader(rec.id);
    try {
      if (!reader.exists) {
        if (!rec.detached) throw new TsnetError(`container ${rec.name} ran in the foreground: its output went to its terminal, not to a log`, OBJECT_ERROR);
        return 0;
      }
      let done = !values.follow || ended();
      let skip = 0;
      if (tail !== undefined) {
        // Counted first, with what the first read below will print.
        const counter = new LogReader(rec.id);
        let total = 0;
        try {
          counter.read(() => total++, { unmarked: true, partial: done });
        } finally {
          counter.close();
        }
        skip = Math.max(0, total - tail);
      }
      const printer = new Printer(values.timestamps);
      const emit = (l: LogLine) => {
        if (skip > 0) {
          skip--;
          return;
        }
        if (since === undefined || l.time >= since) printer.add(l);
      };
      reader.read(emit, { unmarked: true, partial: done });
      printer.flush();
      while (!done) {
        await Bun.sleep(100);
        done = ended();
        // Lines are printed once the supervisor has dated them; the rest when the container has ended.
        reader.read(emit, { unmarked: done, partial: done });
        printer.flush();
      }
    } finally {
      reader.close();
    }
    return 0;
  },
});
