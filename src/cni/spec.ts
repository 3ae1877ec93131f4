// What the CNI specification (1.1.0, containernetworking/cni SPEC.md) fixes: the versions a
// plugin speaks, the well-known error codes, and the result types, with the conversions between
// the 0.3/0.4 and 1.x shapes of a result.
import { TsnetError } from "../errors/errors.ts";

/** Versions whose configuration and result tsnet reads and writes (0.3.x results are 0.4.0's). */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const CURRENT_VERSION = "1.1.0";

// Well-known error codes (SPEC.md, "Error"); 100 and above are the plugin's own.
export const ERR_INCOMPATIBLE_VERSION = 1;
export const ERR_UNSUPPORTED_FIELD = 2;
export const ERR_UNKNOWN_CONTAINER = 3;
export const ERR_INVALID_ENV = 4;
export const ERR_IO = 5;
export const ERR_DECODE = 6;
export const ERR_INVALID_CONFIG = 7;
export const ERR_TRY_AGAIN = 11;
export const ERR_NOT_AVAILABLE = 50;
export const ERR_LIMITED_CONNECTIVITY = 51;
/** tsnet's: it could not make the change (the message says why: the kernel's refusal, a conflict). */
export const ERR_FAILED = 100;
/** tsnet's: CHECK found the attachment not as ADD left it. */
export const ERR_CHECK_FAILED = 101;
/** tsnet's: a host port of the request is published by another tsnet owner. */
export const ERR_PORT_TAKEN = 102;
/** A delegated (IPAM) plugin failed without an error of its own. */
export const ERR_DELEGATE = 103;
/** Anything else: a bug in tsnet (the libcni convention for errors without a code). */
export const ERR_INTERNAL = 999;

/** An error as the spec returns it: `{cniVersion, code, msg, details}` on stdout, exit 1. */
export class CniError extends TsnetError {
  override name = "CniError";
  constructor(readonly code: number, message: string, readonly details = "") {
    super(message, 1);
  }
}

/** -1, 0, 1 for semantic versions "a.b.c" (the spec's versions have no pre-release parts). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

export function isSemver(v: unknown): v is string {
  return typeof v === "string" && /^\d+\.\d+\.\d+$/.test(v);
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** The namespace path for an interface inside the container; absent on the host. */
  sandbox?: string;
}

export interface CniIp {
  /** CIDR: "10.78.0.2/24". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A result in the 1.x shape, the one tsnet works with; `toVersion` writes the older ones. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: CniRoute[];
  dns?: CniDns;
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * A result as another plugin (or an IPAM plugin) wrote it, in any supported version, read into
 * the 1.x shape: 0.3/0.4 carry `version` on each ip, which 1.0 dropped.
 */
export function readResult(raw: unknown, what: string): CniResult {
  const r = obj(raw);
  if (!r) throw new CniError(ERR_DECODE, `${what} is not a JSON object`);
  const list = (k: string) => {
    const v = r[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new CniError(ERR_DECODE, `${what}: "${k}" is not a list`);
    return v.map((x) => {
      const o = obj(x);
      if (!o) throw new CniError(ERR_DECODE, `${what}: an entry of "${k}" is not an object`);
      return o;
    });
  };
  const interfaces = list("interfaces").map((i) => {
    if (typeof i.name !== "string") throw new CniError(ERR_DECODE, `${what}: an interface has no name`);
    return { ...i, name: i.name } as CniInterface;
  });
  const ips = list("ips").map((i) => {
    if (typeof i.address !== "string") throw new CniError(ERR_DECODE, `${what}: an ip has no address`);
    const { version: _, ...rest } = i;
    return { ...rest, address: i.address } as CniIp;
  });
  const routes = list("routes").map((x) => {
    if (typeof x.dst !== "string") throw new CniError(ERR_DECODE, `${what}: a route has no dst`);
    return { ...x, dst: x.dst } as CniRoute;
  });
  const dns = obj(r.dns) as CniDns | undefined;
  return {
    cniVersion: typeof r.cniVersion === "string" ? r.cniVersion : CURRENT_VERSION,
    ...(interfaces.length && { interfaces }),
    ...(ips.length && { ips }),
    ...(routes.length && { routes }),
    ...(dns && { dns }),
  };
}

/** The result as the configuration's version writes it. */
export function toVersion(r: CniResult, version: string): Record<string, unknown> {
  const old = compareVersions(version, "1.0.0") < 0;
  const out: Record<string, unknown> = { cniVersion: version };
  if (r.interfaces?.length) out.interfaces = old ? r.interfaces.map(({ mtu: _, ...i }) => i) : r.interfaces;
  if (r.ips?.length) out.ips = old ? r.ips.map((i) => ({ version: i.address.includes(":") ? "6" : "4", ...i })) : r.ips;
  if (r.routes?.length) out.routes = r.routes;
  out.dns = r.dns ?? {};
  return out;
}
