// CNI ADD: the namespace at CNI_NETNS gets interface CNI_IFNAME on the configuration's tsnet
// network, through the path `tsnet run` takes: networkUp, a lease (or a delegated IPAM plugin's
// address), attachEndpoint (veth with its peer born inside, address, routes, hairpin) with
// runtimeConfig.portMappings published as the last step of the same plan (planCniAdd). The attachment's record is written (O_EXCL) before
// anything it names is made; a failure undoes this ADD's objects and nothing else.
import { mark } from "../errors/trace.ts";
import { close, O_NOCTTY, O_NONBLOCK, O_RDONLY, open } from "../../ffi/libc.ts";
import { statSync, type Stats } from "../../ffi/fs.ts";
import { isErrno } from "../errors/errors.ts";
import { ENOENT } from "../errors/errno.ts";
import { formatIp, formatPrefix, parseIp, parsePrefix, type IpAddress } from "../ip/addr.ts";
import { listPublished, PortTakenError } from "../nat/portmap.ts";
import { mapOf } from "../nat/ruleset.ts";
import { attachEndpoint, hostMacs, type ExtraRoute } from "../network/sandbox.ts";
import { reapSetAside } from "../network/reap.ts";
import { netnsIdentity, ownNetnsIdentity } from "../netns/netns.ts";
import { attachmentId, createAttachment, saveAttachment, type CniAttachment } from "../state/cni.ts";
import type { NetworkRecord } from "../state/networks.ts";
import { clashes, formatHostPort, isAnyAddress, type PublishedPort } from "../ip/port.ts";
import { attachmentOwner, portOwnerOf, teardownAttachment } from "./attachment.ts";
import type { CniEnv, NetConf } from "./config.ts";
import { delegate } from "./delegate.ts";
import { ensureCniNetwork, refusePorts } from "./network.ts";
import {
  CniError, ERR_FAILED, ERR_INVALID_CONFIG, ERR_INVALID_ENV, ERR_PORT_TAKEN, readResult, type CniDns, type CniInterface,
  type CniIp, type CniResult, type CniRoute,
} from "./spec.ts";

/** What a file that is not a namespace is, for the error line. */
function fileKind(st: Stats): string {
  if (st.isFIFO()) return "it is a FIFO";
  if (st.isCharacterDevice()) return "it is a character device";
  if (st.isBlockDevice()) return "it is a block device";
  if (st.isDirectory()) return "it is a directory";
  if (st.isSocket()) return "it is a socket";
  return "not a network namespace";
}

/**
 * Opens CNI_NETNS, refusing what is not another network namespace. The path is the runtime's
 * input: it is stat'ed first and only a regular file (a namespace's nsfs inode, bind-mounted or
 * behind /proc/PID/ns/net) is opened, without blocking (O_NONBLOCK: a FIFO there would hold
 * open(2) forever; O_NOCTTY: a terminal would become ours); setns then says whether it is a
 * network namespace.
 */
export function openTargetNetns(path: string): number {
  const invalid = (why: string) => new CniError(ERR_INVALID_ENV, `invalid CNI_NETNS "${path}": ${why}: give the path of the container's network namespace`);
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    throw invalid((e as Error).message);
  }
  if (!st) throw invalid("no such file");
  if (!st.isFile()) throw invalid(fileKind(st));
  let fd: number;
  try {
    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  } catch (e) {
    throw invalid(isErrno(e, ENOENT) ? "no such file" : (e as Error).message);
  }
  const id = netnsIdentity(fd);
  if (!id || id === ownNetnsIdentity()) {
    close(fd);
    throw invalid(id ? "it is the namespace tsnet runs in (the host's)" : "not a network namespace");
  }
  return fd;
}

/** What a delegated IPAM plugin handed out, read from its result. */
interface IpamLease {
  address: IpAddress;
  subnet: string;
  gateway?: string;
  routes: ExtraRoute[];
  dns?: CniDns;
}

