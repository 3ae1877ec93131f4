// The nf_tables layer: batches of typed messages over NETLINK_NETFILTER, no `nft` involved.
export { Batch, transaction, type BatchMessage } from "./batch.ts";
export { addChain, deleteChain, type BaseChain, type ChainSpec, type Hook } from "./chain.ts";
export { batchChanges, commentTag, createTable, deleteTaggedElements, ensureTable, planTable, readTable, type EnsureOptions, type EnsureResult, type ElementAdd, type NftChange, type TableSpec, type TableState } from "./ensure.ts";
export { getGeneration, openNftSocket, type Family } from "./nfnl.ts";
export { addRule, deleteRule, listRules, ruleMatches, type RuleInfo, type RuleSpec } from "./rule.ts";
export { addElements, addSet, deleteElements, deleteSet, elementsOf, listElements, setExists, type SetElement, type SetSpec } from "./set.ts";
export { nftEvent, nftFilterProgram, watchNftables, type NftEvent, type NftWatch, type NftWatchFilter, type NftWatchHandlers } from "./monitor.ts";
export { addTable, deleteTable, tableExists } from "./table.ts";
export { concatType, concatValue, inet_proto, inet_service, ipv4_addr, mark, value, type FieldType } from "./types.ts";
export * as expr from "./expr/index.ts";
