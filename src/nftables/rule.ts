import { NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST } from "../netlink/constants.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import { NetlinkWriter } from "../netlink/writer.ts";
import type { Batch } from "./batch.ts";
import {
  NFT_MSG_DELRULE,
  NFT_MSG_GETRULE,
  NFT_MSG_NEWRULE,
  NFTA_EXPR_DATA,
  NFTA_EXPR_NAME,
  NFTA_LIST_ELEM,
  NFTA_RULE_CHAIN,
  NFTA_RULE_EXPRESSIONS,
  NFTA_RULE_HANDLE,
  NFTA_RULE_POSITION,
  NFTA_RULE_TABLE,
  NFTA_RULE_USERDATA,
  NFTNL_UDATA_RULE_COMMENT,
} from "./constants.ts";
import { exprSchemas, type Expr } from "./expr/expr.ts";
import { beginNft, NFT_ATTRS, nfproto, nftMsgType, type Family } from "./nfnl.ts";
import { attrList, attrString, schema, type AttrSchema, type RawAttr } from "./schema.ts";
import { commentUdata, udataComment } from "./udata.ts";

export interface RuleSpec {
  exprs: readonly Expr[];
  /** Shown by `nft list` as `comment "..."`; also how ensureTable recognises its rules. */
  comment?: string;
}

const exprElemSchema: AttrSchema = {
  ...schema({ NFTA_EXPR_NAME, NFTA_EXPR_DATA }),
  // An expression's data is named after the expression: the NFTA_EXPR_NAME sibling.
  select: (siblings) => {
    const n = siblings.find((a) => a.type === NFTA_EXPR_NAME);
    const name = n ? attrString(n.value) : undefined;
    const data = name ? exprSchemas.get(name) : undefined;
    const children: Record<number, AttrSchema> = {};
    if (data) children[NFTA_EXPR_DATA] = data;
    return { label: name, children };
  },
};
const ruleSchema = schema(
  { NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_HANDLE, NFTA_RULE_EXPRESSIONS, NFTA_RULE_POSITION, NFTA_RULE_USERDATA },
  { [NFTA_RULE_EXPRESSIONS]: { ...schema({ NFTA_LIST_ELEM }, { [NFTA_LIST_ELEM]: exprElemSchema }), numbered: true } },
);

// NFTA_RULE_EXPRESSIONS { NFTA_LIST_ELEM { NFTA_EXPR_NAME str, NFTA_EXPR_DATA { ... } } ... }
export function encodeExprs(w: NetlinkWriter, exprs: readonly Expr[]): void {
  w.nest(NFTA_RULE_EXPRESSIONS, () => {
    for (const e of exprs) {
      w.nest(NFTA_LIST_ELEM, () => {
        w.attrStr(NFTA_EXPR_NAME, e.name);
        w.nest(NFTA_EXPR_DATA, () => e.encode(w));
      });
    }
  });
}

// NFT_MSG_NEWRULE (NLM_F_CREATE | NLM_F_APPEND: at the end of the chain): NFTA_RULE_TABLE str,
//   NFTA_RULE_CHAIN str, NFTA_RULE_EXPRESSIONS {...}, NFTA_RULE_USERDATA (comment TLV, type 0)
export function addRule(b: Batch, family: Family, table: string, chain: string, r: RuleSpec): void {
  if (r.exprs.length === 0) throw new RangeError("a rule needs at least one expression");
  const udata = r.comment !== undefined ? commentUdata(r.comment, NFTNL_UDATA_RULE_COMMENT) : undefined;
  b.add({
    msg: NFT_MSG_NEWRULE,
    family: nfproto(family),
    flags: NLM_F_CREATE | NLM_F_APPEND,
    op: "add rule",
    object: `${table}/${chain}${r.comment ? ` "${r.comment}"` : ""}`,
    schema: ruleSchema,
    encode: (w) => {
      w.attrStr(NFTA_RULE_TABLE, table);
      w.attrStr(NFTA_RULE_CHAIN, chain);
      encodeExprs(w, r.exprs);
      if (udata) w.attrBytes(NFTA_RULE_USERDATA, udata);
    },
  });
}

