// Everything tsnet remembers lives on the /run tmpfs: it describes kernel objects that a reboot
// removes anyway, so records and leases vanish with them.
export const RUN_DIR = "/run/tsnet";
export const CONTAINERS_DIR = `${RUN_DIR}/containers`;
export const NAMES_DIR = `${RUN_DIR}/names`;
export const NETWORKS_DIR = `${RUN_DIR}/networks`;
export const LOCKS_DIR = `${RUN_DIR}/locks`;
