import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFTA_CT_DREG, NFTA_CT_KEY } from "../constants.ts";
import { schema } from "../schema.ts";
import { exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set("ct", schema({ NFTA_CT_DREG, NFTA_CT_KEY }));

// "ct": NFTA_CT_KEY be32 (NFT_CT_*), NFTA_CT_DREG be32
// Loads conntrack state of the packet's connection; NFT_CT_STATUS is a host-order u32 of IPS_* bits.
export function ctLoad(key: number, dreg: Register): Expr {
  return {
    name: "ct",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_CT_KEY, key);
      w.attrBe32(NFTA_CT_DREG, dreg);
    },
  };
}
