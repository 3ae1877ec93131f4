// Every command tsnet knows, by the word that names it. Only the one-line description lives
// here; a command's module (and so everything it imports) is loaded when it runs or its help is
// asked for, so `tsnet --version` and `tsnet ps` pay for none of the others.
// A family of commands (`tsnet network ls`) is one entry whose module is a GroupDef listing its
// members the same way.
import type { CommandEntry } from "./command.ts";

export const COMMANDS: Record<string, CommandEntry> = {
  run: { description: "Run a command in a container: a network namespace of its own", load: () => import("../commands/run.ts") },
  exec: { description: "Run a command in a running container's network namespace", load: () => import("../commands/exec.ts") },
  ps: { description: "List containers", load: () => import("../commands/ps.ts") },
  inspect: { description: "Show containers as Docker-shaped JSON, read from the kernel", load: () => import("../commands/inspect.ts") },
  logs: { description: "Print what a detached container's command wrote", load: () => import("../commands/logs.ts") },
  top: { description: "List a running container's processes (its whole cgroup)", load: () => import("../commands/top.ts") },
  port: { description: "List a container's published ports, or the host address of one", load: () => import("../commands/port.ts") },
  stop: { description: "Stop running containers (SIGTERM, then SIGKILL)", load: () => import("../commands/stop.ts") },
  kill: { description: "Send a signal to every process of containers (KILL by default)", load: () => import("../commands/kill.ts") },
  restart: { description: "Start containers' commands again, in the same containers", load: () => import("../commands/restart.ts") },
  wait: { description: "Wait for containers to end and print their exit statuses", load: () => import("../commands/wait.ts") },
  rm: { description: "Remove containers", load: () => import("../commands/rm.ts") },
  "firewall-reload": { description: "Restore tsnet's rules and ports after a firewall reload", load: () => import("../commands/firewall-reload.ts") },
  network: { description: "Manage networks: ls, create, inspect, rm, connect, disconnect, prune", load: () => import("../commands/network.ts") },
  explain: { description: "Show what a command would do to the kernel, as ip, tc, sysctl and nft commands", load: () => import("../commands/explain.ts") },
  completion: { description: "Print a shell completion script for bash, zsh or fish", load: () => import("../commands/completion.ts") },
  help: { description: "Show help for a command", load: () => import("../commands/help.ts") },
  // tsnet's own helpers, started by tsnet itself or by a completion script.
  _supervise: { description: "The supervisor of detached containers", hidden: true, load: () => import("../commands/_supervise.ts") },
  _complete: { description: "Candidates for the word being completed", hidden: true, load: () => import("../commands/_complete.ts") },
};
