import { defineCommand } from "citty";
import { close } from "../../ffi/libc.ts";
import { scanOptions } from "../cli/argv.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, isRunning, mustFind, namespaceOf } from "../container/control.ts";
import { recoverOrphans, spawnInNamespace } from "../container/lifecycle.ts";
import { SignalRoute, exitStatus, forwardSignals } from "../container/proc.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { openNetns } from "../netns/netns.ts";

export default defineCommand({
  meta: { name: "exec", description: "Run a command in a running container's network namespace (what nsenter -n does)" },
  args: {
    container: { type: "positional", description: "Name or id", required: false },
    command: { type: "positional", description: "The command and its arguments (after -- or the name)", required: false },
  },
  async run({ rawArgs }) {
    const { rest } = scanOptions("exec", rawArgs, [
      { names: ["-i", "--interactive"], key: "interactive", takesValue: false },
      { names: ["-t", "--tty"], key: "tty", takesValue: false },
    ]);
    const [ref, ...after] = rest;
    const command = after[0] === "--" ? after.slice(1) : after;
    if (!ref || command.length === 0) throw new UsageError("tsnet exec needs a container and a command, e.g. tsnet exec web -- ip addr");
    requireRoot("tsnet exec");
    recoverOrphans();
    const rec = mustFind(ref);
    if (!isRunning(rec)) throw new TsnetError(`container ${rec.name} is not running: start a new one with tsnet run`, OBJECT_ERROR);
    const path = namespaceOf(rec);
    // The command leads its own session, as a container's does: each signal reaches it once.
    let route: SignalRoute | undefined;
    const signals = forwardSignals(() => route);
    try {
      const fd = path === undefined ? undefined : openNetns(path);
      let child: Bun.Subprocess;
      try {
        child = spawnInNamespace(fd, command, ["inherit", "inherit", "inherit"]);
      } finally {
        if (fd !== undefined) close(fd);
      }
      route = new SignalRoute(child.pid);
      signals.flush();
      await child.exited;
      return exitStatus(child);
    } finally {
      signals.stop();
    }
  },
});
