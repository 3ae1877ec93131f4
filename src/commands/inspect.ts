import { defineCommand } from "citty";
import { close } from "../../ffi/libc.ts";
import { log } from "../cli/log.ts";
import { requireRoot } from "../cli/root.ts";
import { scanOptions } from "../cli/argv.ts";
import { containerPids, eachRef, mainPid, mustFind, namespaceOf } from "../container/control.ts";
import { containerAlive, recoverOrphans } from "../container/lifecycle.ts";
import { UsageError } from "../errors/errors.ts";
import { formatIPv4 } from "../ip/ipv4.ts";
import { publishedPorts } from "../nat/portmap.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { inNetns, openNetns } from "../netns/netns.ts";
import { formatMac } from "../network/bridge.ts";
import { addrList } from "../rtnetlink/addr.ts";
import { linkGet } from "../rtnetlink/link.ts";
import { routeList } from "../rtnetlink/route.ts";
import type { ContainerRecord } from "../state/containers.ts";

const ZERO_TIME = "0001-01-01T00:00:00Z";

interface Addressing {
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
}
const NO_ADDRESS: Addressing = { IPAddress: "", IPPrefixLen: 0, Gateway: "", MacAddress: "" };

/** eth0's address, prefix, MAC and default gateway, read from the kernel inside the namespace. */
function addressing(path: string, ifname: string): Addressing {
  const fd = openNetns(path);
  let nl: NetlinkSocket;
  try {
    nl = inNetns(fd, () => new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${path})`));
  } finally {
    close(fd);
  }
  try {
    const link = linkGet(nl, ifname);
    if (!link) return NO_ADDRESS;
    const addr = addrList(nl).find((a) => a.index === link.index);
    const gw = routeList(nl).find((r) => r.dstLen === 0 && r.oif === link.index && r.gateway !== undefined);
    return {
      IPAddress: addr ? formatIPv4(addr.address) : "",
      IPPrefixLen: addr?.prefix ?? 0,
      Gateway: gw?.gateway !== undefined ? formatIPv4(gw.gateway) : "",
      MacAddress: link.mac ? formatMac(link.mac) : "",
    };
  } finally {
    nl.close();
  }
}

export function inspectContainer(rec: ContainerRecord) {
  const running = containerAlive(rec);
  const pids = running ? containerPids(rec) : [];
  const netns = namespaceOf(rec);
  const a = running && rec.endpoint && rec.netns ? addressing(rec.netns, rec.endpoint.ifname) : NO_ADDRESS;
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  if (running && rec.endpoint) {
    for (const p of publishedPorts(rec)) {
      (ports[`${p.containerPort}/${p.proto}`] ??= []).push({ HostIp: formatIPv4(p.hostIp), HostPort: String(p.hostPort) });
    }
  }
  const networkName = rec.mode === "container" ? `container:${rec.joined?.id}` : rec.mode;
  return {
    Id: rec.id,
    Created: rec.created,
    Name: `/${rec.name}`,
    State: {
      Status: rec.status,
      Running: running,
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
    Config: { Cmd: rec.command },
    HostConfig: { NetworkMode: networkName, AutoRemove: rec.autoRemove },
    NetworkSettings: {
      SandboxKey: running && netns ? netns : "",
      ...a,
      Ports: ports,
      Networks: rec.endpoint ? { [rec.endpoint.network]: { NetworkID: rec.endpoint.network, ...a } } : {},
    },
  };
}

export default defineCommand({
  meta: { name: "inspect", description: "Docker-shaped JSON for containers; addresses and ports are read from the kernel" },
  args: { containers: { type: "positional", description: "Names or ids", required: false } },
  async run({ rawArgs }) {
    const { rest } = scanOptions("inspect", rawArgs, []);
    if (rest.length === 0) throw new UsageError("tsnet inspect needs at least one container, e.g. tsnet inspect web");
    requireRoot("tsnet inspect");
    recoverOrphans();
    const out: unknown[] = [];
    const code = await eachRef(rest, (ref) => {
      out.push(inspectContainer(mustFind(ref)));
    }, (e) => log.error(e.message));
    process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
    return code;
  },
});