// NFT_MSG_DELRULE: NFTA_RULE_TABLE str, NFTA_RULE_CHAIN str, NFTA_RULE_HANDLE be64
export function deleteRule(b: Batch, family: Family, table: string, chain: string, handle: bigint, what = ""): void {
  b.add({
    msg: NFT_MSG_DELRULE,
    family: nfproto(family),
    flags: 0,
    op: "delete rule",
    object: `${table}/${chain} handle ${handle}${what ? ` "${what}"` : ""}`,
    schema: ruleSchema,
    encode: (w) => {
      w.attrStr(NFTA_RULE_TABLE, table);
      w.attrStr(NFTA_RULE_CHAIN, chain);
      w.attrBe64(NFTA_RULE_HANDLE, handle);
    },
  });
}

export interface RuleInfo {
  chain: string;
  handle: bigint;
  comment?: string;
  /** The expressions as the kernel dumps them: name and a copy of the NFTA_EXPR_DATA payload. */
  exprs: { name: string; data: DataView }[];
}

// NFT_MSG_GETRULE dump, filtered by NFTA_RULE_TABLE (and NFTA_RULE_CHAIN); answered by
// NFT_MSG_NEWRULE messages: TABLE, CHAIN, HANDLE be64, EXPRESSIONS, USERDATA. In chain order.
export function listRules(nl: NetlinkSocket, family: Family, table: string, chain?: string): RuleInfo[] {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = beginNft(w, nftMsgType(NFT_MSG_GETRULE), NLM_F_REQUEST | NLM_F_DUMP, seq, nfproto(family));
  w.attrStr(NFTA_RULE_TABLE, table);
  if (chain !== undefined) w.attrStr(NFTA_RULE_CHAIN, chain);
  w.end(at);
  const out: RuleInfo[] = [];
  nl.dump(w, { seq, at, op: "list rules", object: chain ? `${table}/${chain}` : table }, (m) => {
    if (m.type !== nftMsgType(NFT_MSG_NEWRULE)) return;
    const a = attrList(m.view, NFT_ATTRS);
    const get = (t: number) => a.find((x) => x.type === t)?.value;
    const t = get(NFTA_RULE_TABLE);
    const c = get(NFTA_RULE_CHAIN);
    const h = get(NFTA_RULE_HANDLE);
    if (!t || attrString(t) !== table || !c || !h) return;
    const exprs: RuleInfo["exprs"] = [];
    const list = get(NFTA_RULE_EXPRESSIONS);
    for (const el of list ? attrList(list) : []) {
      const e = attrList(el.value);
      const name = e.find((x) => x.type === NFTA_EXPR_NAME);
      const data = e.find((x) => x.type === NFTA_EXPR_DATA);
      if (!name) continue;
      // The receive buffer is reused by the next read: keep a copy.
      const copy = data ? new DataView(data.value.buffer.slice(data.value.byteOffset, data.value.byteOffset + data.value.byteLength)) : new DataView(new ArrayBuffer(0));
      exprs.push({ name: attrString(name.value), data: copy });
    }
    const comment = udataComment(get(NFTA_RULE_USERDATA), NFTNL_UDATA_RULE_COMMENT);
    out.push({ chain: attrString(c), handle: h.getBigUint64(0, false), ...(comment !== undefined && { comment }), exprs });
  });
  return out;
}

/**
 * Whether a dumped rule is the rule we would write: the same expressions in the same order, and
 * every attribute we send present in the kernel's dump with the same bytes (nested ones
 * compared the same way). Attributes the kernel adds (counter values, nat's ADDR_MAX) are not
 * ours to compare.
 */
export function ruleMatches(have: RuleInfo, want: RuleSpec): boolean {
  if ((have.comment ?? undefined) !== (want.comment ?? undefined)) return false;
  if (have.exprs.length !== want.exprs.length) return false;
  const w = new NetlinkWriter(256);
  return want.exprs.every((e, i) => {
    const h = have.exprs[i]!;
    if (h.name !== e.name) return false;
    e.encode(w.reset());
    return subset(new DataView(w.buf.buffer, 0, w.len), h.data);
  });
}

function subset(mine: DataView, theirs: DataView): boolean {
  const t = attrList(theirs);
  return attrList(mine).every((m: RawAttr) => {
    const o = t.find((x) => x.type === m.type);
    if (!o) return false;
    if (m.nested) return subset(m.value, o.value);
    if (o.value.byteLength !== m.value.byteLength) return false;
    for (let i = 0; i < m.value.byteLength; i++) if (o.value.getUint8(i) !== m.value.getUint8(i)) return false;
    return true;
  });
}
