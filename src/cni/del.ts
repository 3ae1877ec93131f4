// CNI DEL: releases whatever the attachment holds and succeeds for what no longer exists: a second
// DEL, a namespace already gone (the kernel took the inside end with it; the host end is set
// aside if it is still there), an ADD that failed half-way. When DEL returns, the namespace has no
// interface, address or route of the attachment's and the bridge no port of it; the veth pair,
// set aside, goes with the namespace (src/network/sandbox.ts detachEndpoint). The delegated IPAM
// plugin, if any, is always called, as the spec asks, after tsnet's own clean-up.
import { close } from "../../ffi/libc.ts";
import { mark } from "../errors/trace.ts";
import { attachmentId, loadAttachment, type CniAttachment } from "../state/cni.ts";
import { openTargetNetns } from "./add.ts";
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
    if (a) teardownAttachmentAt(a, env.netns || a.netns);
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

/**
 * teardownAttachment with the attachment's namespace (path: the runtime's CNI_NETNS, else the one
 * recorded) opened for the time it takes; "gone" when that is no network namespace any more.
 */
export function teardownAttachmentAt(a: CniAttachment, path: string | undefined): void {
  let ns: number | "gone" = "gone";
  try {
    if (path) ns = openTargetNetns(path);
  } catch {
    // Removed by the runtime already (or the path now names something else): nothing inside to set aside.
  }
  try {
    teardownAttachment(a, ns);
  } finally {
    if (ns !== "gone") close(ns);
  }
}
