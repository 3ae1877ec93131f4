// Everything tsnet remembers lives on the /run tmpfs: it describes kernel objects that a reboot
// removes anyway, so records and leases vanish with them.
export const RUN_DIR = "/run/tsnet";
export const CONTAINERS_DIR = `${RUN_DIR}/containers`;
export const NAMES_DIR = `${RUN_DIR}/names`;
export const NETWORKS_DIR = `${RUN_DIR}/networks`;
export const LOCKS_DIR = `${RUN_DIR}/locks`;
/** One lock file per container whose network is live, held by the process that manages it. */
export const LIVE_DIR = `${RUN_DIR}/live`;
export const SUPERVISOR_SOCKET = `${RUN_DIR}/supervisor.sock`;
