// A CNI network is a tsnet network: the record of the configuration's name, made on the first
// ADD from the configuration's keys (with tsnet's defaults for what it leaves out), shared with
// `tsnet run --network NAME` and shown by `tsnet network ls`. Later ADDs use the record as it is;
// a configuration that contradicts it is refused, naming the key, rather than silently ignored.
import { UsageError } from "../errors/errors.ts";
import { formatIp, formatPrefix, parseIp, parsePrefix } from "../ip/addr.ts";
import { allNetworks, createNetwork, knownNetworks, planBringUp, planCreateNetwork, type CreateNetworkOptions } from "../network/networks.ts";
import type { Op } from "../plan/ops.ts";
import type { NetworkRecord } from "../state/networks.ts";
import type { NetConf } from "./config.ts";
import { CniError, ERR_INVALID_CONFIG } from "./spec.ts";

/** Label on networks the plugin made, so `tsnet network ls` and inspect tell them apart. */
export const CNI_LABEL = "tsnet.cni";

/** The tsnet network of the configuration's name, if there is one (by exact name, never by id prefix). */
export function findCniNetwork(name: string): NetworkRecord | undefined {
  return allNetworks().find((n) => n.name === name);
}

/**
 * The configuration's network: the existing record, checked against the configuration, or one
 * made now. `addressing` is a delegated IPAM plugin's subnet and gateway, for a network made from
 * its first result.
 */
export function ensureCniNetwork(conf: NetConf, addressing?: { subnet: string; gateway?: string }): NetworkRecord {
  const o = cniNetworkOptions(conf, addressing);
  let net: NetworkRecord;
  try {
    net = createNetwork(o, true);
  } catch (e) {
    // Everything createNetwork refuses before making anything is the configuration's fault.
    if (e instanceof UsageError) throw new CniError(ERR_INVALID_CONFIG, e.message);
    throw e;
  }
  return agreeingNetwork(net, conf, o);
}

/** The network options a configuration's keys give (with a delegated IPAM plugin's subnet). */
function cniNetworkOptions(conf: NetConf, addressing?: { subnet: string; gateway?: string }): CreateNetworkOptions {
  const subnet = conf.subnet ?? addressing?.subnet;
  const gateway = conf.gateway ?? addressing?.gateway;
  // An IPv6 range beside the IPv4 one (ipam.ranges' second range set) makes a dual-stack network.
  const subnet6 = conf.subnet6;
  const gateway6 = conf.gateway6;
  return {
    name: conf.name,
    subnets: [subnet, subnet6].filter((x): x is string => x !== undefined),
    gateways: [gateway, gateway6].filter((x): x is string => x !== undefined),
    ipv6: subnet6 !== undefined,
    ipv6Word: `an IPv6 range in "ipam.ranges"`,
    internal: false,
    labels: { [CNI_LABEL]: conf.type },
    bridge: conf.bridge,
    ipMasq: conf.ipMasq,
    mtu: conf.mtu,
    hairpin: conf.hairpinMode,
    isGateway: conf.isGateway,
    subnetWord: `"subnet"`,
    mtuWord: `"mtu"`,
    gatewayWord: `"gateway"`,
  };
}

/** The network, refused when it has no bridge or the configuration contradicts it. */
function agreeingNetwork(net: NetworkRecord, conf: NetConf, o: CreateNetworkOptions): NetworkRecord {
  if (net.driver !== "bridge" || !net.bridge) {
    throw new CniError(ERR_INVALID_CONFIG, `network ${net.name} is tsnet's ${net.driver} network, which has no bridge: give the configuration another "name"`);
  }
  const [subnet, subnet6] = [o.subnets?.find((x) => !x.includes(":")), o.subnets?.find((x) => x.includes(":"))];
  const [gateway, gateway6] = [o.gateways?.find((x) => !x.includes(":")), o.gateways?.find((x) => x.includes(":"))];
  checkAgrees(net, conf, { subnet, gateway, subnet6, gateway6 });
  return net;
}

/**
 * ensureCniNetwork as operations, changing nothing (`tsnet explain cni-add`): the existing
 * network, checked against the configuration, with its bring-up as read now; or the network the
 * first ADD would create, and its bring-up.
 */
export function planCniNetwork(conf: NetConf): { net: NetworkRecord; ops: Op[] } {
  const o = cniNetworkOptions(conf);
  const found = knownNetworks().find((n) => n.name === conf.name);
  if (found) {
    const net = agreeingNetwork(found, conf, o);
    return { net, ops: planBringUp(net) };
  }
  try {
    const { rec, ops } = planCreateNetwork(o);
    return { net: rec, ops };
  } catch (e) {
    if (e instanceof UsageError) throw new CniError(ERR_INVALID_CONFIG, e.message);
    throw e;
  }
}

/** Refuses a configuration whose explicit keys contradict the network's record. */
function checkAgrees(net: NetworkRecord, conf: NetConf, want: { subnet?: string; gateway?: string; subnet6?: string; gateway6?: string }): void {
  const differs: string[] = [];
  const cmp = (key: string, said: unknown, has: unknown, hasText = JSON.stringify(has)) => {
    if (said !== undefined && said !== has) differs.push(`"${key}" is ${JSON.stringify(said)} but the network has ${hasText}`);
  };
  const sub = net.subnets.find((s) => !s.subnet.includes(":"));
  const sub6 = net.subnets.find((s) => s.subnet.includes(":"));
  cmp("bridge", conf.bridge, net.bridge);
  const cmpSubnet = (key: string, said: string | undefined, has: string | undefined) => {
    if (said === undefined) return;
    const p = parsePrefix(said);
    cmp(key, p ? formatPrefix(p) : said, has);
  };
  const cmpGateway = (key: string, said: string | undefined, has: string | undefined) => {
    if (said === undefined) return;
    const g = parseIp(said);
    cmp(key, g ? formatIp(g) : said, has);
  };
  cmpSubnet("subnet", want.subnet, sub?.subnet);
  cmpGateway("gateway", want.gateway, sub?.gateway);
  cmpSubnet("ipam.ranges IPv6 subnet", want.subnet6, sub6?.subnet);
  cmpGateway("ipam.ranges IPv6 gateway", want.gateway6, sub6?.gateway);
  cmp("ipMasq", conf.ipMasq, net.ipMasq ?? true);
  // The kernel's default MTU for a veth is 1500 (ETH_DATA_LEN).
  cmp("mtu", conf.mtu, net.mtu ?? 1500);
  cmp("hairpinMode", conf.hairpinMode, net.hairpin, net.hairpin === undefined ? "hairpin for attachments that publish ports" : undefined);
  cmp("isGateway", conf.isGateway, net.isGateway ?? true);
  if (differs.length) {
    throw new CniError(
      ERR_INVALID_CONFIG,
      `network ${net.name} exists and the configuration disagrees with it: ${differs.join("; ")}`,
      `make the configuration agree (tsnet network inspect ${net.name}), or remove the network (tsnet network rm ${net.name}) so that the next ADD makes it from the configuration`,
    );
  }
}

/** What a network attachment may not ask of this network. */
export function refusePorts(net: NetworkRecord, conf: NetConf): void {
  if (!conf.portMappings.length) return;
  if (net.internal) throw new CniError(ERR_INVALID_CONFIG, `network ${net.name} is internal: it has no way in from outside, so it cannot publish ports`);
  if (net.isGateway === false) {
    throw new CniError(ERR_INVALID_CONFIG, `network ${net.name} has "isGateway": false: the host has no route to its containers, so it cannot publish ports`);
  }
}
