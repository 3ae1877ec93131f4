// `network create -o KEY=VALUE` (`--opt`): Docker's bridge driver options. The ones tsnet acts on
// become fields of the network record; every option, known or not, is kept as given and shown by
// `network inspect` (Docker keeps and ignores driver options it does not know).
import { UsageError } from "../errors/errors.ts";
import { parseIp } from "../ip/addr.ts";
import { IFNAME_RE } from "../state/networks.ts";

export const OPT_BRIDGE_NAME = "com.docker.network.bridge.name";
export const OPT_MTU = "com.docker.network.driver.mtu";
export const OPT_ICC = "com.docker.network.bridge.enable_icc";
export const OPT_IP_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade";
export const OPT_HOST_BINDING_IPV4 = "com.docker.network.bridge.host_binding_ipv4";

/** The options tsnet acts on, for help and completion. */
export const KNOWN_OPTIONS = [OPT_BRIDGE_NAME, OPT_MTU, OPT_ICC, OPT_IP_MASQUERADE, OPT_HOST_BINDING_IPV4] as const;

/** The kernel's bounds for a veth's (and a bridge's) MTU: IPv4's minimum, and the largest a veth takes. */
const MTU_MIN = 68;
const MTU_MAX = 65535;

export interface DriverOptions {
  bridge?: string;
  mtu?: number;
  icc?: boolean;
  ipMasq?: boolean;
  hostBindingIpv4?: string;
  /** Every option as given (the last of a key given twice, as Docker's map keeps it). */
  options: Record<string, string>;
}

/** Go's strconv.ParseBool, which Docker uses for these options. */
function parseBool(key: string, v: string): boolean {
  if (["1", "t", "T", "true", "TRUE", "True"].includes(v)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(v)) return false;
  throw new UsageError(`invalid -o ${key}="${v}": give true or false`);
}

/** The `-o` values of `network create`, checked: a bad value of a known option is one clear line. */
export function parseDriverOptions(specs: readonly string[]): DriverOptions {
  const options: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf("=");
    const key = eq < 0 ? spec : spec.slice(0, eq);
    if (key === "") throw new UsageError(`invalid -o "${spec}": give KEY=VALUE, e.g. -o ${OPT_MTU}=1400`);
    // A key alone is an empty value, as Docker's map option takes it.
    options[key] = eq < 0 ? "" : spec.slice(eq + 1);
  }
  const out: DriverOptions = { options };
  for (const [key, v] of Object.entries(options)) {
    switch (key) {
      case OPT_BRIDGE_NAME:
        if (!IFNAME_RE.test(v)) {
          throw new UsageError(`invalid -o ${key}="${v}": give an interface name of 1 to 15 letters, digits, '_', '.' or '-'`);
        }
        out.bridge = v;
        break;
      case OPT_MTU: {
        const n = /^\d{1,6}$/.test(v) ? Number(v) : Number.NaN;
        if (!(n >= MTU_MIN && n <= MTU_MAX)) throw new UsageError(`invalid -o ${key}="${v}": give an MTU from ${MTU_MIN} to ${MTU_MAX}`);
        out.mtu = n;
        break;
      }
      case OPT_ICC:
        out.icc = parseBool(key, v);
        break;
      case OPT_IP_MASQUERADE:
        out.ipMasq = parseBool(key, v);
        break;
      case OPT_HOST_BINDING_IPV4: {
        const a = parseIp(v);
        if (a?.family !== 4) throw new UsageError(`invalid -o ${key}="${v}": give an IPv4 address of the host, e.g. 127.0.0.1`);
        out.hostBindingIpv4 = v;
        break;
      }
    }
  }
  return out;
}
