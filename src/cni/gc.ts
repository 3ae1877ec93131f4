// CNI GC (spec 1.1): every attachment of the network that is not in cni.dev/valid-attachments is
// torn down as DEL would (its namespace may be long gone), and leases naming a CNI attachment
// that has no record are released. Failures do not stop the sweep; they are reported together.
// The delegated IPAM plugin, if any, gets the GC too.
import { releaseLease, listLeases } from "../state/leases.ts";
import { attachmentId, listAttachments, loadAttachment } from "../state/cni.ts";
import { reapHostSetAside } from "../network/reap.ts";
import { teardownAttachmentAt } from "./del.ts";
import type { CniEnv, NetConf } from "./config.ts";
import { delegate } from "./delegate.ts";
import { findCniNetwork } from "./network.ts";
import { CniError, ERR_FAILED } from "./spec.ts";

export async function cniGc(env: CniEnv, conf: NetConf, stdin: string): Promise<void> {
  const errors: string[] = [];
  const net = findCniNetwork(conf.name);
  if (net) {
    const valid = new Set((conf.validAttachments ?? []).map((v) => attachmentId(conf.name, v.containerId, v.ifname)));
    for (const a of listAttachments(conf.name)) {
      if (valid.has(a.id)) continue;
      try {
        teardownAttachmentAt(a, a.netns);
      } catch (e) {
        errors.push(`${a.containerId}/${a.ifname}: ${(e as Error).message}`);
      }
    }
    // The veth pairs DEL set aside in namespaces their runtime keeps (no record names them any
    // more): deleted now, GC being the runtime's time for such work.
    try {
      reapHostSetAside();
    } catch (e) {
      errors.push(`set-aside veths: ${(e as Error).message}`);
    }
    for (const l of listLeases(net.id)) {
      if (!l.cniContainer || valid.has(l.container) || loadAttachment(conf.name, l.container)) continue;
      try {
        releaseLease(net.id, l.address, l.container);
      } catch (e) {
        errors.push(`lease of ${l.cniContainer}: ${(e as Error).message}`);
      }
    }
  }
  if (conf.ipamPlugin) {
    try {
      await delegate(conf.ipamPlugin, "GC", env, stdin);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length) throw new CniError(ERR_FAILED, `GC of network ${conf.name} left ${errors.length} problem(s)`, errors.join("; "));
}
