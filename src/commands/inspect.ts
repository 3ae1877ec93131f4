import { close } from "../../ffi/libc.ts";
import { defineCommand } from "../cli/command.ts";
import { execute, parseFormat } from "../cli/format.ts";
import { log } from "../cli/log.ts";
import { out } from "../cli/output.ts";
import { STATE_IS_ROOTS, requireRoot } from "../cli/root.ts";
import { containerPids, eachRef, mainPid, mustFind, namespaceOf } from "../container/control.ts";
import { containerAlive } from "../container/lifecycle.ts";
import { isErrno } from "../errors/errors.ts";
import { ENOENT } from "../errors/errno.ts";
import { LINK_LOCAL_V6, contains, formatIp } from "../ip/addr.ts";
import { isAnyAddress } from "../ip/port.ts";
import { portsHeld } from "../network/publish.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { inNetns, openNetns } from "../netns/netns.ts";
import { formatMac } from "../network/bridge.ts";
import { addrList } from "../rtnetlink/addr.ts";
import { AF_INET6 } from "../rtnetlink/constants.ts";
import { linkGet } from "../rtnetlink/link.ts";
import { routeList } from "../rtnetlink/route.ts";
import type { ContainerRecord } from "../state/containers.ts";
import { recover } from "../supervisor/client.ts";

const ZERO_TIME = "0001-01-01T00:00:00Z";

interface Addressing {
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  /** A dual-stack network's IPv6 address and gateway ("" on an IPv4-only one), as Docker names them. */
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  IPv6Gateway: string;
  MacAddress: string;
}
const NO_ADDRESS: Addressing = { IPAddress: "", IPPrefixLen: 0, Gateway: "", GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, IPv6Gateway: "", MacAddress: "" };

