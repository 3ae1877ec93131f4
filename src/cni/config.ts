// A CNI request: the environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS,
// CNI_PATH) and the network configuration on stdin, validated as the specification and the
// reference plugins' skeleton do, before anything is made. Every key is optional:
// `{"cniVersion": "1.0.0", "name": "n", "type": "tsnet"}` is a whole configuration.
//
// Keys, in the spirit of the reference bridge + host-local + portmap plugins (defaults are
// tsnet's, not the reference's: a tsnet network masquerades and is its containers' gateway):
//   bridge        the bridge's name                     default tsnet- and 9 hex of the network id
//   subnet        IPv4 subnet (also ipam.subnet, or     default the first free /24 of 10.78.0.0/15
//                 ipam.ranges [[{subnet, gateway}]])
//   gateway       the bridge's address                  default the subnet's first address
//   isGateway     the bridge holds the gateway, the     default true
//                 container routes through it
//   ipMasq        masquerade what leaves the host        default true
//   hairpinMode   bridge ports in hairpin mode           default: for attachments publishing ports
//   mtu           both ends of the veth                  default the kernel's
//   ipam          {"type": "tsnet"} (or absent): tsnet's own leases; any other type is an IPAM
//                 plugin found in CNI_PATH and run as the spec's delegation says
//   dns           returned in the result as it is
// Runtime arguments: runtimeConfig.portMappings (the portMappings capability), runtimeConfig.ips,
// runtimeConfig.mac, runtimeConfig.aliases; CNI_ARGS IP= and MAC=.
import { formatIp, formatPrefix, parseIp, parsePrefix, type IpAddress } from "../ip/addr.ts";
import type { ExtraRoute } from "../network/sandbox.ts";
import { ANY_V4, ANY_V6, LOOPBACK_V6, type PublishedPort } from "../ip/port.ts";
import {
  CniError, ERR_DECODE, ERR_INCOMPATIBLE_VERSION, ERR_INVALID_CONFIG, ERR_INVALID_ENV, ERR_UNSUPPORTED_FIELD,
  SUPPORTED_VERSIONS, compareVersions, isSemver, readResult, type CniDns, type CniResult,
} from "./spec.ts";

export const COMMANDS = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface CniEnv {
  command: CniCommand;
  /** CNI_CONTAINERID ("" for GC, STATUS, VERSION). */
  containerId: string;
  /** CNI_NETNS ("" when absent: allowed for DEL). */
  netns: string;
  ifname: string;
  /** CNI_ARGS, parsed. */
  args: Record<string, string>;
  /** CNI_PATH's directories. */
  path: string[];
}

/** Which variables each command needs (SPEC.md, section 2). */
const REQUIRED: Record<CniCommand, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  GC: [],
  STATUS: [],
  VERSION: [],
};

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function readEnv(env: Record<string, string | undefined>): CniEnv {
  const raw = env.CNI_COMMAND ?? "";
  if (raw === "") throw new CniError(ERR_INVALID_ENV, "required environment variables missing: CNI_COMMAND");
  const command = raw.toUpperCase() as CniCommand;
  if (!COMMANDS.includes(command)) {
    throw new CniError(ERR_INVALID_ENV, `unknown CNI_COMMAND "${raw}": give one of ${COMMANDS.join(", ")}`);
  }
  const missing = REQUIRED[command].filter((k) => !env[k]);
  if (missing.length) throw new CniError(ERR_INVALID_ENV, `required environment variables missing for ${command}: ${missing.join(", ")}`);
  const containerId = env.CNI_CONTAINERID ?? "";
  if (REQUIRED[command].includes("CNI_CONTAINERID") && !ID_RE.test(containerId)) {
    throw new CniError(ERR_INVALID_ENV, `invalid CNI_CONTAINERID "${containerId}": it must start with a letter or digit, followed by letters, digits, '_', '.' or '-'`);
  }
  const ifname = env.CNI_IFNAME ?? "";
  if (REQUIRED[command].includes("CNI_IFNAME")) checkIfname(ifname);
  const netns = env.CNI_NETNS ?? "";
  // Only what the command uses is checked: libcni probes plugins with VERSION and CNI_NETNS=dummy.
  if (REQUIRED[command].includes("CNI_NETNS") && !netns.startsWith("/")) throw new CniError(ERR_INVALID_ENV, `invalid CNI_NETNS "${netns}": give the namespace's absolute path`);
  return { command, containerId, netns, ifname, args: parseArgs(env.CNI_ARGS ?? ""), path: (env.CNI_PATH ?? "").split(":").filter(Boolean) };
}

