import { closeSync, readSync } from "node:fs";
import { O_RDONLY } from "../../ffi/libc.ts";
import { defineCommand } from "../cli/command.ts";
import { out } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, isRunning, mustFind } from "../container/control.ts";
import { recoverOrphans } from "../container/lifecycle.ts";
import { TsnetError } from "../errors/errors.ts";
import { loadRecord } from "../state/containers.ts";
import { fsError, openOwned } from "../state/files.ts";
import { logPath } from "../supervisor/protocol.ts";

export default defineCommand({
  name: "logs",
  details: ["Only detached containers (run -d) keep a log; stdout and stderr are written to it as they come."],
  args: [{ name: "CONTAINER", what: "a container", description: "Name or id (a unique prefix is enough)", complete: "container" }],
  options: {
    follow: {
      type: "boolean", alias: "f",
      description: "Keep printing what the command writes until it ends",
      example: "tsnet logs -f web",
    },
  },
  examples: ["tsnet logs web", "tsnet logs -f web | grep error"],
  async run({ opts: values, args: rest }) {
    requireRoot("tsnet logs", STATE_IS_ROOTS);
    recoverOrphans();
    const rec = mustFind(rest[0]!);
    const path = logPath(rec.id);
    const fd = openOwned(path, O_RDONLY);
    if (fd === undefined) {
      if (!rec.detached) throw new TsnetError(`container ${rec.name} ran in the foreground: its output went to its terminal, not to a log`, OBJECT_ERROR);
      return 0;
    }
    const buf = Buffer.alloc(65536);
    const drain = () => {
      for (;;) {
        let n: number;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch (e) {
          throw fsError("read", path, e);
        }
        if (n <= 0) return;
        out(buf.subarray(0, n));
      }
    };
    try {
      drain();
      while (values.follow) {
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
