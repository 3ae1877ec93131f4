// CNI CHECK: the attachment is as ADD left it. The expected interface and addresses come from
// prevResult (as the spec asks); the kernel is then asked, from outside: the bridge, the veth's
// host end on it, the inside end up with its MAC and addresses, the routes tsnet made, the lease,
// and the published ports in tsnet's maps. A route added or changed by a later plugin is not
// tsnet's to judge; one tsnet made and recorded that is missing is.
import { close } from "../../ffi/libc.ts";
import { formatHostPort, isAnyAddress, type AimedPort, type PublishedPort } from "../ip/port.ts";
import { publishedPorts } from "../nat/portmap.ts";
import { endpointProblems } from "../network/sandbox.ts";
import { attachmentId, loadAttachment } from "../state/cni.ts";
import { openTargetNetns } from "./add.ts";
import { attachmentOwner, portOwnerOf, publishedFor } from "./attachment.ts";
import type { CniEnv, NetConf } from "./config.ts";
import { delegate } from "./delegate.ts";
import { findCniNetwork } from "./network.ts";
import { CniError, ERR_CHECK_FAILED, ERR_INVALID_CONFIG } from "./spec.ts";

export async function cniCheck(env: CniEnv, conf: NetConf, stdin: string): Promise<void> {
  const prev = conf.prevResult;
  if (!prev) throw new CniError(ERR_INVALID_CONFIG, `CHECK needs "prevResult", the result of the ADD being checked`);
  const where = `container ${env.containerId} on network ${conf.name} as ${env.ifname}`;
  const fail = (problems: string[]) => new CniError(ERR_CHECK_FAILED, `${where} is not as ADD left it: ${problems.join("; ")}`);
  const net = findCniNetwork(conf.name);
  if (!net) throw fail([`network ${conf.name} does not exist`]);
  const a = loadAttachment(conf.name, attachmentId(conf.name, env.containerId, env.ifname));
  const ep = a?.endpoints[0];
  if (!a || !ep) throw fail(["tsnet has no such attachment (was it added, or deleted since?)"]);
  if (conf.ipamPlugin) await delegate(conf.ipamPlugin, "CHECK", env, stdin);

  const problems: string[] = [];
  // prevResult says what to expect: the interface in this namespace, and its addresses.
  const idx = prev.interfaces?.findIndex((i) => i.name === env.ifname && i.sandbox !== undefined && i.sandbox !== "") ?? -1;
  if (idx < 0) problems.push(`prevResult has no interface ${env.ifname} with a sandbox`);
  else {
    const want = prev.ips?.filter((i) => i.interface === idx).map((i) => i.address) ?? [];
    const have = ep.ips.map((i) => `${i.address}/${i.prefix}`);
    for (const w of want) if (!have.includes(w)) problems.push(`prevResult gives ${env.ifname} address ${w}, tsnet gave it ${have.join(", ")}`);
    if (prev.interfaces![idx]!.mac && prev.interfaces![idx]!.mac!.toLowerCase() !== ep.mac) problems.push(`prevResult gives ${env.ifname} MAC ${prev.interfaces![idx]!.mac}, tsnet gave it ${ep.mac}`);
  }
  let fd: number | undefined;
  try {
    fd = openTargetNetns(env.netns);
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (fd !== undefined) {
    try {
      problems.push(...endpointProblems(ep, net, fd, attachmentOwner(a)));
    } finally {
      close(fd);
    }
  }
  // Port mappings: what the record says against what tsnet's maps hold for this owner.
  // "*:PORT" is every IPv4 address, as before IPv6; "[::]:PORT" every IPv6 one.
  const host = (p: AimedPort) => (isAnyAddress(p.hostIp) && p.hostIp.family === 4 ? `*:${p.hostPort}` : formatHostPort(p.hostIp, p.hostPort));
  const key = (p: AimedPort) => `${p.proto} ${host(p)} -> ${formatHostPort(p.containerIp, p.containerPort)}`;
  const want = new Set(publishedFor(a).map(key));
  const have = new Set(publishedPorts(portOwnerOf(a).tag).map(key));
  for (const w of want) if (!have.has(w)) problems.push(`port mapping ${w} is missing from tsnet's maps`);
  for (const h of have) if (!want.has(h)) problems.push(`port mapping ${h} is in tsnet's maps but was not asked for`);
  if (conf.portMappings.length || a.ports.length) {
    const text = (m: PublishedPort) => `${m.proto}/${formatHostPort(m.hostIp, m.hostPort)}/${m.containerPort}`;
    const asked = new Set(conf.portMappings.map(text));
    const made = new Set(a.ports.map(text));
    if (asked.size !== made.size || [...asked].some((x) => !made.has(x))) problems.push("runtimeConfig.portMappings differ from the ones ADD published");
  }
  if (problems.length) throw fail(problems);
}