/** The kernel's rules for an interface name (IFNAMSIZ 16 with the NUL; dev_valid_name()). */
function checkIfname(name: string): void {
  const bad = (why: string) => new CniError(ERR_INVALID_ENV, `invalid CNI_IFNAME "${name}": ${why}`);
  if (name.length > 15) throw bad("longer than 15 characters");
  if (name === "." || name === "..") throw bad("not a usable name");
  if (/[/:\s]/.test(name)) throw bad("it contains '/', ':' or white space");
}

/** CNI_ARGS: "K=V;K2=V2". */
function parseArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(";").filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new CniError(ERR_INVALID_ENV, `invalid CNI_ARGS: "${pair}" is not KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** The network configuration tsnet acts on, every key checked and defaulted where it must be. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** Only the keys the configuration gives: the network's own options otherwise. */
  bridge?: string;
  subnet?: string;
  gateway?: string;
  /** The IPv6 range of a dual-stack network (ipam.ranges' IPv6 range set). */
  subnet6?: string;
  gateway6?: string;
  isGateway?: boolean;
  ipMasq?: boolean;
  hairpinMode?: boolean;
  mtu?: number;
  /** The delegated IPAM plugin's type; absent: tsnet's own leases. */
  ipamPlugin?: string;
  /** Routes from tsnet's own ipam section. */
  routes: ExtraRoute[];
  dns?: CniDns;
  portMappings: PublishedPort[];
  /** A requested address (runtimeConfig.ips, CNI_ARGS IP=). */
  ip?: IpAddress;
  mac?: Uint8Array;
  /** Names the address answers to in tsnet's resolver (runtimeConfig.aliases). */
  aliases: string[];
  prevResult?: CniResult;
  /** GC: the attachments to keep. */
  validAttachments?: { containerId: string; ifname: string }[];
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

const invalid = (msg: string) => new CniError(ERR_INVALID_CONFIG, msg);

function str(o: Record<string, unknown>, k: string, where = ""): string | undefined {
  const v = o[k];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw invalid(`"${where}${k}" must be a string, not ${JSON.stringify(v)}`);
  return v;
}

function bool(o: Record<string, unknown>, k: string): boolean | undefined {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw invalid(`"${k}" must be true or false, not ${JSON.stringify(v)}`);
  return v;
}

// Keys of the reference bridge plugin that tsnet does not do: refused when they ask for
// something, so a configuration never silently loses what it says.
const UNSUPPORTED = ["vlan", "vlanTrunk", "promiscMode", "macspoofchk", "disableContainerInterface", "portIsolation", "enabledad"];

/**
 * Parses stdin. The version is checked first (an unknown version is error 1 whatever else the
 * document says); then each key.
 */
export function parseConf(text: string, env: CniEnv): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CniError(ERR_DECODE, `the network configuration on stdin is not JSON: ${(e as Error).message}`);
  }
  const c = obj(raw);
  if (!c) throw new CniError(ERR_DECODE, "the network configuration on stdin is not a JSON object");
  const cniVersion = checkVersion(c.cniVersion, env.command);
  const name = str(c, "name");
  if (!name) throw invalid(`the network configuration has no "name"`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(name)) {
    throw invalid(`invalid network name "${name}": use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`);
  }
  const conf: NetConf = { cniVersion, name, type: str(c, "type") ?? "tsnet", routes: [], portMappings: [], aliases: [] };
  for (const k of UNSUPPORTED) {
    const v = c[k];
    if (v !== undefined && v !== null && v !== false && v !== 0 && !(Array.isArray(v) && v.length === 0)) {
      throw new CniError(ERR_UNSUPPORTED_FIELD, `unsupported field "${k}": ${JSON.stringify(v)} (tsnet's bridge does not do it; remove the key)`);
    }
  }
  conf.bridge = str(c, "bridge");
  conf.isGateway = bool(c, "isGateway");
  if (bool(c, "isDefaultGateway") === true) {
    if (conf.isGateway === false) throw invalid(`"isDefaultGateway": true needs "isGateway": true`);
    conf.isGateway = true;
  }
  conf.ipMasq = bool(c, "ipMasq");
  conf.hairpinMode = bool(c, "hairpinMode");
  if (c.mtu !== undefined && c.mtu !== null && c.mtu !== 0) {
    if (!Number.isInteger(c.mtu) || (c.mtu as number) < 68 || (c.mtu as number) > 65535) throw invalid(`"mtu" must be a whole number from 68 to 65535, not ${JSON.stringify(c.mtu)}`);
    conf.mtu = c.mtu as number;
  }
  setAddressing(conf, c);
  if (c.dns !== undefined) {
    const dns = obj(c.dns);
    if (!dns) throw invalid(`"dns" must be an object`);
    conf.dns = dns as CniDns;
  }
  readRuntime(conf, c, env);
  if (c.prevResult !== undefined && c.prevResult !== null) conf.prevResult = readResult(c.prevResult, "prevResult");
  if (env.command === "GC") conf.validAttachments = readValid(c["cni.dev/valid-attachments"]);
  return conf;
}

