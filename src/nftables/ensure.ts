import type { NetlinkSocket } from "../netlink/socket.ts";
import { Batch, transaction } from "./batch.ts";
import { addChain, type ChainSpec } from "./chain.ts";
import type { Family } from "./nfnl.ts";
import { addRule, deleteRule, listRules, ruleMatches, type RuleInfo, type RuleSpec } from "./rule.ts";
import { addElements, addSet, deleteElements, listElements, type SetElement, type SetSpec } from "./set.ts";
import { tableExists, addTable } from "./table.ts";

export interface TableSpec {
  family: Family;
  name: string;
  /** With `elements`, the set holds exactly these (by key) once the transaction commits. */
  sets?: readonly (SetSpec & { elements?: readonly SetElement[] })[];
  /** With `rules`, the chain holds exactly these rules, in order; without, its rules are left alone. */
  chains?: readonly (ChainSpec & { rules?: readonly RuleSpec[] })[];
}

export interface ElementAdd {
  set: string;
  elements: readonly SetElement[];
}

export interface EnsureOptions {
  /** Elements to add (in the same transaction, after the deletions). */
  add?: readonly ElementAdd[];
  /** Delete every element, in every set of the spec, whose comment is tagged with this owner. */
  deleteTagged?: string;
}

export interface EnsureResult {
  /** Chains whose rules were (re)written. */
  rewrittenChains: string[];
  /** Elements removed by deleteTagged, per set. */
  deleted: Record<string, SetElement[]>;
}

/**
 * An element's owner: the first word of its comment ("3f2a9c0d1e7b web tcp 8080 -> 80" is
 * owned by "3f2a9c0d1e7b").
 */
export function commentTag(comment: string | undefined): string | undefined {
  return comment?.trim().split(/\s+/, 1)[0] || undefined;
}

function sameRules(have: readonly RuleInfo[], want: readonly RuleSpec[]): boolean {
  return have.length === want.length && want.every((r, i) => ruleMatches(have[i]!, r));
}

/**
 * Makes the table look like `spec` and applies element changes, all in ONE transaction: the
 * table, its sets and chains are added if missing (adding is idempotent), a chain whose rules
 * differ from the spec has them deleted by handle and re-added in the same batch, so the kernel
 * never runs a half-built ruleset and nothing is flushed first. The state it compares against
 * is read under the ruleset generation the batch carries: a concurrent change makes the kernel
 * refuse the batch (ERESTART) and the whole thing is recomputed once.
 */
export function ensureTable(nl: NetlinkSocket, spec: TableSpec, opts: EnsureOptions = {}): EnsureResult {
  let result: EnsureResult = { rewrittenChains: [], deleted: {} };
  transaction(nl, (b: Batch) => {
    result = { rewrittenChains: [], deleted: {} };
    const { family, name } = spec;
    const exists = tableExists(nl, family, name);
    const rules = exists ? listRules(nl, family, name) : [];
    addTable(b, family, name);
    for (const s of spec.sets ?? []) addSet(b, family, name, s);
    for (const s of spec.sets ?? []) {
      if (!s.elements) continue;
      const have = exists ? listElementsIfAny(nl, family, name, s.name) : [];
      const want = new Set(s.elements.map((e) => hex(e.key)));
      const held = new Set(have.map((e) => hex(e.key)));
      const extra = have.filter((e) => !want.has(hex(e.key)));
      const missing = s.elements.filter((e) => !held.has(hex(e.key)));
      if (extra.length) deleteElements(b, family, name, s.name, extra);
      if (missing.length) addElements(b, family, name, s.name, missing);
    }
    for (const c of spec.chains ?? []) addChain(b, family, name, c);
    for (const c of spec.chains ?? []) {
      if (!c.rules) continue;
      const have = rules.filter((r) => r.chain === c.name);
      if (sameRules(have, c.rules)) continue;
      result.rewrittenChains.push(c.name);
      for (const r of have) deleteRule(b, family, name, c.name, r.handle, r.comment);
      for (const r of c.rules) addRule(b, family, name, c.name, r);
    }
    if (opts.deleteTagged !== undefined && exists) {
      for (const s of spec.sets ?? []) {
        const gone = listElements(nl, family, name, s.name).filter((e) => commentTag(e.comment) === opts.deleteTagged);
        if (gone.length === 0) continue;
        result.deleted[s.name] = gone;
        deleteElements(b, family, name, s.name, gone);
      }
    }
    for (const a of opts.add ?? []) addElements(b, family, name, a.set, a.elements);
  });
  return result;
}

/**
 * Adds a whole table, as the spec says, in one transaction and without reading anything first:
 * for a place known to be empty (a namespace just made), where ensureTable's comparisons would
 * only cost round trips.
 */
export function createTable(nl: NetlinkSocket, spec: TableSpec): void {
  const b = new Batch();
  addTable(b, spec.family, spec.name);
  for (const s of spec.sets ?? []) {
    addSet(b, spec.family, spec.name, s);
    if (s.elements?.length) addElements(b, spec.family, spec.name, s.name, s.elements);
  }
  for (const c of spec.chains ?? []) {
    addChain(b, spec.family, spec.name, c);
    for (const r of c.rules ?? []) addRule(b, spec.family, spec.name, c.name, r);
  }
  b.commitUnconditional(nl);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** The set's elements; none when the set does not exist yet (it is added in the same batch). */
function listElementsIfAny(nl: NetlinkSocket, family: Family, table: string, set: string): SetElement[] {
  try {
    return listElements(nl, family, table, set);
  } catch (e) {
    if ((e as { errno?: number }).errno === 2) return [];
    throw e;
  }
}

/**
 * Deletes, in one transaction, every element of the given sets tagged with `tag`; a missing
 * table or set means there is nothing to delete. Returns what was deleted, per set.
 */
export function deleteTaggedElements(
  nl: NetlinkSocket,
  family: Family,
  table: string,
  sets: readonly string[],
  tag: string,
): Record<string, SetElement[]> {
  const deleted: Record<string, SetElement[]> = {};
  transaction(nl, (b) => {
    for (const k of Object.keys(deleted)) delete deleted[k];
    if (!tableExists(nl, family, table)) return;
    for (const s of sets) {
      const gone = listElementsIfAny(nl, family, table, s).filter((e) => commentTag(e.comment) === tag);
      if (gone.length === 0) continue;
      deleted[s] = gone;
      deleteElements(b, family, table, s, gone);
    }
  });
  return deleted;
}
