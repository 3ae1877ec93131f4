// Which containers live in another's network namespace (`--network container:NAME`): one empty
// file per pair, /run/tsnet/joins/OWNER.JOINER, OWNER being the container that made the
// namespace. It is made once the joiner's record names what it joins and removed when the joiner
// ends (crash recovery included). The owner's teardown reads it: a namespace a joiner still lives
// in outlives its owner, and so would the owner's veth and address (see destroyContainer).
import { createExclusive, ensureDir, listDir, removeFile } from "./files.ts";
import { ID_RE, JOINS_DIR, checkedId } from "./paths.ts";

export function markJoin(owner: string, joiner: string): void {
  ensureDir(JOINS_DIR);
  createExclusive(`${JOINS_DIR}/${checkedId(owner)}.${checkedId(joiner)}`, "");
}

/** Removes the joiner's marks, whichever namespace it joined. */
export function unmarkJoiner(joiner: string): void {
  const suffix = `.${checkedId(joiner)}`;
  for (const n of listDir(JOINS_DIR)) if (n.endsWith(suffix)) removeFile(`${JOINS_DIR}/${n}`);
}

/** The ids of the containers marked as living in owner's namespace. */
export function joinersOf(owner: string): string[] {
  const prefix = `${checkedId(owner)}.`;
  return listDir(JOINS_DIR).filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)).filter((id) => ID_RE.test(id));
}
