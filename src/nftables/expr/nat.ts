import type { NetlinkWriter } from "../../netlink/writer.ts";
import {
  NFTA_MASQ_FLAGS,
  NFTA_MASQ_REG_PROTO_MAX,
  NFTA_MASQ_REG_PROTO_MIN,
  NFTA_NAT_FAMILY,
  NFTA_NAT_FLAGS,
  NFTA_NAT_REG_ADDR_MAX,
  NFTA_NAT_REG_ADDR_MIN,
  NFTA_NAT_REG_PROTO_MAX,
  NFTA_NAT_REG_PROTO_MIN,
  NFTA_NAT_TYPE,
} from "../constants.ts";
import { schema } from "../schema.ts";
import { exprSchemas, type Expr, type Register } from "./expr.ts";

exprSchemas.set(
  "nat",
  schema({
    NFTA_NAT_TYPE,
    NFTA_NAT_FAMILY,
    NFTA_NAT_REG_ADDR_MIN,
    NFTA_NAT_REG_ADDR_MAX,
    NFTA_NAT_REG_PROTO_MIN,
    NFTA_NAT_REG_PROTO_MAX,
    NFTA_NAT_FLAGS,
  }),
);
exprSchemas.set("masq", schema({ NFTA_MASQ_FLAGS, NFTA_MASQ_REG_PROTO_MIN, NFTA_MASQ_REG_PROTO_MAX }));

export interface NatOptions {
  /** NFT_NAT_SNAT or NFT_NAT_DNAT. */
  type: number;
  /** NFPROTO_IPV4 / NFPROTO_IPV6: required in an inet table (`dnat ip to ...`). */
  family: number;
  /** Register holding the new address (4 bytes for IPv4). */
  addr?: Register;
  /** Register holding the new port (2 bytes, network order). */
  proto?: Register;
  /** NF_NAT_RANGE_* beyond what the registers imply. */
  flags?: number;
}

// "nat": NFTA_NAT_TYPE be32, NFTA_NAT_FAMILY be32, NFTA_NAT_REG_ADDR_MIN be32,
//   NFTA_NAT_REG_PROTO_MIN be32, NFTA_NAT_FLAGS be32 (only when given)
// The kernel sets NF_NAT_RANGE_MAP_IPS and NF_NAT_RANGE_PROTO_SPECIFIED itself when the
// address and port registers are present (and MAX defaults to MIN), as it does for nft.
export function nat(o: NatOptions): Expr {
  return {
    name: "nat",
    encode(w: NetlinkWriter) {
      w.attrBe32(NFTA_NAT_TYPE, o.type);
      w.attrBe32(NFTA_NAT_FAMILY, o.family);
      if (o.addr !== undefined) w.attrBe32(NFTA_NAT_REG_ADDR_MIN, o.addr);
      if (o.proto !== undefined) w.attrBe32(NFTA_NAT_REG_PROTO_MIN, o.proto);
      if (o.flags) w.attrBe32(NFTA_NAT_FLAGS, o.flags);
    },
  };
}

// "masq": NFTA_MASQ_FLAGS be32 (NF_NAT_RANGE_*, only when given) — empty data otherwise:
// the source becomes the address of the interface the packet leaves by.
export function masquerade(flags = 0): Expr {
  return {
    name: "masq",
    encode(w: NetlinkWriter) {
      if (flags) w.attrBe32(NFTA_MASQ_FLAGS, flags);
    },
  };
}