function readIpam(raw: unknown, type: string): IpamLease {
  const r = readResult(raw, `IPAM plugin ${type}'s result`);
  const ip = r.ips?.find((i) => parsePrefix(i.address)?.family === 4);
  if (!ip) throw new CniError(ERR_INVALID_CONFIG, `IPAM plugin ${type} gave no IPv4 address (tsnet's networks are IPv4): configure an IPv4 range`);
  const address = parseIp(ip.address.split("/")[0]!)!;
  const routes: ExtraRoute[] = [];
  for (const rt of r.routes ?? []) {
    const dst = parsePrefix(rt.dst);
    if (!dst || dst.family !== 4) continue;
    const gw = rt.gw === undefined ? undefined : parseIp(rt.gw);
    routes.push({ dst, ...(gw && { gw }) });
  }
  return { address, subnet: formatPrefix(parsePrefix(ip.address)!), ...(ip.gateway && { gateway: ip.gateway }), routes, ...(r.dns && { dns: r.dns }) };
}

/**
 * Refuses a host port another tsnet owner publishes on every address when this one is on one
 * address, or the other way round (the maps would let one shadow the other). An identical key
 * the kernel refuses by itself (EEXIST), atomically, even between concurrent ADDs; so only the
 * other map needs reading: `hostip_ports` for a mapping on every address (usually empty).
 */
export function refuseTakenPorts(ports: readonly PublishedPort[]): void {
  if (!ports.length) return;
  const maps = [...new Set(ports.map((m) => mapOf(m.hostIp.family, !isAnyAddress(m.hostIp))))];
  const published = listPublished(maps);
  for (const m of ports) {
    const k = published.find((p) => clashes(p, m));
    if (k) {
      const host = isAnyAddress(k.hostIp) ? `${k.hostPort}` : formatHostPort(k.hostIp, k.hostPort);
      throw new CniError(ERR_PORT_TAKEN, `host port ${host}/${k.proto} is already published by ${k.name} (${k.tag}): choose another host port`);
    }
  }
}

export async function cniAdd(env: CniEnv, conf: NetConf, stdin: string): Promise<CniResult> {
  const fd = openTargetNetns(env.netns);
  try {
    let lease: IpamLease | undefined;
    if (conf.ipamPlugin) lease = readIpam(await delegate(conf.ipamPlugin, "ADD", env, stdin), conf.ipamPlugin);
    try {
      return attach(env, conf, fd, lease);
    } catch (e) {
      // The spec: a failed ADD runs the delegated plugin's DEL before returning.
      if (conf.ipamPlugin) {
        try {
          await delegate(conf.ipamPlugin, "DEL", env, stdin);
        } catch (undo) {
          if (e instanceof Error) e.message += ` (and releasing the address: ${(undo as Error).message})`;
        }
      }
      throw e;
    }
  } finally {
    close(fd);
  }
}

/** The attachment an ADD of this environment and configuration records, before anything is made. */
export function attachmentFor(env: CniEnv, conf: NetConf, net: { name: string; id: string }): CniAttachment {
  return {
    id: attachmentId(conf.name, env.containerId, env.ifname),
    network: net.name,
    networkId: net.id,
    containerId: env.containerId,
    ifname: env.ifname,
    netns: env.netns,
    created: new Date().toISOString(),
    ...(conf.ipamPlugin && { ipam: conf.ipamPlugin }),
    endpoints: [],
    ports: conf.portMappings,
  };
}