function checkVersion(v: unknown, command: CniCommand): string {
  const supported = SUPPORTED_VERSIONS.join(", ");
  // The reference libraries read a configuration without cniVersion as 0.1.0.
  const version = v === undefined || v === "" ? "0.1.0" : v;
  if (!isSemver(version)) throw new CniError(ERR_DECODE, `"cniVersion" ${JSON.stringify(v)} is not a version like "1.0.0"`);
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions", `the configuration is version ${version}${v === undefined ? " (it has no cniVersion)" : ""}; tsnet supports ${supported}`);
  }
  const least = command === "CHECK" ? "0.4.0" : command === "GC" || command === "STATUS" ? "1.1.0" : undefined;
  if (least && compareVersions(version, least) < 0) {
    throw new CniError(ERR_INCOMPATIBLE_VERSION, `configuration version ${version} does not allow ${command}`, `${command} needs cniVersion ${least} or later`);
  }
  return version;
}

/** subnet and gateway at the top level or in tsnet's own ipam section (host-local's forms). */
function setAddressing(conf: NetConf, c: Record<string, unknown>): void {
  let subnet = str(c, "subnet");
  let gateway = str(c, "gateway");
  if (c.ipam !== undefined && c.ipam !== null) {
    const ipam = obj(c.ipam);
    if (!ipam) throw invalid(`"ipam" must be an object`);
    const type = str(ipam, "type", "ipam.") ?? "tsnet";
    if (type !== "tsnet") {
      if (/[/\\]/.test(type) || type === "." || type === "..") throw invalid(`invalid "ipam.type" "${type}": give the name of an IPAM plugin in CNI_PATH`);
      conf.ipamPlugin = type;
      if (subnet || gateway) throw invalid(`"subnet" and "gateway" belong to the ipam plugin's section when "ipam.type" is ${type}`);
      return;
    }
    for (const k of ["rangeStart", "rangeEnd", "dataDir", "resolvConf"]) {
      if (ipam[k] !== undefined) throw new CniError(ERR_UNSUPPORTED_FIELD, `unsupported field "ipam.${k}": ${JSON.stringify(ipam[k])} (tsnet's own IPAM leases from the whole subnet; remove the key, or use "ipam": {"type": "host-local", ...})`);
    }
    const fromIpam = (s: string | undefined, g: string | undefined) => {
      if (s && subnet && normPrefix(s) !== normPrefix(subnet)) throw invalid(`"subnet" ${subnet} and "ipam" subnet ${s} differ: give one`);
      if (g && gateway && g !== gateway) throw invalid(`"gateway" ${gateway} and "ipam" gateway ${g} differ: give one`);
      subnet ??= s;
      gateway ??= g;
    };
    fromIpam(str(ipam, "subnet", "ipam."), str(ipam, "gateway", "ipam."));
    if (ipam.ranges !== undefined) {
      // host-local's form: a list of range sets, each a list of ranges. tsnet leases from whole
      // subnets, so each set is one range; two sets (one IPv4, one IPv6) make a dual-stack network.
      const ranges = ipam.ranges;
      const sets = Array.isArray(ranges) && ranges.length >= 1 && ranges.length <= 2 && ranges.every((r) => Array.isArray(r) && r.length === 1)
        ? ranges.map((r) => obj((r as unknown[])[0]))
        : undefined;
      if (!sets || sets.some((r) => !r)) throw new CniError(ERR_UNSUPPORTED_FIELD, `unsupported field "ipam.ranges": ${JSON.stringify(ranges)} (tsnet's own IPAM takes one range per family: [[{"subnet": IPv4, "gateway": ...}], [{"subnet": IPv6, "gateway": ...}]])`);
      let v6Seen = false;
      sets.forEach((one, i) => {
        const where = `ipam.ranges[${i}][0].`;
        for (const k of ["rangeStart", "rangeEnd"]) {
          if (one![k] !== undefined) throw new CniError(ERR_UNSUPPORTED_FIELD, `unsupported field "${where}${k}": ${JSON.stringify(one![k])} (tsnet's own IPAM leases from the whole subnet)`);
        }
        const s = str(one!, "subnet", where);
        const g = str(one!, "gateway", where);
        if (s !== undefined && parsePrefix(s)?.family === 6) {
          if (v6Seen) throw invalid(`"ipam.ranges" has two IPv6 ranges: give one IPv4 and one IPv6 range set`);
          v6Seen = true;
          if (g !== undefined && parseIp(g)?.family !== 6) throw invalid(`"${where}gateway" ${g} is not an IPv6 address, as its subnet ${s} is`);
          conf.subnet6 = s;
          if (g !== undefined) conf.gateway6 = g;
          return;
        }
        if (i > 0 && !v6Seen && subnet !== undefined && s !== undefined && normPrefix(s) !== normPrefix(subnet)) {
          throw invalid(`"ipam.ranges" has two IPv4 ranges: give one IPv4 and one IPv6 range set`);
        }
        fromIpam(s, g);
      });
    }
    if (ipam.routes !== undefined) {
      if (!Array.isArray(ipam.routes)) throw invalid(`"ipam.routes" must be a list`);
      for (const r of ipam.routes) {
        const o = obj(r);
        const dst = o && str(o, "dst", "ipam.routes[].");
        const p = dst ? parsePrefix(dst) : undefined;
        if (!o || !p) throw invalid(`"ipam.routes" entry ${JSON.stringify(r)} needs "dst", a subnet such as "0.0.0.0/0" or "::/0"`);
        const gwText = str(o, "gw", "ipam.routes[].");
        const gw = gwText === undefined ? undefined : parseIp(gwText);
        if (gwText !== undefined && gw?.family !== p.family) throw invalid(`"ipam.routes" entry ${JSON.stringify(r)}: "gw" must be an IPv${p.family} address, as "dst" is`);
        conf.routes.push({ dst: p, ...(gw && { gw }) });
      }
    }
  }
  // A lone IPv6 subnet (top level or ipam.subnet) is the IPv6 side of a dual-stack network.
  if (subnet !== undefined && parsePrefix(subnet)?.family === 6 && conf.subnet6 === undefined) {
    conf.subnet6 = subnet;
    if (gateway !== undefined) conf.gateway6 = gateway;
    return;
  }
  if (subnet !== undefined) conf.subnet = subnet;
  if (gateway !== undefined) conf.gateway = gateway;
}

