import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFTA_FIB_DREG, NFTA_FIB_FLAGS, NFTA_FIB_RESULT } from "../constants.ts";
import { schema } from "../schema.ts";
import { exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set("fib", schema({ NFTA_FIB_DREG, NFTA_FIB_RESULT, NFTA_FIB_FLAGS }));

// "fib": NFTA_FIB_DREG be32, NFTA_FIB_RESULT be32 (NFT_FIB_RESULT_*), NFTA_FIB_FLAGS be32 (NFTA_FIB_F_*)
// A route lookup on the packet. With NFT_FIB_RESULT_ADDRTYPE the register receives the route
// type (RTN_LOCAL, ...) as a host-order u32: compare it with host-order bytes, not network order.
export function fib(flags: number, result: number, dreg: Register): Expr {
  return {
    name: "fib",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_FIB_DREG, dreg);
      w.attrBe32(NFTA_FIB_RESULT, result);
      w.attrBe32(NFTA_FIB_FLAGS, flags);
    },
  };
}
