// CNI DEL: releases whatever the attachment holds and succeeds for what no longer exists: a second
// DEL, a namespace already gone (the veth is removed from the host side, and the kernel took the
// inside end with the namespace anyway), an ADD that failed half-way. The delegated IPAM plugin,
// if any, is always called, as the spec asks, after tsnet's own clean-up.
import { mark } from "../errors/trace.ts";
import { netnsInUse } from "../netns/netns.ts";
import { attachmentId, loadAttachment } from "../state/cni.ts";
import { releaseLeasesOf, teardownAttachment } from "./attachment.ts";
import type { CniEnv, NetConf } from "./config.ts";
import { delegate } from "./delegate.ts";
import { findCniNetwork } from "./network.ts";

export async function cniDel(env: CniEnv, conf: NetConf, stdin: string): Promise<void> {
  const errors: Error[] = [];
  const id = attachmentId(conf.name, env.containerId, env.ifname);
  // The record names everything the attachment made (and the network it is on), so the common
  // case reads that one file. Without a record nothing of it was made (the record comes first),
  // unless the record was removed behind tsnet's back: then only a lease can be found.
  const a = loadAttachment(conf.name, id);
  mark("loaded");
  try {
    // A namespace with no process in it is on its way out: its veth goes with it.
    if (a) teardownAttachment(a, !netnsInUse(env.netns || a.netns));
    else {
      const net = findCniNetwork(conf.name);
      if (net) releaseLeasesOf(net.id, id);
    }
  } catch (e) {
    errors.push(e as Error);
  }
  if (conf.ipamPlugin) {
    try {
      await delegate(conf.ipamPlugin, "DEL", env, stdin);
    } catch (e) {
      errors.push(e as Error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new Error(errors.map((e) => e.message).join("; "));
}
