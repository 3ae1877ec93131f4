import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFTA_CMP_DATA, NFTA_CMP_OP, NFTA_CMP_SREG } from "../constants.ts";
import { schema } from "../schema.ts";
import { dataSchema, dataValue, exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set("cmp", schema({ NFTA_CMP_SREG, NFTA_CMP_OP, NFTA_CMP_DATA }, { [NFTA_CMP_DATA]: dataSchema }));

// "cmp": NFTA_CMP_SREG be32, NFTA_CMP_OP be32 (NFT_CMP_*), NFTA_CMP_DATA { NFTA_DATA_VALUE bytes }
// Compares data.length bytes of sreg with data; a mismatch ends the rule (NFT_BREAK).
export function cmp(op: number, sreg: Register, data: ArrayLike<number>): Expr {
  if (data.length === 0 || data.length > 64) throw new RangeError(`cmp data of ${data.length} bytes`);
  return {
    name: "cmp",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_CMP_SREG, sreg);
      w.attrBe32(NFTA_CMP_OP, op);
      dataValue(w, NFTA_CMP_DATA, data);
    },
  };
}