function normPrefix(s: string): string {
  const p = parsePrefix(s);
  return p ? formatPrefix(p) : s;
}

/** runtimeConfig (capability arguments), args.cni and CNI_ARGS. */
function readRuntime(conf: NetConf, c: Record<string, unknown>, env: CniEnv): void {
  const rt = obj(c.runtimeConfig) ?? {};
  if (rt.portMappings !== undefined && rt.portMappings !== null) conf.portMappings = readPortMappings(rt.portMappings);
  const ips: string[] = [];
  if (Array.isArray(rt.ips)) ips.push(...rt.ips.map(String));
  const argsCni = obj(obj(c.args)?.cni);
  if (Array.isArray(argsCni?.ips)) ips.push(...argsCni.ips.map(String));
  if (env.args.IP) ips.push(...env.args.IP.split(","));
  const v4 = ips.map((s) => s.split("/")[0]!).map((s) => ({ s, a: parseIp(s) }));
  const badIp = v4.find((x) => !x.a);
  if (badIp) throw invalid(`requested address "${badIp.s}" is not an IP address`);
  const wanted = v4.filter((x) => x.a!.family === 4);
  if (wanted.length > 1 && new Set(wanted.map((x) => formatIp(x.a!))).size > 1) {
    throw new CniError(ERR_UNSUPPORTED_FIELD, `unsupported field "ips": ${JSON.stringify(ips)} (one IPv4 address per interface)`);
  }
  if (wanted[0]) conf.ip = wanted[0].a;
  const mac = typeof rt.mac === "string" ? rt.mac : env.args.MAC;
  if (mac) {
    if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw invalid(`requested MAC "${mac}" is not a MAC address like 02:42:ac:11:00:02`);
    const bytes = new Uint8Array(mac.split(":").map((x) => Number.parseInt(x, 16)));
    if (bytes[0]! & 1) throw invalid(`requested MAC "${mac}" is a multicast address: give a unicast one`);
    conf.mac = bytes;
  }
  // Podman gives {network: [names]}, the convention a plain list.
  const aliases = Array.isArray(rt.aliases) ? rt.aliases : obj(rt.aliases)?.[conf.name];
  if (Array.isArray(aliases)) conf.aliases = aliases.filter((a): a is string => typeof a === "string" && /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(a));
}

