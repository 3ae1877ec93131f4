import { isErrno } from "../errors/errors.ts";
import { NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST } from "../netlink/constants.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import type { NetlinkWriter } from "../netlink/writer.ts";
import type { Batch } from "./batch.ts";
import {
  NFT_MSG_DELSET,
  NFT_MSG_DELSETELEM,
  NFT_MSG_GETSET,
  NFT_MSG_GETSETELEM,
  NFT_MSG_NEWSET,
  NFT_MSG_NEWSETELEM,
  NFT_SET_MAP,
  NFTA_DATA_VALUE,
  NFTA_LIST_ELEM,
  NFTA_SET_DATA_LEN,
  NFTA_SET_DATA_TYPE,
  NFTA_SET_ELEM_DATA,
  NFTA_SET_ELEM_FLAGS,
  NFTA_SET_ELEM_KEY,
  NFTA_SET_ELEM_LIST_ELEMENTS,
  NFTA_SET_ELEM_LIST_SET,
  NFTA_SET_ELEM_LIST_TABLE,
  NFTA_SET_ELEM_USERDATA,
  NFTA_SET_FLAGS,
  NFTA_SET_ID,
  NFTA_SET_KEY_LEN,
  NFTA_SET_KEY_TYPE,
  NFTA_SET_NAME,
  NFTA_SET_TABLE,
  NFTA_SET_USERDATA,
  NFT_BYTEORDER_HOST_ENDIAN,
  NFTNL_UDATA_SET_ELEM_COMMENT,
  NFTNL_UDATA_SET_KEYBYTEORDER,
} from "./constants.ts";
import { dataSchema, dataValue } from "./expr/expr.ts";
import { beginNft, NFT_ATTRS, nfproto, nftMsgType, type Family } from "./nfnl.ts";
import { attrList, schema, type AttrSchema } from "./schema.ts";
import { concatType, type FieldType } from "./types.ts";
import { commentUdata, udataComment } from "./udata.ts";

export interface SetSpec {
  name: string;
  /** Key fields; several make a concatenation (`inet_proto . inet_service`). */
  key: readonly FieldType[];
  /** Data fields: present makes it a map (`: ipv4_addr . inet_service`). */
  data?: readonly FieldType[];
}

const setSchema = schema({
  NFTA_SET_TABLE,
  NFTA_SET_NAME,
  NFTA_SET_FLAGS,
  NFTA_SET_KEY_TYPE,
  NFTA_SET_KEY_LEN,
  NFTA_SET_DATA_TYPE,
  NFTA_SET_DATA_LEN,
  NFTA_SET_ID,
  NFTA_SET_USERDATA,
});

// Set ids only tie messages of one batch together; any number unique in the batch will do.
let nextSetId = 1;

// NFT_MSG_NEWSET: NFTA_SET_TABLE str, NFTA_SET_NAME str, NFTA_SET_FLAGS be32 (NFT_SET_MAP for a
//   map), NFTA_SET_KEY_TYPE be32, NFTA_SET_KEY_LEN be32, [NFTA_SET_DATA_TYPE be32,
//   NFTA_SET_DATA_LEN be32], NFTA_SET_ID be32 (required by the kernel),
//   [NFTA_SET_USERDATA | type u8 = KEYBYTEORDER | len u8 = 4 | u32 host order |] (nft only)
// A plain (hash) set is enough for exact-match concatenations: NFT_SET_CONCAT and
// NFTA_SET_DESC_CONCAT are for interval sets only (either alone is EINVAL). Without NLM_F_EXCL
// an existing set of the same shape is kept, a different shape is EEXIST.
export function addSet(b: Batch, family: Family, table: string, s: SetSpec): void {
  const key = concatType(s.key);
  const data = s.data && concatType(s.data);
  const id = nextSetId++;
  b.add({
    msg: NFT_MSG_NEWSET,
    family: nfproto(family),
    flags: NLM_F_CREATE,
    op: data ? "add map" : "add set",
    object: `${table}/${s.name}`,
    schema: setSchema,
    encode: (w) => {
      w.attrStr(NFTA_SET_TABLE, table);
      w.attrStr(NFTA_SET_NAME, s.name);
      w.attrBe32(NFTA_SET_FLAGS, data ? NFT_SET_MAP : 0);
      w.attrBe32(NFTA_SET_KEY_TYPE, key.type);
      w.attrBe32(NFTA_SET_KEY_LEN, key.len);
      if (data) {
        w.attrBe32(NFTA_SET_DATA_TYPE, data.type);
        w.attrBe32(NFTA_SET_DATA_LEN, data.len);
      }
      w.attrBe32(NFTA_SET_ID, id);
      // A single host-order key (an interface name) is printed reversed by nft unless it is told.
      if (s.key.length === 1 && s.key[0]!.hostOrder) {
        const u = new Uint8Array(6);
        u[0] = NFTNL_UDATA_SET_KEYBYTEORDER;
        u[1] = 4;
        new DataView(u.buffer).setUint32(2, NFT_BYTEORDER_HOST_ENDIAN, true);
        w.attrBytes(NFTA_SET_USERDATA, u);
      }
    },
  });
}

