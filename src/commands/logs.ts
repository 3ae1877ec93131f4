import { defineCommand } from "citty";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { scanOptions } from "../cli/argv.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, isRunning, mustFind } from "../container/control.ts";
import { recoverOrphans } from "../container/lifecycle.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { loadRecord } from "../state/containers.ts";
import { logPath } from "../supervisor/protocol.ts";

export default defineCommand({
  meta: { name: "logs", description: "Print what a detached container's command wrote to stdout and stderr" },
  args: {
    follow: { type: "boolean", alias: "f", description: "Keep printing until the container ends" },
    container: { type: "positional", description: "Name or id", required: false },
  },
  async run({ rawArgs }) {
    const { values, rest } = scanOptions("logs", rawArgs, [{ names: ["-f", "--follow"], key: "follow", takesValue: false }]);
    if (rest.length !== 1) throw new UsageError("tsnet logs needs one container, e.g. tsnet logs -f web");
    requireRoot("tsnet logs");
    recoverOrphans();
    const rec = mustFind(rest[0]!);
    let fd: number;
    try {
      fd = openSync(logPath(rec.id), "r");
    } catch {
      if (!rec.detached) throw new TsnetError(`container ${rec.name} ran in the foreground: its output went to its terminal, not to a log`, OBJECT_ERROR);
      return 0;
    }
    const buf = Buffer.alloc(65536);
    const drain = () => {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n <= 0) return;
        writeSync(1, buf, 0, n);
      }
    };
    try {
      drain();
      while (values.follow === true) {
        const now = loadRecord(rec.id);
        const ended = !now || !isRunning(now);
        await Bun.sleep(100);
        drain();
        if (ended) break;
      }
    } finally {
      closeSync(fd);
    }
    return 0;
  },
});
