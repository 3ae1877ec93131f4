// The version and commit are written into the executable by build.ts (Bun's `define`), so
// `tsnet --version` runs no git and reads no file. Run from source, they are unknown.
declare const TSNET_VERSION: string | undefined;
declare const TSNET_COMMIT: string | undefined;

export const VERSION = typeof TSNET_VERSION === "string" ? TSNET_VERSION : "source";
export const COMMIT = typeof TSNET_COMMIT === "string" ? TSNET_COMMIT : "unknown";

/** Docker's shape: `Docker version 27.3.1, build ce12230`. */
export function versionLine(): string {
  return `tsnet version ${VERSION}, build ${COMMIT}`;
}
