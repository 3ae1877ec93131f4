// CNI ADD as operations, for `tsnet explain cni-add`: the request read as the plugin reads it (the
// configuration on stdin, CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS), the same
// checks, the network as it is (or as the first ADD would create it), the namespace at CNI_NETNS
// read (its interfaces, its default routes), and planCniAdd; nothing written, no lease taken.
import { close } from "../../ffi/libc.ts";
import { aimPorts } from "../ip/port.ts";
import { planEndpoint } from "../network/sandbox.ts";
import { planCniAdd } from "../plan/attach.ts";
import type { Op } from "../plan/ops.ts";
import { loadAttachment } from "../state/cni.ts";
import { attachmentFor, openTargetNetns, refuseTakenPorts } from "./add.ts";
import { attachmentOwner, portOwnerOf } from "./attachment.ts";
import { parseConf, readEnv } from "./config.ts";
import { planCniNetwork, refusePorts } from "./network.ts";
import { CniError, ERR_FAILED, ERR_INVALID_CONFIG, ERR_INVALID_ENV } from "./spec.ts";

/** The operations of the ADD that this environment and configuration ask for. */
export function planCniAddRequest(environment: Record<string, string | undefined>, stdin: string): { ops: Op[]; notes: string[] } {
  const env = readEnv({ CNI_COMMAND: "ADD", ...environment });
  if (env.command !== "ADD") throw new CniError(ERR_INVALID_ENV, `tsnet explain cni-add shows an ADD, not CNI_COMMAND=${env.command}: unset CNI_COMMAND or set it to ADD`);
  const conf = parseConf(stdin, env);
  if (conf.ipamPlugin) {
    throw new CniError(ERR_INVALID_CONFIG, `ipam type ${conf.ipamPlugin} is a delegated plugin: the address it would hand out is known only by asking it for one, which takes it; explain a configuration with tsnet's own ipam`);
  }
  const { net, ops } = planCniNetwork(conf);
  refusePorts(net, conf);
  refuseTakenPorts(conf.portMappings);
  const a = attachmentFor(env, conf, net);
  if (loadAttachment(net.name, a.id)) throw new CniError(ERR_FAILED, `container ${env.containerId} is already attached to network ${net.name} as ${env.ifname}: DEL it first`);
  const fd = openTargetNetns(env.netns);
  try {
    const { read, req, ips } = planEndpoint(attachmentOwner(a), net, { netns: env.netns, fresh: false, loUp: false, nsFd: fd }, {
      ip: conf.ip, ipWhat: "the requested address", mac: conf.mac, aliases: conf.aliases, hairpin: a.ports.length > 0, routes: conf.routes, awaitNames: true,
    });
    const plan = planCniAdd(read, req, portOwnerOf(a), aimPorts(a.ports, ips));
    return { ops: [...ops, ...plan.ops], notes: ["not in the script: the attachment's record and lease under /run/tsnet, and the result JSON the plugin prints"] };
  } finally {
    close(fd);
  }
}
