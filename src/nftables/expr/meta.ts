import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFTA_META_DREG, NFTA_META_KEY } from "../constants.ts";
import { schema } from "../schema.ts";
import { exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set("meta", schema({ NFTA_META_DREG, NFTA_META_KEY }));

// "meta": NFTA_META_KEY be32 (NFT_META_*), NFTA_META_DREG be32
// Loads packet metadata: l4proto and nfproto are 1 byte, iifname/oifname 16 bytes (IFNAMSIZ,
// NUL padded), iif/oif a host-order u32.
export function metaLoad(key: number, dreg: Register): Expr {
  return {
    name: "meta",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_META_KEY, key);
      w.attrBe32(NFTA_META_DREG, dreg);
    },
  };
}