function readPortMappings(v: unknown): PublishedPort[] {
  if (!Array.isArray(v)) throw invalid(`"runtimeConfig.portMappings" must be a list`);
  const out: PublishedPort[] = [];
  const seen = new Set<string>();
  for (const entry of v) {
    const m = obj(entry);
    const what = JSON.stringify(entry);
    if (!m) throw invalid(`port mapping ${what} is not an object`);
    const port = (k: string) => {
      const p = m[k];
      if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535) throw invalid(`port mapping ${what}: "${k}" must be a port from 1 to 65535`);
      return p as number;
    };
    const hostPort = port("hostPort");
    const containerPort = port("containerPort");
    const protoText = m.protocol === undefined || m.protocol === "" ? "tcp" : String(m.protocol).toLowerCase();
    if (protoText !== "tcp" && protoText !== "udp") {
      throw new CniError(ERR_UNSUPPORTED_FIELD, `unsupported field "protocol": ${JSON.stringify(m.protocol)} in port mapping ${what} (tcp or udp)`);
    }
    const hostIpText = m.hostIP === undefined || m.hostIP === null ? "" : String(m.hostIP);
    // No hostIP: every address of both families, as the reference portmap plugin maps it (a
    // family the attachment has no address of gets no element).
    let hostIps = [ANY_V4, ANY_V6];
    if (hostIpText !== "") {
      const a = parseIp(hostIpText);
      if (a === undefined) throw invalid(`port mapping ${what}: "hostIP" "${hostIpText}" is not an address`);
      // ::1 needs a process holding it (tsnet run relays it); a plugin exits after ADD.
      if (a.family === 6 && a.value === LOOPBACK_V6.value) throw new CniError(ERR_UNSUPPORTED_FIELD, `unsupported field "hostIP": "${hostIpText}" in port mapping ${what} (IPv6 has no route_localnet: publish on "::" or an address of the host)`);
      hostIps = [a];
    }
    for (const hostIp of hostIps) {
      const key = `${protoText}/${hostIp.family}/${hostPort}`;
      if (seen.has(key)) throw invalid(`host port ${hostPort}/${protoText} is mapped twice: give each mapping its own host port`);
      seen.add(key);
      out.push({ proto: protoText, hostIp, hostPort, containerPort });
    }
  }
  return out;
}

function readValid(v: unknown): { containerId: string; ifname: string }[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(`"cni.dev/valid-attachments" must be a list`);
  return v.map((x) => {
    const o = obj(x);
    if (!o || typeof o.containerID !== "string" || typeof o.ifname !== "string") {
      throw invalid(`"cni.dev/valid-attachments" entry ${JSON.stringify(x)} needs "containerID" and "ifname"`);
    }
    return { containerId: o.containerID, ifname: o.ifname };
  });
}
