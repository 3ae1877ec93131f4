// Every expression module registers its attribute names (for error paths) when imported.
export { bitwise } from "./bitwise.ts";
export { cmp } from "./cmp.ts";
export { counter } from "./counter.ts";
export { ctLoad } from "./ct.ts";
export { dataValue, dataVerdict, padded, reg32, type Expr, type Register } from "./expr.ts";
export { fib } from "./fib.ts";
export { accept, drop, goto, immediate, jump, ret } from "./immediate.ts";
export { lookup, type LookupOptions } from "./lookup.ts";
export { concat, ctStatusAny, fibDaddrType, fields, ifnameBytes, iifname, ipPrefix, l4proto, nfproto, oifname, type Field } from "./match.ts";
export { metaLoad } from "./meta.ts";
export { masquerade, nat, type NatOptions } from "./nat.ts";
export { payloadLoad } from "./payload.ts";
