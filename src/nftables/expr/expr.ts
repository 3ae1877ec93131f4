import type { NetlinkWriter } from "../../netlink/writer.ts";
import type { AttrSchema } from "../schema.ts";
import {
  NFT_REG_1,
  NFT_REG32_00,
  NFT_REG32_15,
  NFTA_DATA_VALUE,
  NFTA_DATA_VERDICT,
  NFTA_VERDICT_CHAIN,
  NFTA_VERDICT_CODE,
} from "../constants.ts";
import { schema } from "../schema.ts";

/**
 * One nf_tables expression of a rule. encode() writes the attributes that go inside
 * NFTA_EXPR_DATA; the rule encoder wraps them:
 *   NFTA_LIST_ELEM { NFTA_EXPR_NAME "<name>", NFTA_EXPR_DATA { ...encode()... } }
 * Every u32 inside is big endian (registers, keys, offsets, flags).
 */
export interface Expr {
  readonly name: string;
  encode(w: NetlinkWriter): void;
}

/** Attribute names of each expression's NFTA_EXPR_DATA, by expression name, for error paths. */
export const exprSchemas = new Map<string, AttrSchema>();

/**
 * A register as the kernel numbers it. NFT_REG_1..4 are 16 bytes each and overlap the 32-bit
 * registers NFT_REG32_00..15 (NFT_REG_1 = REG32_00..03). The kernel dumps a 32-bit register
 * that starts a 16-byte one under the 16-byte number, so we always write that form: a rule we
 * wrote then compares equal, byte for byte, with what the kernel gives back.
 */
export type Register = number;

/** The n-th 32-bit register (0..15), in canonical form. */
export function reg32(n: number): Register {
  if (!Number.isInteger(n) || n < 0 || n > NFT_REG32_15 - NFT_REG32_00) throw new RangeError(`no 32-bit register ${n}`);
  return n % 4 === 0 ? NFT_REG_1 + n / 4 : NFT_REG32_00 + n;
}

/** Data attribute (NFTA_CMP_DATA, NFTA_SET_ELEM_KEY, ...): | nest type { NFTA_DATA_VALUE bytes } | */
export function dataValue(w: NetlinkWriter, type: number, bytes: ArrayLike<number>): void {
  w.nest(type, () => w.attrBytes(NFTA_DATA_VALUE, bytes));
}

// | nest type { NFTA_DATA_VERDICT { NFTA_VERDICT_CODE be32 (signed), NFTA_VERDICT_CHAIN str? } } |
export function dataVerdict(w: NetlinkWriter, type: number, code: number, chain?: string): void {
  w.nest(type, () =>
    w.nest(NFTA_DATA_VERDICT, () => {
      w.attrBe32(NFTA_VERDICT_CODE, code);
      if (chain !== undefined) w.attrStr(NFTA_VERDICT_CHAIN, chain);
    }),
  );
}

/** Schema of an NFTA_DATA nest (cmp data, immediate data, element key and data). */
export const dataSchema: AttrSchema = schema(
  { NFTA_DATA_VALUE, NFTA_DATA_VERDICT },
  { [NFTA_DATA_VERDICT]: schema({ NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN }) },
);

/** Each field of a concatenation occupies whole 32-bit registers (and whole 4-byte words of a key). */
export function padded(len: number): number {
  return (len + 3) & ~3;
}
