import { close } from "../../ffi/libc.ts";
import { defineCommand } from "../cli/command.ts";
import { requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, isRunning, mustFind, runningNamespaceOf } from "../container/control.ts";
import { commandEnv, explicitEnv, resolveUser, resolveWorkdir } from "../container/config.ts";
import { livePidOf, spawnInNamespace, type Stdio } from "../container/lifecycle.ts";
import { SignalRoute, exitStatus, forwardSignals } from "../container/proc.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { openNetns } from "../netns/netns.ts";
import { OPTIONS as RUN } from "./run.ts";
import { recover } from "../supervisor/client.ts";
import { TtyRelay } from "../process/terminal.ts";

/** How long an exec -t waits for its terminal's last output once its command has exited. */
const EXEC_DRAIN_MS = 250;

export default defineCommand({
  name: "exec",
  details: [
    "What nsenter -n does: the command runs on the host, in the container's network namespace, and in its cgroup, so it and whatever it starts end with the container. As Docker's exec, it gets the environment, working directory and user the container was started with (run -e, --env-file, -w, -u), then its own. Options end at the container's name; -- after it is optional.",
  ],
  args: [
    { name: "CONTAINER", what: "a container and a command", description: "Name or id (a unique prefix is enough)", complete: "running" },
    { name: "COMMAND", what: "a command to run in it", description: "The program to run", complete: "command" },
    { name: "ARG", what: "its arguments", description: "Its arguments, passed untouched", required: false, repeat: true, complete: "file" },
  ],
  options: {
    interactive: {
      type: "boolean", alias: "i",
      description: "Attach stdin: without it the command reads /dev/null, as in Docker (a pipe passes byte for byte; with -t, keys go to its terminal)",
      example: "echo hi | tsnet exec -i web -- cat",
    },
    tty: {
      type: "boolean", alias: "t",
      description: "Give the command a terminal of its own (its controlling terminal: job control works); output is relayed, keys too with -i (the caller's terminal in raw mode meanwhile)",
      example: "tsnet exec -it web -- bash",
    },
    // run's options, with what they mean for exec.
    env: {
      ...RUN.env,
      description: "Set an environment variable for the command, on top of what the container was started with (its -e and --env-file) and the caller's environment; a bare NAME passes the caller's value",
      example: "tsnet exec -e DEBUG=1 web -- env",
    },
    "env-file": { ...RUN["env-file"], description: "Read environment variables from a file, in run --env-file's format; -e comes after", example: "tsnet exec --env-file ./debug.env web -- ./check" },
    workdir: { ...RUN.workdir, description: "The command's working directory (an existing one), instead of the container's (run -w) or else the caller's", example: "tsnet exec -w /srv/www web -- ls" },
    user: { ...RUN.user, description: "Run the command as this user and group, instead of the container's (run -u) or else root", example: "tsnet exec -u root web -- id" },
  },
  optionsEndAtFirstArg: true,
  examples: ["tsnet exec web -- ip addr", "tsnet exec -it web bash"],
  async run({ opts, args }) {
    const [ref, ...after] = args as [string, ...string[]];
    const command = after[0] === "--" ? after.slice(1) : after;
    if (command.length === 0) throw new UsageError("\"tsnet exec\" needs a command to run in it, e.g. tsnet exec web -- ip addr");
    // Its own options are checked before anything is read.
    const caller = process.env;
    const explicit = explicitEnv(opts["env-file"], opts.env, caller);
    let user = opts.user === undefined ? undefined : resolveUser(opts.user);
    let cwd = opts.workdir === undefined ? undefined : resolveWorkdir(opts.workdir, process.cwd());
    requireRoot("tsnet exec", "it enters a container's network namespace");
    await recover();
    const rec = mustFind(ref);
    if (!isRunning(rec)) throw new TsnetError(`container ${rec.name} is not running: start a new one with tsnet run`, OBJECT_ERROR);
    if (rec.status === "restarting") throw new TsnetError(`container ${rec.name} is waiting to restart: try again once it runs`, OBJECT_ERROR);
    // As Docker's exec: what the container was started with (environment, directory, user), then
    // exec's own options on top.
    const env = commandEnv(caller, [...(rec.config?.env ?? []), ...explicit], (user ??= rec.config?.user === undefined ? undefined : resolveUser(rec.config.user)));
    cwd ??= rec.config?.workdir;
    const path = runningNamespaceOf(rec);
    // The command leads its own session, as a container's does: each signal reaches it once.
    let route: SignalRoute | undefined;
    const tty = opts.tty ? new TtyRelay({ out: 1, input: opts.interactive }) : undefined;
    const signals = forwardSignals(() => route, tty && { stopping: () => tty.suspend(), resumed: () => tty.resume() });
    try {
      const fd = path === undefined ? undefined : openNetns(path);
      let child: Bun.Subprocess;
      try {
        // The container's own /etc files and hostname: join a live process's mount and UTS namespaces.
        const joinPid = livePidOf(rec.id) ?? (rec.joined ? livePidOf(rec.joined.id) : undefined);
        // Born in the container's cgroup, as Docker's exec is part of its container: what it starts
        // ends with the container, whatever it does to its session.
        // Without -i it reads /dev/null, as Docker's exec does.
        const stdio: Stdio = [opts.interactive ? "inherit" : "ignore", "inherit", "inherit"];
        child = spawnInNamespace(fd, command, stdio, { cgroup: rec.cgroup, env, cwd, uid: user?.uid, gid: user?.gid, terminal: tty?.spawnOptions() }, rec.mode === "host" ? {} : { joinPid });
      } finally {
        if (fd !== undefined) close(fd);
      }
      route = new SignalRoute(child.pid, undefined, tty !== undefined);
      tty?.attach(child.terminal);
      signals.flush();
      await child.exited;
      // Its last output is in the pty; a job it left running in the background (which lives on
      // in the container, as after Docker's exec) may hold the terminal open, so the wait is short.
      await tty?.drain(EXEC_DRAIN_MS);
      return exitStatus(child);
    } finally {
      tty?.detach();
      signals.stop();
    }
  },
});
