// A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, as Docker writes them: files of
// its own under /run/tsnet/containers/ID/, bind-mounted over the host's paths in the container's
// private mount namespace (src/netns/private.ts), so the host's files are never edited and only
// the container's processes (and `tsnet exec`) see them.
import { rmSync } from "../../ffi/fs.ts";
import { forwardsNothing, readResolvConf, RESOLVER_ADDRESS } from "../network/resolver.ts";
import type { PrivateFiles } from "../netns/private.ts";
import type { ContainerRecord } from "../state/containers.ts";
import { ensureDir, forgetDir, fsError, trustDir, writeText } from "../state/files.ts";
import { CONTAINERS_DIR, containerDir } from "../state/paths.ts";

export function etcDir(id: string): string {
  return containerDir(id);
}

/** Docker's default hostname: the first 12 hex digits of the id. */
export function hostnameOf(rec: ContainerRecord): string {
  return rec.hostname ?? rec.id.slice(0, 12);
}

/**
 * The nameservers a container's resolver forwards to: --dns, else the host's own, else (no
 * resolv.conf, an unreadable one, or one without a nameserver line) what the host's own programs
 * then ask, glibc's default: a server on the host's loopback.
 */
export function upstreamServers(rec: ContainerRecord): string[] {
  if (rec.dns?.length) return rec.dns;
  const host = readResolvConf().nameservers;
  return host.length ? host : [DEFAULT_NAMESERVER];
}

/** resolv.conf(5): "If no nameserver entries are present, the default is to use the name server on the local machine." */
const DEFAULT_NAMESERVER = "127.0.0.1";

function hostsFile(rec: ContainerRecord): string {
  const lines = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
  ];
  const host = hostnameOf(rec);
  const names = host === rec.name ? host : `${host} ${rec.name}`;
  for (const ep of rec.endpoints ?? []) for (const ip of ep.ips) lines.push(`${ip.address}\t${names}`);
  if (!rec.endpoints?.length) lines.push(`127.0.1.1\t${names}`);
  for (const h of rec.extraHosts ?? []) lines.push(`${h.address}\t${h.name}`);
  return `${lines.join("\n")}\n`;
}

function resolvConf(rec: ContainerRecord): string {
  const host = readResolvConf();
  const search = rec.dnsSearch?.length ? rec.dnsSearch : host.search;
  return [
    `# Written by tsnet for container ${rec.name}. tsnet answers at ${RESOLVER_ADDRESS}: names of containers`,
    // Said as it is when the container starts: on internal networks alone nothing is forwarded.
    forwardsNothing(rec)
      ? "# on the same user networks itself, and nothing else: its networks are internal, with no way out."
      : `# on the same user networks itself, everything else through ${rec.dns?.length ? "the --dns servers" : "the host's resolvers"}.`,
    `nameserver ${RESOLVER_ADDRESS}`,
    ...(search.length ? [`search ${search.join(" ")}`] : []),
    "options ndots:0",
    "",
  ].join("\n");
}

/**
 * Writes the files and says what to mount where. A container without a network of its own
 * (`--network none`) keeps the host's resolv.conf, as Docker does: there is nothing to resolve
 * through. Nothing here reads the host's /etc/hosts or /etc/hostname, and a missing, empty or
 * unreadable resolv.conf only means no search domains: the host's root needs none of them (a
 * missing path is shadowed, not created: src/netns/private.ts).
 */
export function writeEtcFiles(rec: ContainerRecord): PrivateFiles {
  const dir = etcDir(rec.id);
  ensureDir(dir);
  const binds: PrivateFiles["binds"] = [];
  // 0644: the container's processes, whatever their user, read them through the bind mounts
  // (which do not pass through the directory, so it stays 0700).
  const write = (name: string, text: string, target: string) => {
    writeText(`${dir}/${name}`, text, 0o644);
    binds.push({ source: `${dir}/${name}`, target });
  };
  write("hostname", `${hostnameOf(rec)}\n`, "/etc/hostname");
  write("hosts", hostsFile(rec), "/etc/hosts");
  if (rec.mode === "bridge") write("resolv.conf", resolvConf(rec), "/etc/resolv.conf");
  return { hostname: hostnameOf(rec), binds };
}

/** Rewrites /etc/hosts in place (the same inode stays mounted), e.g. after network connect. */
export function refreshHosts(rec: ContainerRecord): void {
  try {
    writeText(`${etcDir(rec.id)}/hosts`, hostsFile(rec), 0o644);
  } catch {}
}

export function removeEtcFiles(id: string): void {
  const dir = etcDir(id);
  if (!trustDir(CONTAINERS_DIR)) return;
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    throw fsError("remove", dir, e);
  }
  // The same container may be started again by this process (tsnet restart): made anew then.
  forgetDir(dir);
}
