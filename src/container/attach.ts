// Networks of a running container: `network connect` gives it another interface (eth1, ...) on
// another network, `network disconnect` takes one away. Both run in a process other than the
// container's manager, so they change the record under its lock; the manager re-reads the
// endpoints before tearing the container down.
import { close } from "../../ffi/libc.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";
import { openNetns } from "../netns/netns.ts";
import { attachEndpoint, containerOwner, planEndpoint, staticAddresses, detachEndpoint } from "../network/sandbox.ts";
import { planBringUp } from "../network/networks.ts";
import type { Op } from "../plan/ops.ts";
import { NETNS_DIR } from "../state/paths.ts";
import { listAttachments } from "../state/cni.ts";
import { listRecords, loadRecord, saveRecord, withRecordLock, type ContainerRecord } from "../state/containers.ts";
import type { NetworkRecord } from "../state/networks.ts";
import { OBJECT_ERROR, isRunning, mustFind } from "./control.ts";
import { refreshHosts } from "./etc.ts";

/** Running containers with an endpoint on the network. */
export function attachedContainers(net: NetworkRecord): ContainerRecord[] {
  return listRecords().filter((r) => isRunning(r) && (r.endpoints ?? []).some((e) => e.networkId === net.id));
}

/** Who is on the network, as `network rm` names them: running containers and CNI attachments. */
export function attachedNames(net: NetworkRecord): string[] {
  const cni = listAttachments(net.name).filter((a) => a.networkId === net.id).map((a) => `cni:${a.containerId.slice(0, 12)}:${a.ifname}`);
  return [...attachedContainers(net).map((c) => c.name), ...cni];
}

export interface ConnectOptions {
  ip?: string;
  ip6?: string;
  aliases?: string[];
}

/** What connectContainer refuses before it takes the record's lock: the network and the options. */
function checkConnect(net: NetworkRecord, o: ConnectOptions): ReturnType<typeof staticAddresses> {
  if (net.driver !== "bridge") throw new UsageError(`cannot connect a container to the ${net.name} network: only bridge networks can be connected`);
  const fixed = staticAddresses(net, o.ip, o.ip6);
  if (o.aliases?.length && net.builtin) throw new UsageError(`--alias is supported on user-defined networks only`);
  return fixed;
}

/** The container's record as read now, if it can be connected to net (running, on a bridge network, not on net yet). */
function connectable(found: ContainerRecord, net: NetworkRecord): ContainerRecord {
  const rec = loadRecord(found.id);
  if (!rec || !isRunning(rec)) throw new TsnetError(`container ${found.name} is not running: only running containers can be connected`, OBJECT_ERROR);
  if (rec.mode !== "bridge" || !rec.netns) {
    throw new TsnetError(`container ${rec.name} uses --network ${rec.mode === "container" ? `container:${rec.joined?.id.slice(0, 12)}` : rec.mode}: only containers on a bridge network can be connected to another`, OBJECT_ERROR);
  }
  if ((rec.endpoints ?? []).some((e) => e.networkId === net.id)) {
    throw new TsnetError(`container ${rec.name} is already connected to network ${net.name}`, OBJECT_ERROR);
  }
  return rec;
}

/**
 * `network connect` as operations, changing nothing (`tsnet explain`): refused as connectContainer
 * refuses, then the network's bring-up and the endpoint planned from what is read now.
 */
export function planConnect(ref: string, net: NetworkRecord, o: ConnectOptions): Op[] {
  const found = mustFind(ref);
  const fixed = checkConnect(net, o);
  const rec = connectable(found, net);
  const fd = openNetns(rec.netns!);
  try {
    const up = planBringUp(net);
    const { plan } = planEndpoint(containerOwner(rec), net, { netns: netnsName(rec.netns!), fresh: false, loUp: false, nsFd: fd }, {
      ...fixed, aliases: o.aliases, hairpin: (rec.ports?.length ?? 0) > 0,
    });
    return [...up, ...plan.ops];
  } finally {
    close(fd);
  }
}

/** A namespace under /run/netns by its name there (as `ip -n` takes it); any other path as it is. */
export function netnsName(path: string): string {
  const dir = `${NETNS_DIR}/`;
  return path.startsWith(dir) && !path.slice(dir.length).includes("/") ? path.slice(dir.length) : path;
}

export function connectContainer(ref: string, net: NetworkRecord, o: ConnectOptions): void {
  const found = mustFind(ref);
  const fixed = checkConnect(net, o);
  withRecordLock(found.id, () => {
    const rec = connectable(found, net);
    const fd = openNetns(rec.netns!);
    try {
      attachEndpoint(containerOwner(rec), net, fd, { ...fixed, aliases: o.aliases, hairpin: (rec.ports?.length ?? 0) > 0 });
    } finally {
      close(fd);
    }
    saveRecord(rec);
    refreshHosts(rec);
  });
}

export function disconnectContainer(ref: string, net: NetworkRecord): void {
  const found = mustFind(ref);
  withRecordLock(found.id, () => {
    const rec = loadRecord(found.id);
    const ep = rec?.endpoints?.find((e) => e.networkId === net.id);
    if (!rec || !ep) throw new TsnetError(`container ${found.name} is not connected to network ${net.name}`, OBJECT_ERROR);
    if (!isRunning(rec)) throw new TsnetError(`container ${rec.name} is not running`, OBJECT_ERROR);
    if (ep === rec.endpoints?.[0] && rec.ports?.length) {
      throw new TsnetError(`container ${rec.name} publishes ports on network ${net.name}: they would point nowhere; stop the container instead`, OBJECT_ERROR);
    }
    // The interface leaves the namespace at once, set aside rather than deleted (which would block
    // for the kernel's rcu_barrier()); the pair goes when the container's namespace does.
    const fd = rec.netns ? openNetns(rec.netns) : undefined;
    try {
      detachEndpoint(containerOwner(rec), ep, fd ?? "gone");
    } finally {
      if (fd !== undefined) close(fd);
    }
    saveRecord(rec);
    refreshHosts(rec);
  });
}
