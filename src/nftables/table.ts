import { isErrno } from "../errors/errors.ts";
import { NLM_F_CREATE, NLM_F_REQUEST } from "../netlink/constants.ts";
import type { NetlinkSocket } from "../netlink/socket.ts";
import type { Batch } from "./batch.ts";
import { NFT_MSG_DELTABLE, NFT_MSG_GETTABLE, NFT_MSG_NEWTABLE, NFTA_TABLE_FLAGS, NFTA_TABLE_NAME } from "./constants.ts";
import { beginNft, nfproto, nftMsgType, type Family } from "./nfnl.ts";
import { schema } from "./schema.ts";

const tableSchema = schema({ NFTA_TABLE_NAME, NFTA_TABLE_FLAGS });

// NFT_MSG_NEWTABLE: nfgenmsg{family}, NFTA_TABLE_NAME str
// Without NLM_F_EXCL an existing table is left as it is: adding is idempotent.
export function addTable(b: Batch, family: Family, name: string): void {
  b.add({
    msg: NFT_MSG_NEWTABLE,
    family: nfproto(family),
    flags: NLM_F_CREATE,
    op: "add table",
    object: `${family} ${name}`,
    schema: tableSchema,
    encode: (w) => w.attrStr(NFTA_TABLE_NAME, name),
  });
}

// NFT_MSG_DELTABLE: nfgenmsg{family}, NFTA_TABLE_NAME str — takes its chains, sets, rules along.
export function deleteTable(b: Batch, family: Family, name: string): void {
  b.add({
    msg: NFT_MSG_DELTABLE,
    family: nfproto(family),
    flags: 0,
    op: "delete table",
    object: `${family} ${name}`,
    schema: tableSchema,
    encode: (w) => w.attrStr(NFTA_TABLE_NAME, name),
  });
}

// NFT_MSG_GETTABLE (no dump): nfgenmsg{family}, NFTA_TABLE_NAME str; ENOENT when absent.
export function tableExists(nl: NetlinkSocket, family: Family, name: string): boolean {
  const w = nl.writer.reset();
  const seq = nl.nextSeq();
  const at = beginNft(w, nftMsgType(NFT_MSG_GETTABLE), NLM_F_REQUEST, seq, nfproto(family));
  w.attrStr(NFTA_TABLE_NAME, name);
  w.end(at);
  try {
    nl.query(w, { seq, at, op: "get table", object: `${family} ${name}` });
    return true;
  } catch (e) {
    if (isErrno(e, 2)) return false;
    throw e;
  }
}
