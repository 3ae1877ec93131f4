// Where tsnet keeps what it knows. Two places, for two lifetimes:
// - /run/tsnet (tmpfs): containers, leases, locks: they describe kernel objects that a reboot
//   removes anyway, so they vanish with them.
// - /var/lib/tsnet: network definitions, which outlive a reboot as Docker's do; their kernel
//   objects (bridge, rules) are made again on first use. TSNET_STATE_DIR moves it (the tests put
//   it on a tmpfs of their own).
export const RUN_DIR = "/run/tsnet";
export const CONTAINERS_DIR = `${RUN_DIR}/containers`;
export const NAMES_DIR = `${RUN_DIR}/names`;
/** Per network: leases and the allocation cursor (runtime state, keyed by network id). */
export const NETWORKS_RUN_DIR = `${RUN_DIR}/networks`;
export const LOCKS_DIR = `${RUN_DIR}/locks`;
/** One lock file per process that manages containers, held for its whole life (managers.ts). */
export const MANAGERS_DIR = `${RUN_DIR}/managers`;
export const SUPERVISOR_SOCKET = `${RUN_DIR}/supervisor.sock`;

export const STATE_DIR = process.env.TSNET_STATE_DIR || "/var/lib/tsnet";
/** Network records, one JSON file per network id. */
export const NETWORKS_DIR = `${STATE_DIR}/networks`;
