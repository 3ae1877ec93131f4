import { defineCommand } from "../cli/command.ts";
import { out } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { OBJECT_ERROR, isRunning, mustFind } from "../container/control.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { formatHostPort } from "../ip/port.ts";
import { portsHeld } from "../network/publish.ts";
import { recover } from "../supervisor/client.ts";

/** PORT[/PROTO] as Docker takes it: 80, 80/tcp, 53/udp. */
function parsePort(spec: string): { port: number; proto: "tcp" | "udp" } {
  const m = /^(\d{1,5})(?:\/(tcp|udp))?$/i.exec(spec);
  const port = Number(m?.[1]);
  if (!m || port < 1 || port > 65535) throw new UsageError(`invalid port "${spec}": give a container port, e.g. 80 or 53/udp`);
  return { port, proto: (m[2]?.toLowerCase() ?? "tcp") as "tcp" | "udp" };
}

export default defineCommand({
  name: "port",
  details: [
    "Each published port as the kernel holds it (tsnet's nf_tables maps, as inspect reads them), one line each: CONTAINER_PORT/PROTO -> HOST_IP:HOST_PORT. With PORT, only the host side of that port's bindings, so that a script can reach a port chosen for -p 80.",
  ],
  args: [
    { name: "CONTAINER", what: "a container", description: "Name or id (a unique prefix is enough)", complete: "running" },
    { name: "PORT", what: "a port", description: "A container port: 80, 80/tcp or 53/udp", required: false },
  ],
  options: {},
  examples: ["tsnet port web", "tsnet port web 80", "curl http://$(tsnet port web 80)/"],
  async run({ args }) {
    const [ref, portSpec] = args as [string, string | undefined];
    const want = portSpec === undefined ? undefined : parsePort(portSpec);
    requireRoot("tsnet port", `${STATE_IS_ROOTS}, and it reads tsnet's nf_tables maps`);
    await recover();
    const rec = mustFind(ref);
    if (!isRunning(rec)) throw new TsnetError(`container ${rec.name} is not running: it publishes no port`, OBJECT_ERROR);
    const ports = rec.endpoints?.length ? portsHeld(rec) : [];
    const lines: string[] = [];
    for (const p of ports) {
      const host = formatHostPort(p.hostIp, p.hostPort);
      if (!want) lines.push(`${p.containerPort}/${p.proto} -> ${host}`);
      else if (p.containerPort === want.port && p.proto === want.proto) lines.push(host);
    }
    if (want && !lines.length) throw new TsnetError(`no public port ${want.port}/${want.proto} published for ${rec.name}`, OBJECT_ERROR);
    if (lines.length) out(`${lines.join("\n")}\n`);
    return 0;
  },
});
