import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFT_LOOKUP_F_INV, NFTA_LOOKUP_DREG, NFTA_LOOKUP_FLAGS, NFTA_LOOKUP_SET, NFTA_LOOKUP_SET_ID, NFTA_LOOKUP_SREG } from "../constants.ts";
import { schema } from "../schema.ts";
import { exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set("lookup", schema({ NFTA_LOOKUP_SET, NFTA_LOOKUP_SREG, NFTA_LOOKUP_DREG, NFTA_LOOKUP_SET_ID, NFTA_LOOKUP_FLAGS }));

export interface LookupOptions {
  /** Name of a named set or map of the rule's table (it may be created in the same batch). */
  set: string;
  /** First register of the key; a concatenated key spans the 32-bit registers after it. */
  sreg: Register;
  /** For a map: where the element's data goes (again spanning consecutive registers). */
  dreg?: Register;
  /** Match when the key is absent (`!= @set`). */
  invert?: boolean;
}

// "lookup": NFTA_LOOKUP_SET str, NFTA_LOOKUP_SREG be32, NFTA_LOOKUP_DREG be32 (maps only),
//   NFTA_LOOKUP_FLAGS be32 (NFT_LOOKUP_F_INV, only when set)
// No NFTA_LOOKUP_SET_ID: the kernel finds a set added earlier in the same batch by name too,
// and the set id is not part of what it dumps back.
export function lookup(o: LookupOptions): Expr {
  return {
    name: "lookup",
    encode(w: NetlinkWriter) {
      w.attrStr(NFTA_LOOKUP_SET, o.set);
      w.attrBe32(NFTA_LOOKUP_SREG, o.sreg);
      if (o.dreg !== undefined) w.attrBe32(NFTA_LOOKUP_DREG, o.dreg);
      if (o.invert) w.attrBe32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
    },
  };
}