// NFT_MSG_DELSET: NFTA_SET_TABLE str, NFTA_SET_NAME str (no rule may still refer to it).
export function deleteSet(b: Batch, family: Family, table: string, name: string): void {
  b.add({
    msg: NFT_MSG_DELSET,
    family: nfproto(family),
    flags: 0,
    op: "delete set",
    object: `${table}/${name}`,
    schema: setSchema,
    encode: (w) => {
      w.attrStr(NFTA_SET_TABLE, table);
      w.attrStr(NFTA_SET_NAME, name);
    },
  });
}

// NFT_MSG_GETSET (no dump): nfgenmsg{family}, NFTA_SET_TABLE str, NFTA_SET_NAME str; ENOENT when
// the set (or its table) is absent.
export function setExists(nl: NetlinkSocket, family: Family, table: string, name: string): boolean {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = beginNft(w, nftMsgType(NFT_MSG_GETSET), NLM_F_REQUEST, seq, nfproto(family));
  w.attrStr(NFTA_SET_TABLE, table);
  w.attrStr(NFTA_SET_NAME, name);
  w.end(at);
  try {
    nl.query(w, { seq, at, op: "get set", object: `${table}/${name}` });
    return true;
  } catch (e) {
    if (isErrno(e, 2)) return false;
    throw e;
  }
}

export interface SetElement {
  /** Key bytes, concatenated fields padded to 4 bytes each (see concatValue). */
  key: Uint8Array;
  /** Map data bytes, same layout. */
  data?: Uint8Array;
  /** Shown by `nft list` as `comment "..."`; tsnet names the owning container here. */
  comment?: string;
}

const elemSchema: AttrSchema = {
  ...schema(
    { NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_FLAGS, NFTA_SET_ELEM_USERDATA },
    { [NFTA_SET_ELEM_KEY]: dataSchema, [NFTA_SET_ELEM_DATA]: dataSchema },
  ),
  // The rejected element is named by its comment, when it has one.
  select: (siblings) => {
    const u = siblings.find((a) => a.type === NFTA_SET_ELEM_USERDATA);
    const c = u && udataComment(u.value, NFTNL_UDATA_SET_ELEM_COMMENT);
    return { label: c && `comment "${c}"` };
  },
};
const elemListSchema = schema(
  { NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS },
  { [NFTA_SET_ELEM_LIST_ELEMENTS]: { ...schema({ NFTA_LIST_ELEM }, { [NFTA_LIST_ELEM]: elemSchema }), numbered: true } },
);

// NFT_MSG_NEWSETELEM / NFT_MSG_DELSETELEM: NFTA_SET_ELEM_LIST_TABLE str, NFTA_SET_ELEM_LIST_SET str,
//   NFTA_SET_ELEM_LIST_ELEMENTS { NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE },
//     NFTA_SET_ELEM_DATA { NFTA_DATA_VALUE } (maps), NFTA_SET_ELEM_USERDATA bytes (comment TLV) } ... }
function encodeElements(w: NetlinkWriter, table: string, set: string, elements: readonly SetElement[], withData: boolean): void {
  w.attrStr(NFTA_SET_ELEM_LIST_TABLE, table);
  w.attrStr(NFTA_SET_ELEM_LIST_SET, set);
  w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, () => {
    for (const e of elements) {
      w.nest(NFTA_LIST_ELEM, () => {
        dataValue(w, NFTA_SET_ELEM_KEY, e.key);
        if (!withData) return;
        if (e.data) dataValue(w, NFTA_SET_ELEM_DATA, e.data);
        if (e.comment !== undefined) w.attrBytes(NFTA_SET_ELEM_USERDATA, commentUdata(e.comment, NFTNL_UDATA_SET_ELEM_COMMENT));
      });
    }
  });
}

