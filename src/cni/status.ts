// CNI STATUS (spec 1.1): can tsnet service an ADD now? It needs root (namespaces, links,
// nf_tables), the kernel's rtnetlink and nf_tables to answer, and, for a network that exists, a
// free address. The delegated IPAM plugin is asked too.
import { geteuid } from "../../ffi/libc.ts";
import { listPublished } from "../nat/portmap.ts";
import { hostRtnl } from "../network/host.ts";
import { leaseRange, subnetsOf } from "../network/networks.ts";
import { listLeases } from "../state/leases.ts";
import type { CniEnv, NetConf } from "./config.ts";
import { delegate } from "./delegate.ts";
import { findCniNetwork } from "./network.ts";
import { CniError, ERR_NOT_AVAILABLE } from "./spec.ts";

export async function cniStatus(env: CniEnv, conf: NetConf, stdin: string): Promise<void> {
  if (geteuid() !== 0) throw new CniError(ERR_NOT_AVAILABLE, "tsnet needs root to attach containers (network namespaces, links, nf_tables)");
  try {
    hostRtnl();
    listPublished();
  } catch (e) {
    throw new CniError(ERR_NOT_AVAILABLE, `the kernel does not answer tsnet: ${(e as Error).message}`);
  }
  const net = findCniNetwork(conf.name);
  if (net && !conf.ipamPlugin) {
    const sub = subnetsOf(net)[0];
    if (sub) {
      const r = leaseRange(sub);
      const usable = r.last.value - r.first.value; // the range minus the gateway
      if (BigInt(listLeases(net.id).length) >= usable) throw new CniError(ERR_NOT_AVAILABLE, `network ${net.name} has no free address left in ${net.subnets[0]!.subnet}`);
    }
  }
  if (conf.ipamPlugin) await delegate(conf.ipamPlugin, "STATUS", env, stdin);
}
