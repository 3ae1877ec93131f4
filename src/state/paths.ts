// Where tsnet keeps what it knows. Two places, for two lifetimes:
// - /run/tsnet (tmpfs): containers, leases, locks: they describe kernel objects that a reboot
//   removes anyway, so they vanish with them.
// - /var/lib/tsnet: network definitions, which outlive a reboot as Docker's do; their kernel
//   objects (bridge, rules) are made again on first use. TSNET_STATE_DIR moves it (the tests put
//   it on a tmpfs of their own).
// Both, and /run/netns where namespaces are kept, are trusted only while nobody but root can
// write to them (src/state/owned.ts).
export const RUN_DIR = "/run/tsnet";
export const CONTAINERS_DIR = `${RUN_DIR}/containers`;
export const NAMES_DIR = `${RUN_DIR}/names`;
/** Per network: leases and the allocation cursor (runtime state, keyed by network id). */
export const NETWORKS_RUN_DIR = `${RUN_DIR}/networks`;
export const LOCKS_DIR = `${RUN_DIR}/locks`;
/** One lock file per process that manages containers, held for its whole life (managers.ts). */
export const MANAGERS_DIR = `${RUN_DIR}/managers`;
export const SUPERVISOR_SOCKET = `${RUN_DIR}/supervisor.sock`;
export const SUPERVISOR_LOG = `${RUN_DIR}/supervisor.log`;
export const SUPERVISOR_LOCK = `${RUN_DIR}/supervisor.lock`;
/** The live supervisor's pid and the identity of the executable it runs (a newer tsnet asks it to hand over). */
export const SUPERVISOR_BUILD = `${RUN_DIR}/supervisor.build`;
/** CNI attachments, per network name (src/state/cni.ts). */
export const CNI_DIR = `${RUN_DIR}/cni`;
/** Which containers share another's network namespace (src/state/joins.ts). */
export const JOINS_DIR = `${RUN_DIR}/joins`;

export const STATE_DIR = process.env.TSNET_STATE_DIR || "/var/lib/tsnet";
/** Network records, one JSON file per network id. */
export const NETWORKS_DIR = `${STATE_DIR}/networks`;

/** Persisted network namespaces, shared with `ip netns`. */
export const NETNS_DIR = "/run/netns";

/** A container id: 64 hex digits (the only form that ever becomes part of a path). */
export const ID_RE = /^[0-9a-f]{64}$/;

/** The directory of a container's own files (its /etc files). */
export function containerDir(id: string): string {
  return `${CONTAINERS_DIR}/${checkedId(id)}`;
}

/**
 * Detached containers' output: the command writes its stdout and stderr straight into two files
 * here, which are all this directory holds (the supervisor watches it to time what is written).
 */
export const LOGS_DIR = `${RUN_DIR}/logs`;

/** A detached container's log: one file per stream, and the times its growth was seen (src/logs/). */
export function logPaths(id: string): { stdout: string; stderr: string; times: string } {
  const i = checkedId(id);
  return { stdout: `${LOGS_DIR}/${i}-stdout.log`, stderr: `${LOGS_DIR}/${i}-stderr.log`, times: `${CONTAINERS_DIR}/${i}.logtimes` };
}

/** What a detached container was started with (command, environment, options), to start it again. */
export function runSpecPath(id: string): string {
  return `${CONTAINERS_DIR}/${checkedId(id)}.spec`;
}

/** Ids come from validated records; anything else reaching a path is a bug, never a path. */
export function checkedId(id: string): string {
  if (!ID_RE.test(id)) throw new Error(`not a container id: ${JSON.stringify(id)}`);
  return id;
}