// An element list is one nested attribute, and nla_len is 16 bits: past ~500 commented elements
// it would overflow. Lists are split into messages of this many elements, all in the same batch
// (one transaction either way), as libnftnl does.
const ELEMENTS_PER_MESSAGE = 200;

function chunks<T>(xs: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += ELEMENTS_PER_MESSAGE) out.push(xs.slice(i, i + ELEMENTS_PER_MESSAGE));
  return out;
}

/**
 * Adds elements (one message per ELEMENTS_PER_MESSAGE). Re-adding an element with the same key and data is accepted
 * (and keeps its old comment); the same key with other data is EEXIST — for a port map, the
 * port is taken.
 */
export function addElements(b: Batch, family: Family, table: string, set: string, elements: readonly SetElement[]): void {
  for (const part of chunks(elements)) {
    b.add({
      msg: NFT_MSG_NEWSETELEM,
      family: nfproto(family),
      flags: NLM_F_CREATE,
      op: "add element",
      object: `${table}/${set}`,
      schema: elemListSchema,
      encode: (w) => encodeElements(w, table, set, part, true),
    });
  }
}

/** Deletes elements by key (data and comments are not needed); a missing key is ENOENT. */
export function deleteElements(b: Batch, family: Family, table: string, set: string, elements: readonly SetElement[]): void {
  for (const part of chunks(elements)) {
    b.add({
      msg: NFT_MSG_DELSETELEM,
      family: nfproto(family),
      flags: 0,
      op: "delete element",
      object: `${table}/${set}`,
      schema: elemListSchema,
      encode: (w) => encodeElements(w, table, set, part, false),
    });
  }
}

function dataBytes(v: DataView | undefined): Uint8Array | undefined {
  if (!v) return undefined;
  const val = attrList(v).find((a) => a.type === NFTA_DATA_VALUE);
  return val && new Uint8Array(val.value.buffer.slice(val.value.byteOffset, val.value.byteOffset + val.value.byteLength));
}

// NFT_MSG_GETSETELEM dump: NFTA_SET_ELEM_LIST_TABLE str, NFTA_SET_ELEM_LIST_SET str; answered by
// NFT_MSG_NEWSETELEM messages laid out as above (several per set when it is large).
export function listElements(nl: NetlinkSocket, family: Family, table: string, set: string): SetElement[] {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = beginNft(w, nftMsgType(NFT_MSG_GETSETELEM), NLM_F_REQUEST | NLM_F_DUMP, seq, nfproto(family));
  w.attrStr(NFTA_SET_ELEM_LIST_TABLE, table);
  w.attrStr(NFTA_SET_ELEM_LIST_SET, set);
  w.end(at);
  const out: SetElement[] = [];
  nl.dump(w, { seq, at, op: "list elements", object: `${table}/${set}` }, (m) => {
    if (m.type === nftMsgType(NFT_MSG_NEWSETELEM)) out.push(...elementsOf(m.view));
  });
  return out;
}

/**
 * The elements of one NFT_MSG_NEWSETELEM / NFT_MSG_DELSETELEM message (a dump's answer or a
 * notification), copied out of the receive buffer.
 */
export function elementsOf(message: DataView): SetElement[] {
  const out: SetElement[] = [];
  for (const top of attrList(message, NFT_ATTRS)) {
    if (top.type !== NFTA_SET_ELEM_LIST_ELEMENTS) continue;
    for (const el of attrList(top.value)) {
      if (el.type !== NFTA_LIST_ELEM) continue;
      const a = attrList(el.value);
      const get = (t: number) => a.find((x) => x.type === t)?.value;
      const key = dataBytes(get(NFTA_SET_ELEM_KEY));
      if (!key) continue;
      const data = dataBytes(get(NFTA_SET_ELEM_DATA));
      const comment = udataComment(get(NFTA_SET_ELEM_USERDATA), NFTNL_UDATA_SET_ELEM_COMMENT);
      out.push({ key, ...(data && { data }), ...(comment !== undefined && { comment }) });
    }
  }
  return out;
}
