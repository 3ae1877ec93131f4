import type { NetlinkSocket } from "../netlink/socket.ts";
import { Batch, transaction } from "./batch.ts";
import { addChain, type ChainSpec } from "./chain.ts";
import type { Family } from "./nfnl.ts";
import { addRule, deleteRule, listRules, ruleMatches, type RuleInfo, type RuleSpec } from "./rule.ts";
import { addElements, addSet, deleteElements, listElements, setExists, type SetElement, type SetSpec } from "./set.ts";
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
  /**
   * Add only those elements of `add` whose key the set lacks; an element already there is left
   * as it is, whatever its data (it may be someone else's: that is for its owner to sort out).
   */
  addMissingOnly?: boolean;
  /** Delete every element, in every set of the spec, whose comment is tagged with this owner. */
  deleteTagged?: string;
  /**
   * Commit nothing when the table already matches the spec (and nothing of `add` is missing):
   * no transaction, so no notifications, and a check that finds nothing wrong changes nothing.
   */
  onlyIfDrifted?: boolean;
  /** Compute what would change, commit nothing. */
  dryRun?: boolean;
  /** Runs after the state was read and before the commit, when there is something to commit. */
  beforeCommit?: (plan: EnsureResult) => void;
}

export interface EnsureResult {
  /** The table did not exist. */
  tableMissing: boolean;
  /** Sets of the spec that did not exist. */
  missingSets: string[];
  /** Chains whose rules were (re)written. */
  rewrittenChains: string[];
  /** Rules of the spec that no rule of their chain matched (the chain is among rewrittenChains). */
  missingRules: { chain: string; comment?: string }[];
  /** Elements of the spec's element lists that were missing or extra, per set. */
  changedSets: string[];
  /** Elements of `add` that were added (all of them, unless addMissingOnly). */
  added: number;
  /** Elements removed by deleteTagged, per set. */
  deleted: Record<string, SetElement[]>;
  /** Whether anything differed from the spec (or `add` had something missing). */
  drifted: boolean;
  /** Whether a transaction was committed. */
  committed: boolean;
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

function emptyResult(): EnsureResult {
  return { tableMissing: false, missingSets: [], rewrittenChains: [], missingRules: [], changedSets: [], added: 0, deleted: {}, drifted: false, committed: false };
}

/**
 * Makes the table look like `spec` and applies element changes, all in ONE transaction: the
 * table, its sets and chains are added if missing (adding is idempotent), a chain whose rules
 * differ from the spec has them deleted by handle and re-added in the same batch, so the kernel
 * never runs a half-built ruleset and nothing is flushed first. The state it compares against
 * is read under the ruleset generation the batch carries: a concurrent change makes the kernel
 * refuse the batch (ERESTART) and the whole thing is recomputed from fresh state.
 */
export function ensureTable(nl: NetlinkSocket, spec: TableSpec, opts: EnsureOptions = {}): EnsureResult {
  let result = emptyResult();
  transaction(nl, (b: Batch) => {
    const planned = planTable(readTable(nl, spec, opts), spec, opts);
    result = planned.result;
    if (opts.dryRun || (opts.onlyIfDrifted && !result.drifted)) return;
    opts.beforeCommit?.(result);
    batchChanges(b, spec.family, spec.name, planned.changes);
    result.committed = true;
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

/** One change inside an nf_tables transaction, as `nft` spells them (src/plan/ops.ts shows them). */
export type NftChange =
  | { change: "add-table" }
  | { change: "add-set"; set: SetSpec }
  | { change: "add-chain"; chain: ChainSpec }
  | { change: "add-rule"; chain: string; rule: RuleSpec }
  /** By handle, as read; `comment` names it. */
  | { change: "delete-rule"; chain: string; handle: bigint; comment?: string }
  | { change: "add-elements"; set: string; elements: readonly SetElement[] }
  | { change: "delete-elements"; set: string; elements: readonly SetElement[] };

/** What planTable compares a spec with: the table as read (readTable). */
export interface TableState {
  exists: boolean;
  /** Every rule of the table (empty when it does not exist). */
  rules: readonly RuleInfo[];
  /**
   * Per set of the spec that was looked at: its elements, or undefined when the set is missing.
   * A set that is absent from the map was not listed (it exists; its elements did not matter).
   */
  held: ReadonlyMap<string, readonly SetElement[] | undefined>;
}

/** Reads what planTable needs of the table: whether it exists, its rules, the sets that matter. */
export function readTable(nl: NetlinkSocket, spec: TableSpec, opts: Pick<EnsureOptions, "add" | "deleteTagged"> = {}): TableState {
  const { family, name } = spec;
  const exists = tableExists(nl, family, name);
  const rules = exists ? listRules(nl, family, name) : [];
  const held = new Map<string, SetElement[] | undefined>();
  for (const s of spec.sets ?? []) {
    // Listed where it matters: the spec names its elements, `add` adds to it, or deleteTagged
    // looks for an owner's elements in it; otherwise only whether it exists.
    const listed = s.elements !== undefined || (opts.add ?? []).some((a) => a.set === s.name) || opts.deleteTagged !== undefined;
    if (!exists) held.set(s.name, undefined);
    else if (listed) held.set(s.name, listElementsIfAny(nl, family, name, s.name));
    else if (!setExists(nl, family, name, s.name)) held.set(s.name, undefined);
  }
  return { exists, rules, held };
}

/**
 * What makes the table as read match `spec`, and the element changes of `opts`: a pure function
 * of the state and the request. The table, its sets and chains are always added (adding is
 * idempotent, and makes whatever is missing); a set's element list is corrected by key; a chain
 * whose rules differ has them deleted by handle and added again, in the same transaction.
 */
export function planTable(state: TableState, spec: TableSpec, opts: Omit<EnsureOptions, "dryRun" | "onlyIfDrifted" | "beforeCommit"> = {}): { changes: NftChange[]; result: EnsureResult } {
  const r = emptyResult();
  const changes: NftChange[] = [];
  const { exists, rules, held } = state;
  r.tableMissing = !exists;
  changes.push({ change: "add-table" });
  for (const s of spec.sets ?? []) changes.push({ change: "add-set", set: s });
  for (const s of spec.sets ?? []) if (held.has(s.name) && held.get(s.name) === undefined) r.missingSets.push(s.name);
  for (const s of spec.sets ?? []) {
    if (!s.elements) continue;
    const have = held.get(s.name) ?? [];
    const want = new Set(s.elements.map((e) => hex(e.key)));
    const keys = new Set(have.map((e) => hex(e.key)));
    const extra = have.filter((e) => !want.has(hex(e.key)));
    const missing = s.elements.filter((e) => !keys.has(hex(e.key)));
    if (extra.length) changes.push({ change: "delete-elements", set: s.name, elements: extra });
    if (missing.length) changes.push({ change: "add-elements", set: s.name, elements: missing });
    if (extra.length || missing.length) r.changedSets.push(s.name);
  }
  for (const c of spec.chains ?? []) changes.push({ change: "add-chain", chain: c });
  for (const c of spec.chains ?? []) {
    if (!c.rules) continue;
    const have = rules.filter((x) => x.chain === c.name);
    if (sameRules(have, c.rules)) continue;
    r.rewrittenChains.push(c.name);
    for (const x of c.rules) if (!have.some((h) => ruleMatches(h, x))) r.missingRules.push({ chain: c.name, comment: x.comment });
    for (const x of have) changes.push({ change: "delete-rule", chain: c.name, handle: x.handle, ...(x.comment !== undefined && { comment: x.comment }) });
    for (const x of c.rules) changes.push({ change: "add-rule", chain: c.name, rule: x });
  }
  if (opts.deleteTagged !== undefined && exists) {
    for (const s of spec.sets ?? []) {
      const gone = (held.get(s.name) ?? []).filter((e) => commentTag(e.comment) === opts.deleteTagged);
      if (gone.length === 0) continue;
      r.deleted[s.name] = gone;
      changes.push({ change: "delete-elements", set: s.name, elements: gone });
    }
  }
  for (const a of opts.add ?? []) {
    let elements = a.elements;
    if (opts.addMissingOnly) {
      const keys = new Set((held.get(a.set) ?? []).map((e) => hex(e.key)));
      elements = elements.filter((e) => !keys.has(hex(e.key)));
    }
    if (elements.length) changes.push({ change: "add-elements", set: a.set, elements });
    r.added += elements.length;
  }
  r.drifted = r.tableMissing || r.missingSets.length > 0 || r.changedSets.length > 0 || r.rewrittenChains.length > 0 ||
    Object.keys(r.deleted).length > 0 || r.added > 0;
  return { changes, result: r };
}

/** Puts the changes into a batch, in order (one transaction). */
export function batchChanges(b: Batch, family: Family, table: string, changes: readonly NftChange[]): void {
  for (const c of changes) {
    switch (c.change) {
      case "add-table": addTable(b, family, table); break;
      case "add-set": addSet(b, family, table, c.set); break;
      case "add-chain": addChain(b, family, table, c.chain); break;
      case "add-rule": addRule(b, family, table, c.chain, c.rule); break;
      case "delete-rule": deleteRule(b, family, table, c.chain, c.handle, c.comment); break;
      case "add-elements": addElements(b, family, table, c.set, c.elements); break;
      case "delete-elements": deleteElements(b, family, table, c.set, c.elements); break;
    }
  }
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** The set's elements; undefined when the set does not exist (yet: it may be added in the same batch). */
function listElementsIfAny(nl: NetlinkSocket, family: Family, table: string, set: string): SetElement[] | undefined {
  try {
    return listElements(nl, family, table, set);
  } catch (e) {
    if ((e as { errno?: number }).errno === 2) return undefined;
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
      const gone = (listElementsIfAny(nl, family, table, s) ?? []).filter((e) => commentTag(e.comment) === tag);
      if (gone.length === 0) continue;
      deleted[s] = gone;
      deleteElements(b, family, table, s, gone);
    }
  });
  return deleted;
}