/** Each interface's address, prefix, MAC and gateway, read from the kernel inside the namespace. */
function addressing(path: string, ifnames: string[]): Map<string, Addressing> {
  const out = new Map<string, Addressing>();
  let fd: number;
  try {
    fd = openNetns(path);
  } catch (e) {
    // Its teardown has begun: the record says running a moment longer than the namespace lives.
    if (isErrno(e, ENOENT)) return out;
    throw e;
  }
  let nl: NetlinkSocket;
  try {
    nl = inNetns(fd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${path})`));
  } finally {
    close(fd);
  }
  try {
    const addrs = addrList(nl);
    const routes = routeList(nl);
    // Global IPv6 addresses only: a link-local one (fe80::) is no network's.
    const addrs6 = addrList(nl, AF_INET6).filter((a) => !contains(LINK_LOCAL_V6, a.address));
    const routes6 = routeList(nl, AF_INET6);
    for (const ifname of ifnames) {
      const link = linkGet(nl, ifname);
      if (!link) continue;
      const addr = addrs.find((a) => a.index === link.index);
      const gw = routes.find((r) => r.dstLen === 0 && r.oif === link.index && r.gateway !== undefined);
      const addr6 = addrs6.find((a) => a.index === link.index);
      const gw6 = routes6.find((r) => r.dstLen === 0 && r.oif === link.index && r.gateway !== undefined);
      out.set(ifname, {
        IPAddress: addr ? formatIp(addr.address) : "",
        IPPrefixLen: addr?.prefix ?? 0,
        Gateway: gw?.gateway !== undefined ? formatIp(gw.gateway) : "",
        GlobalIPv6Address: addr6 ? formatIp(addr6.address) : "",
        GlobalIPv6PrefixLen: addr6?.prefix ?? 0,
        IPv6Gateway: gw6?.gateway !== undefined ? formatIp(gw6.gateway) : "",
        MacAddress: link.mac ? formatMac(link.mac) : "",
      });
    }
  } finally {
    nl.close();
  }
  return out;
}

export function inspectContainer(rec: ContainerRecord) {
  const running = containerAlive(rec);
  const pids = running ? containerPids(rec) : [];
  const netns = namespaceOf(rec);
  const eps = rec.endpoints ?? [];
  // A container waiting to restart keeps its namespace, address and ports; so does one whose
  // command has just ended and whose manager has not yet recorded it (or started it again).
  const networked = rec.status === "running" || rec.status === "restarting";
  const kernel = networked && eps.length && rec.netns ? addressing(rec.netns, eps.map((e) => e.ifname)) : new Map<string, Addressing>();
  const primary = (eps[0] && kernel.get(eps[0].ifname)) ?? NO_ADDRESS;
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  if (networked && eps.length) {
    for (const p of portsHeld(rec)) {
      (ports[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: formatIp(p.hostIp), HostPort: String(p.hostPort) });
    }
  }
  const networkName = rec.mode === "container" ? `container:${rec.joined?.id}` : rec.mode === "bridge" ? (eps[0]?.network ?? rec.network?.name ?? "bridge") : rec.mode;
  // As configured (Docker's HostConfig.PortBindings), whether or not the container runs.
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  // Docker's HostIp is "" for a -p that named no address; a dual-stack network's 0.0.0.0 and ::
  // of one such -p are its one binding.
  for (const m of rec.ports ?? []) {
    const list = (bindings[`${m.containerPort}/${m.proto}`] ??= []);
    const b = { HostIp: isAnyAddress(m.hostIp) ? "" : formatIp(m.hostIp), HostPort: String(m.hostPort) };
    if (!list.some((x) => x.HostIp === b.HostIp && x.HostPort === b.HostPort)) list.push(b);
  }
  const networks: Record<string, unknown> = {};
  for (const e of eps) {
    const a = kernel.get(e.ifname) ?? NO_ADDRESS;
    networks[e.network] = {
      Aliases: e.aliases,
      NetworkID: e.networkId,
      EndpointID: e.hostVeth,
      Gateway: a.Gateway,
      IPAddress: a.IPAddress,
      IPPrefixLen: a.IPPrefixLen,
      IPv6Gateway: a.IPv6Gateway,
      GlobalIPv6Address: a.GlobalIPv6Address,
      GlobalIPv6PrefixLen: a.GlobalIPv6PrefixLen,
      MacAddress: a.MacAddress,
      DNSNames: [rec.name, rec.id.slice(0, 12), ...e.aliases],
    };
  }
  return {
    Id: rec.id,
    Created: rec.created,
    Name: `/${rec.name}`,
    State: {
      Status: rec.status,
      Running: running,
      Restarting: rec.status === "restarting",
      // The first process while it lives, then the longest-running of the others.
      Pid: running ? mainPid(rec, pids) : 0,
      // tsnet's own: every process of the container, and the cgroup that holds them ("" where
      // there is no cgroup v2 and the container is its first process's group).
      Pids: pids,
      Cgroup: rec.cgroup ?? "",
      ExitCode: rec.exitCode ?? 0,
      StartedAt: rec.startedAt ?? ZERO_TIME,
      FinishedAt: rec.finishedAt ?? ZERO_TIME,
    },
    RestartCount: rec.restartCount ?? 0,
    Config: {
      Cmd: rec.command,
      // What -e and --env-file set; the rest of the command's environment is its caller's.
      Env: rec.config?.env ?? [],
      WorkingDir: rec.config?.workdir ?? "",
      User: rec.config?.user ?? "",
      Labels: rec.config?.labels ?? {},
    },
    HostConfig: {
      NetworkMode: networkName,
      PortBindings: bindings,
      AutoRemove: rec.autoRemove,
      RestartPolicy: { Name: rec.config?.restart?.name ?? "no", MaximumRetryCount: rec.config?.restart?.max ?? 0 },
    },
    NetworkSettings: {
      SandboxKey: networked && netns ? netns : "",
      ...primary,
      Ports: ports,
      Networks: networks,
    },
  };
}

export default defineCommand({
  name: "inspect",
  details: [
    "Addresses, MAC, gateway and published ports are read from the kernel, not from tsnet's records. With --format, each container's result is one line; a field the document lacks prints <no value>, as in Docker.",
  ],
  args: [{ name: "CONTAINER", what: "at least one container", description: "Name or id (a unique prefix is enough)", repeat: true, complete: "container" }],
  options: {
    format: {
      type: "string", alias: "f", valueHint: "FORMAT", complete: ["json"],
      description: "json (the default), or a Go template run over each container's document, e.g. '{{.NetworkSettings.IPAddress}}' or '{{json .State}}'",
      example: "tsnet inspect -f '{{.NetworkSettings.IPAddress}}' web",
    },
  },
  examples: ["tsnet inspect web", "tsnet inspect -f '{{range $p, $b := .NetworkSettings.Ports}}{{$p}} {{(index $b 0).HostPort}}{{end}}' web"],
  async run({ opts, args }) {
    const format = parseFormat("inspect", opts.format, "zero", false);
    requireRoot("tsnet inspect", `${STATE_IS_ROOTS}, and it reads addresses inside namespaces`);
    await recover();
    const found: unknown[] = [];
    const code = await eachRef(args, (ref) => {
      found.push(inspectContainer(mustFind(ref)));
    }, (e) => log.error(e.message));
    if (format.kind === "template") out(found.map((c) => `${execute("inspect", format.template, c)}\n`).join(""));
    else out(`${JSON.stringify(found, null, 4)}\n`);
    return code;
  },
});
