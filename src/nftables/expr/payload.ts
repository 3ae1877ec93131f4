import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFTA_PAYLOAD_BASE, NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_LEN, NFTA_PAYLOAD_OFFSET } from "../constants.ts";
import { schema } from "../schema.ts";
import { exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set("payload", schema({ NFTA_PAYLOAD_DREG, NFTA_PAYLOAD_BASE, NFTA_PAYLOAD_OFFSET, NFTA_PAYLOAD_LEN }));

// "payload": NFTA_PAYLOAD_DREG be32, NFTA_PAYLOAD_BASE be32 (NFT_PAYLOAD_*_HEADER),
//   NFTA_PAYLOAD_OFFSET be32, NFTA_PAYLOAD_LEN be32
// Copies len bytes of the packet, in network order, into dreg (and the registers after it).
export function payloadLoad(base: number, offset: number, len: number, dreg: Register): Expr {
  return {
    name: "payload",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_PAYLOAD_DREG, dreg);
      w.attrBe32(NFTA_PAYLOAD_BASE, base);
      w.attrBe32(NFTA_PAYLOAD_OFFSET, offset);
      w.attrBe32(NFTA_PAYLOAD_LEN, len);
    },
  };
}
