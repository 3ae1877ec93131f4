// A container's network: its namespace and, on a bridge network, the veth pair that joins it to
// the bridge. setup makes each object only after the record names it; teardown removes whatever
// the record names, tolerating pieces that are already gone, so the same code undoes a failed
// setup, a normal exit and (later) a crashed run.
import { Cleanup, KernelError } from "../errors/errors.ts";
import { ENODEV } from "../errors/errno.ts";
import { lastAddress } from "../ip/ipv4.ts";
import { NETLINK_ROUTE } from "../netlink/constants.ts";
import { NetlinkSocket } from "../netlink/socket.ts";
import { closeNetns, createNetns, deleteNetns, netnsPath, type Netns } from "../netns/netns.ts";
import { addrAdd } from "../rtnetlink/addr.ts";
import { bridgePortHairpin, linkAdd, linkGet, linkSet } from "../rtnetlink/link.ts";
import { routeAdd } from "../rtnetlink/route.ts";
import { saveRecord, type ContainerRecord } from "../state/containers.ts";
import { releaseLease, takeLowestLease } from "../state/leases.ts";
import { defaultNetwork, ensureBridge, formatMac, macFor } from "./bridge.ts";
import { deleteLinkQuickly } from "./dellink.ts";
import { crashPoint } from "../container/crashpoint.ts";

const LOOPBACK_IFINDEX = 1; // lo is always the first link of a new namespace

export interface Sandbox {
  ns: Netns;
}

let hostSocket: NetlinkSocket | undefined;
/** rtnetlink in tsnet's own (host) namespace, opened once per process. */
export function hostRtnl(): NetlinkSocket {
  hostSocket ??= new NetlinkSocket(NETLINK_ROUTE, "rtnetlink (host)");
  return hostSocket;
}

/** Builds the sandbox the record's mode asks for. Throws with everything undone. */
export function setupSandbox(rec: ContainerRecord): Sandbox {
  try {
    return rec.mode === "bridge" ? setupBridge(rec) : setupIsolated(rec);
  } catch (e) {
    try {
      teardownSandbox(rec);
    } catch (undo) {
      if (e instanceof Error && undo instanceof Error) e.message += ` (and undoing it: ${undo.message})`;
    }
    throw e;
  }
}

function namespaceFor(rec: ContainerRecord): { ns: Netns; nl: NetlinkSocket } {
  rec.netns = netnsPath(`tsnet-${rec.name}`);
  saveRecord(rec);
  const { ns, result: nl } = createNetns(`tsnet-${rec.name}`, () => {
    const nl = new NetlinkSocket(NETLINK_ROUTE, `rtnetlink (${rec.name})`);
    linkSet(nl, LOOPBACK_IFINDEX, { up: true }, "lo");
    return nl;
  });
  return { ns, nl };
}

function setupIsolated(rec: ContainerRecord): Sandbox {
  const { ns, nl } = namespaceFor(rec);
  nl.close();
  return { ns };
}

function setupBridge(rec: ContainerRecord): Sandbox {
  const net = defaultNetwork();
  const host = hostRtnl();
  const bridgeIndex = ensureBridge(host, net);
  // .0 is the network, .1 the gateway, the last the broadcast address.
  const address = takeLowestLease(net.name, net.gateway + 1, lastAddress(net.subnet) - 1, rec.id);
  crashPoint("after-lease");
  const mac = macFor(address);
  rec.endpoint = {
    network: net.name,
    bridge: net.bridge,
    hostVeth: `veth${rec.id.slice(0, 7)}`,
    ifname: "eth0",
    address,
    prefix: net.subnet.prefix,
    gateway: net.gateway,
    mac: formatMac(mac),
  };
  const ep = rec.endpoint;
  const { ns, nl } = namespaceFor(rec);
  crashPoint("after-netns");
  try {
    // One message makes both ends: the host end attached to the bridge and up, the container end
    // born inside the namespace as eth0 (so no rename or move is needed).
    linkAdd(host, {
      name: ep.hostVeth,
      kind: "veth",
      master: bridgeIndex,
      up: true,
      peer: { name: ep.ifname, nsFd: ns.fd, mac },
    });
    crashPoint("after-veth");
    // A container reaching its own published port through a host address is DNAT-ed on the
    // bridge back out of the port it came in by, which a bridge allows only in hairpin mode.
    if (rec.ports?.length) {
      const port = linkGet(host, ep.hostVeth);
      if (port) bridgePortHairpin(host, port.index, true, ep.hostVeth);
    }
    const eth0 = linkGet(nl, ep.ifname);
    if (!eth0) throw new KernelError("find link", `${ep.ifname} in ${rec.netns}`, ENODEV);
    // The peer cannot be brought up in the creating message (the kernel has not paired the
    // ends yet at that point), so it goes up here.
    linkSet(nl, eth0.index, { up: true }, ep.ifname);
    addrAdd(nl, eth0.index, ep.address, ep.prefix, ep.ifname);
    routeAdd(nl, { dst: 0, dstLen: 0, gateway: ep.gateway, oif: eth0.index }, rec.name);
    return { ns };
  } catch (e) {
    closeNetns(ns);
    throw e;
  } finally {
    nl.close();
  }
}

/** Removes everything the record names; goes on past failures and reports them all at the end. */
export function teardownSandbox(rec: ContainerRecord, sandbox?: Sandbox): void {
  const c = new Cleanup();
  if (sandbox) c.step(() => closeNetns(sandbox.ns));
  const ep = rec.endpoint;
  if (ep) {
    // Deleting one end deletes the pair. Without this the namespace's destruction would remove it
    // too, but asynchronously, after tsnet has already exited.
    c.step(() => deleteLinkQuickly(hostRtnl(), ep.hostVeth));
    crashPoint("teardown-after-veth");
  }
  const netns = rec.netns;
  if (netns) c.step(() => deleteNetns(netns));
  if (ep) c.step(() => releaseLease(ep.network, ep.address, rec.id));
  c.done();
}