function attach(env: CniEnv, conf: NetConf, fd: number, lease: IpamLease | undefined): CniResult {
  const net = ensureCniNetwork(conf, lease && { subnet: lease.subnet, gateway: lease.gateway });
  mark("network");
  if (lease && net.subnets[0]?.subnet !== lease.subnet) {
    throw new CniError(ERR_INVALID_CONFIG, `IPAM plugin ${conf.ipamPlugin} gave ${formatIp(lease.address)} in ${lease.subnet}, but network ${net.name} is ${net.subnets[0]?.subnet}: configure the plugin's range inside the network's subnet`);
  }
  refusePorts(net, conf);
  refuseTakenPorts(conf.portMappings);
  const a = attachmentFor(env, conf, net);
  mark("ports-free");
  // A pair an earlier DEL set aside in this namespace (its runtime keeps it and ADDs again) is
  // deleted now: the barrier is paid in that case only, and a namespace never collects them.
  reapSetAside(fd, Infinity, env.netns);
  if (!createAttachment(a)) {
    throw new CniError(ERR_FAILED, `container ${env.containerId} is already attached to network ${net.name} as ${env.ifname}: DEL it first`);
  }
  try {
    const ep = attachEndpoint(attachmentOwner(a), net, fd, {
      ip: lease?.address ?? conf.ip,
      ipWhat: lease ? `IPAM plugin ${conf.ipamPlugin}'s address` : "the requested address",
      mac: conf.mac,
      aliases: conf.aliases,
      hairpin: a.ports.length > 0,
      routes: lease ? lease.routes : conf.routes,
      awaitNames: true,
      // The port mappings with the endpoint, in one plan (planCniAdd): its last step.
      ...(a.ports.length && { publish: { owner: portOwnerOf(a), ports: a.ports } }),
    });
    if (a.ports.length) a.published = true;
    mark("endpoint");
    mark("published");
    // The endpoint as made (its veth now this attachment's to delete) and the ports as published.
    saveAttachment(a);
    return result(env, conf, net, a, lease?.dns ?? conf.dns, ep);
  } catch (e) {
    // Another owner took one of the keys between the check above and this commit.
    if (e instanceof PortTakenError) e = new CniError(ERR_PORT_TAKEN, e.message);
    try {
      teardownAttachment(a);
    } catch (undo) {
      if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
    }
    throw e;
  }
}

/**
 * The 1.x result: the bridge, the host end and the container's interface (in that order, as the
 * reference bridge plugin reports them), the address with its gateway, the routes made; added to
 * prevResult when tsnet is not the first plugin of a list.
 */
function result(env: CniEnv, conf: NetConf, net: NetworkRecord, a: CniAttachment, dns: CniDns | undefined, ep: CniAttachment["endpoints"][number]): CniResult {
  const prev = conf.prevResult;
  const base = prev?.interfaces?.length ?? 0;
  const macs = hostMacs(ep);
  const interfaces: CniInterface[] = [
    { name: ep.bridge, ...(macs.bridge && { mac: macs.bridge }) },
    { name: ep.hostVeth, ...(macs.hostVeth && { mac: macs.hostVeth }) },
    { name: ep.ifname, mac: ep.mac, ...(net.mtu && { mtu: net.mtu }), sandbox: a.netns },
  ];
  const ips: CniIp[] = ep.ips.map((i) => ({ address: `${i.address}/${i.prefix}`, ...(i.gateway && { gateway: i.gateway }), interface: base + 2 }));
  const gw = ep.ips.find((i) => !i.address.includes(":"))?.gateway;
  const gw6 = ep.ips.find((i) => i.address.includes(":"))?.gateway;
  const routes: CniRoute[] = [];
  if (!ep.noDefaultRoute && gw) routes.push({ dst: "0.0.0.0/0", gw });
  if (!ep.noDefaultRoute6 && gw6) routes.push({ dst: "::/0", gw: gw6 });
  for (const r of ep.routes ?? []) {
    const via = r.gw ?? (r.dst.includes(":") ? gw6 : gw);
    routes.push({ dst: r.dst, ...(via && { gw: via }) });
  }
  return {
    cniVersion: conf.cniVersion,
    interfaces: [...(prev?.interfaces ?? []), ...interfaces],
    ips: [...(prev?.ips ?? []), ...ips],
    routes: [...(prev?.routes ?? []), ...routes],
    ...((dns ?? prev?.dns) && { dns: dns ?? prev?.dns }),
  };
}
