import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS } from "../constants.ts";
import { schema } from "../schema.ts";
import { exprSchemas, type Expr } from "./expr.ts";

exprSchemas.set("counter", schema({ NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS }));

// "counter": empty NFTA_EXPR_DATA; the kernel starts at zero (and dumps NFTA_COUNTER_BYTES,
// NFTA_COUNTER_PACKETS as be64).
export function counter(): Expr {
  return { name: "counter", encode(_w: NetlinkWriter) {} };
}
