import { UsageError } from "../errors/errors.ts";
import { NFTNL_UDATA_COMMENT_MAXLEN } from "./constants.ts";
import { attrString } from "./schema.ts";

// Userdata is opaque to the kernel; nft reads it as TLVs: | type u8 | len u8 | value |.
// A comment is type 0 (NFTNL_UDATA_RULE_COMMENT / NFTNL_UDATA_SET_ELEM_COMMENT), value the
// string with its NUL, len counting the NUL.
export function commentUdata(comment: string, type = 0): Uint8Array {
  const s = new TextEncoder().encode(comment);
  if (s.includes(0)) throw new UsageError(`comment contains a NUL byte: ${JSON.stringify(comment)}`);
  if (s.length + 1 > NFTNL_UDATA_COMMENT_MAXLEN) {
    throw new UsageError(`comment longer than ${NFTNL_UDATA_COMMENT_MAXLEN - 1} bytes: ${JSON.stringify(comment)}`);
  }
  const out = new Uint8Array(2 + s.length + 1);
  out[0] = type;
  out[1] = s.length + 1;
  out.set(s, 2);
  return out;
}

/** The comment TLV of a userdata blob, if any (other TLVs are skipped). */
export function udataComment(u: DataView | undefined, type = 0): string | undefined {
  if (!u) return undefined;
  let at = 0;
  while (at + 2 <= u.byteLength) {
    const t = u.getUint8(at);
    const len = u.getUint8(at + 1);
    if (at + 2 + len > u.byteLength) return undefined;
    if (t === type) return attrString(new DataView(u.buffer, u.byteOffset + at + 2, len));
    at += 2 + len;
  }
  return undefined;
}
