import type { NetlinkWriter } from "../../netlink/writer.ts";
import { NF_ACCEPT, NF_DROP, NFT_GOTO, NFT_JUMP, NFT_REG_VERDICT, NFT_RETURN, NFTA_IMMEDIATE_DATA, NFTA_IMMEDIATE_DREG } from "../constants.ts";
import { schema } from "../schema.ts";
import { dataSchema, dataValue, dataVerdict, exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set("immediate", schema({ NFTA_IMMEDIATE_DREG, NFTA_IMMEDIATE_DATA }, { [NFTA_IMMEDIATE_DATA]: dataSchema }));

// "immediate" verdict: NFTA_IMMEDIATE_DREG be32 = NFT_REG_VERDICT,
//   NFTA_IMMEDIATE_DATA { NFTA_DATA_VERDICT { NFTA_VERDICT_CODE be32, NFTA_VERDICT_CHAIN str? } }
function verdict(code: number, chain?: string): Expr {
  return {
    name: "immediate",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
      dataVerdict(w, NFTA_IMMEDIATE_DATA, code, chain);
    },
  };
}

export const accept = (): Expr => verdict(NF_ACCEPT);
export const drop = (): Expr => verdict(NF_DROP);
export const ret = (): Expr => verdict(NFT_RETURN);
export const jump = (chain: string): Expr => verdict(NFT_JUMP, chain);
export const goto = (chain: string): Expr => verdict(NFT_GOTO, chain);

// "immediate" value: NFTA_IMMEDIATE_DREG be32, NFTA_IMMEDIATE_DATA { NFTA_DATA_VALUE bytes }
export function immediate(dreg: Register, data: ArrayLike<number>): Expr {
  return {
    name: "immediate",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_IMMEDIATE_DREG, dreg);
      dataValue(w, NFTA_IMMEDIATE_DATA, data);
    },
  };
}
