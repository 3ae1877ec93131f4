import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFTA_BITWISE_DREG, NFTA_BITWISE_LEN, NFTA_BITWISE_MASK, NFTA_BITWISE_SREG, NFTA_BITWISE_XOR } from "../constants.ts";
import { schema } from "../schema.ts";
import { dataSchema, dataValue, exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set(
  "bitwise",
  schema(
    { NFTA_BITWISE_SREG, NFTA_BITWISE_DREG, NFTA_BITWISE_LEN, NFTA_BITWISE_MASK, NFTA_BITWISE_XOR },
    { [NFTA_BITWISE_MASK]: dataSchema, [NFTA_BITWISE_XOR]: dataSchema },
  ),
);

// "bitwise": NFTA_BITWISE_SREG be32, NFTA_BITWISE_DREG be32, NFTA_BITWISE_LEN be32,
//   NFTA_BITWISE_MASK { NFTA_DATA_VALUE }, NFTA_BITWISE_XOR { NFTA_DATA_VALUE }
// dreg = (sreg & mask) ^ xor over mask.length bytes. NFTA_BITWISE_OP is left out: its default,
// NFT_BITWISE_MASK_XOR, is the only operation older kernels know.
export function bitwise(sreg: Register, dreg: Register, mask: ArrayLike<number>, xor?: ArrayLike<number>): Expr {
  const x = xor ?? new Uint8Array(mask.length);
  if (x.length !== mask.length) throw new RangeError("bitwise mask and xor differ in length");
  return {
    name: "bitwise",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_BITWISE_SREG, sreg);
      w.attrBe32(NFTA_BITWISE_DREG, dreg);
      w.attrBe32(NFTA_BITWISE_LEN, mask.length);
      dataValue(w, NFTA_BITWISE_MASK, mask);
      dataValue(w, NFTA_BITWISE_XOR, x);
    },
  };
}
