import { NLM_F_CREATE } from "../netlink/constants.ts";
import type { Batch } from "./batch.ts";
import {
  NF_ACCEPT,
  NF_DROP,
  NF_INET_FORWARD,
  NF_INET_LOCAL_IN,
  NF_INET_LOCAL_OUT,
  NF_INET_POST_ROUTING,
  NF_INET_PRE_ROUTING,
  NFT_MSG_DELCHAIN,
  NFT_MSG_NEWCHAIN,
  NFTA_CHAIN_HOOK,
  NFTA_CHAIN_NAME,
  NFTA_CHAIN_POLICY,
  NFTA_CHAIN_TABLE,
  NFTA_CHAIN_TYPE,
  NFTA_HOOK_HOOKNUM,
  NFTA_HOOK_PRIORITY,
} from "./constants.ts";
import { nfproto, type Family } from "./nfnl.ts";
import { schema } from "./schema.ts";

export type Hook = "prerouting" | "input" | "forward" | "output" | "postrouting";
const HOOKS: Record<Hook, number> = {
  prerouting: NF_INET_PRE_ROUTING,
  input: NF_INET_LOCAL_IN,
  forward: NF_INET_FORWARD,
  output: NF_INET_LOCAL_OUT,
  postrouting: NF_INET_POST_ROUTING,
};

export interface BaseChain {
  type: "filter" | "nat" | "route";
  hook: Hook;
  /** NF_IP_PRI_* (raw -300, dstnat -100, filter 0, srcnat 100). */
  priority: number;
  policy?: "accept" | "drop";
}

export interface ChainSpec {
  name: string;
  /** A base chain is attached to a netfilter hook; a regular chain is only reached by jump/goto. */
  base?: BaseChain;
}

const chainSchema = schema(
  { NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK, NFTA_CHAIN_POLICY, NFTA_CHAIN_TYPE },
  { [NFTA_CHAIN_HOOK]: schema({ NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY }) },
);

// NFT_MSG_NEWCHAIN: nfgenmsg{family}, NFTA_CHAIN_TABLE str, NFTA_CHAIN_NAME str, and for a base
//   chain NFTA_CHAIN_TYPE str ("nat"), NFTA_CHAIN_POLICY be32 (NF_ACCEPT),
//   NFTA_CHAIN_HOOK { NFTA_HOOK_HOOKNUM be32, NFTA_HOOK_PRIORITY be32 (signed: -100 = ffffff9c) }
// Without NLM_F_EXCL an existing chain is kept (a changed hook or type is refused).
export function addChain(b: Batch, family: Family, table: string, c: ChainSpec): void {
  b.add({
    msg: NFT_MSG_NEWCHAIN,
    family: nfproto(family),
    flags: NLM_F_CREATE,
    op: "add chain",
    object: `${table}/${c.name}`,
    schema: chainSchema,
    encode: (w) => {
      w.attrStr(NFTA_CHAIN_TABLE, table);
      w.attrStr(NFTA_CHAIN_NAME, c.name);
      const base = c.base;
      if (!base) return;
      w.attrStr(NFTA_CHAIN_TYPE, base.type);
      w.attrBe32(NFTA_CHAIN_POLICY, base.policy === "drop" ? NF_DROP : NF_ACCEPT);
      w.nest(NFTA_CHAIN_HOOK, () => {
        w.attrBe32(NFTA_HOOK_HOOKNUM, HOOKS[base.hook]);
        w.attrBe32(NFTA_HOOK_PRIORITY, base.priority);
      });
    },
  });
}

// NFT_MSG_DELCHAIN: NFTA_CHAIN_TABLE str, NFTA_CHAIN_NAME str (the chain must hold no rules).
export function deleteChain(b: Batch, family: Family, table: string, name: string): void {
  b.add({
    msg: NFT_MSG_DELCHAIN,
    family: nfproto(family),
    flags: 0,
    op: "delete chain",
    object: `${table}/${name}`,
    schema: chainSchema,
    encode: (w) => {
      w.attrStr(NFTA_CHAIN_TABLE, table);
      w.attrStr(NFTA_CHAIN_NAME, name);
    },
  });
}
