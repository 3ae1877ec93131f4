import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_ALIGN } from "../netlink/constants.ts";

/**
 * What the attributes of one nesting level are called, so an error ack's NLMSGERR_ATTR_OFFS
 * (nf_tables gives no ext-ack text, only the offset of the attribute it rejected) can be
 * reported as a path of kernel names: `NFTA_RULE_EXPRESSIONS > NFTA_LIST_ELEM #4 (nat) >
 * NFTA_EXPR_DATA > NFTA_NAT_REG_PROTO_MIN`.
 */
export interface AttrSchema {
  names: ReadonlyMap<number, string>;
  /** Schemas of nested attributes, by type. */
  children?: Readonly<Record<number, AttrSchema>>;
  /** When a child's meaning depends on a sibling (an expression's data on its name). */
  select?: (siblings: RawAttr[]) => { children?: Readonly<Record<number, AttrSchema>>; label?: string };
  /** Repeated attributes (list elements) are numbered in the path. */
  numbered?: boolean;
}

/** Builds the name table from the constants themselves: `schema({ NFTA_META_DREG, NFTA_META_KEY })`. */
export function schema(constants: Record<string, number>, children?: Record<number, AttrSchema>): AttrSchema {
  const names = new Map<number, string>();
  for (const [name, value] of Object.entries(constants)) names.set(value, name);
  return { names, children };
}

export interface RawAttr {
  type: number;
  nested: boolean;
  /** Offset of the attribute header in the view. */
  at: number;
  /** Payload view. */
  value: DataView;
}

/** Every attribute of one level, in order (the reader's Attrs keeps only the last of a type). */
export function attrList(view: DataView, start = 0, end = view.byteLength): RawAttr[] {
  const out: RawAttr[] = [];
  let at = start;
  while (at + NLA_HDRLEN <= end) {
    const len = view.getUint16(at, true);
    if (len < NLA_HDRLEN || at + len > end) break;
    const raw = view.getUint16(at + 2, true);
    out.push({
      type: raw & NLA_TYPE_MASK,
      nested: (raw & NLA_F_NESTED) !== 0,
      at,
      value: new DataView(view.buffer, view.byteOffset + at + NLA_HDRLEN, len - NLA_HDRLEN),
    });
    at += NLMSG_ALIGN(len);
  }
  return out;
}

export function attrString(v: DataView): string {
  let end = v.byteLength;
  while (end > 0 && v.getUint8(end - 1) === 0) end--;
  return new TextDecoder().decode(new Uint8Array(v.buffer, v.byteOffset, end));
}

/**
 * Names the attribute at byte `offset` of `view` (a message's attributes, the view starting at
 * the first attribute). Descends through nests while the offset lies inside one.
 */
export function attrPath(view: DataView, offset: number, s: AttrSchema | undefined): string {
  const list = attrList(view);
  const sel = s?.select?.(list);
  const children = { ...s?.children, ...sel?.children };
  const counts = new Map<number, number>();
  for (const a of list) {
    const n = (counts.get(a.type) ?? 0) + 1;
    counts.set(a.type, n);
    const end = a.at + NLA_HDRLEN + a.value.byteLength;
    if (offset < a.at || offset >= end) continue;
    let name = s?.names.get(a.type) ?? `attribute type ${a.type}`;
    if (s?.numbered) name += ` #${n}`;
    if (!a.nested) return name;
    const child = children[a.type];
    const label = child?.select?.(attrList(a.value)).label;
    if (label) name += ` (${label})`;
    if (offset === a.at) return name;
    return `${name} > ${attrPath(a.value, offset - a.at - NLA_HDRLEN, child)}`;
  }
  return `attribute at byte ${offset}`;
}
