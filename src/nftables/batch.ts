import { isErrno } from "../errors/errors.ts";
import { ERESTART } from "../errors/errno.ts";
import { NLM_F_ACK, NLM_F_REQUEST } from "../netlink/constants.ts";
import type { NetlinkSocket, Pending } from "../netlink/socket.ts";
import { NetlinkWriter } from "../netlink/writer.ts";
import { NFNL_BATCH_GENID, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_UNSPEC } from "./constants.ts";
import { beginNft, getGeneration, NFT_ATTRS, nftMsgType } from "./nfnl.ts";
import { attrPath, type AttrSchema } from "./schema.ts";

/**
 * How many times a batch refused for a stale generation is rebuilt and sent again. Each refusal
 * means another transaction committed in between, so every retry follows someone's progress:
 * a hundred processes publishing ports at once refuse each other a few times, never forever. The
 * bound only turns a kernel that refuses without end into an error.
 */
const MAX_ATTEMPTS = 1000;

/** One message of a batch, kept as a recipe so a retried batch is encoded afresh. */
export interface BatchMessage {
  /** NFT_MSG_* */
  msg: number;
  /** NFPROTO_* of the table. */
  family: number;
  /** NLM_F_CREATE, NLM_F_APPEND, NLM_F_EXCL ...; NLM_F_REQUEST | NLM_F_ACK are always added. */
  flags: number;
  /** For errors: "add rule", and the object, "tsnet/prerouting". */
  op: string;
  object: string;
  /** Names of the message's attributes, to say which one the kernel rejected. */
  schema: AttrSchema;
  /** Writes the attributes after the nfgenmsg header. */
  encode(w: NetlinkWriter): void;
}

/**
 * One nf_tables transaction: every message between NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END
 * is applied atomically or not at all.
 *
 *   | BATCH_BEGIN nfgenmsg{AF_UNSPEC, V0, res_id=htons(NFNL_SUBSYS_NFTABLES)} NFNL_BATCH_GENID be32 |
 *   | message (NLM_F_ACK) | message (NLM_F_ACK) | ... | BATCH_END nfgenmsg{same} |
 *
 * Each message is acked by sequence number. A stale generation (ERESTART) or a failed commit is
 * reported against the batch begin, which is otherwise never acked.
 */
export class Batch {
  readonly messages: BatchMessage[] = [];
  private readonly w = new NetlinkWriter(8192);

  add(m: BatchMessage): this {
    this.messages.push(m);
    return this;
  }

  get empty(): boolean {
    return this.messages.length === 0;
  }

  /**
   * Sends the batch and waits for every ack. With `generation` (read before the state the batch
   * was computed from), a concurrent change makes the kernel refuse the whole batch: ERESTART is
   * thrown to the caller, who must recompute. Without it, the generation is read here and the
   * batch is sent again on ERESTART (another process committed in between) until it commits.
   */
  commit(nl: NetlinkSocket, generation?: number): void {
    if (this.empty) return;
    if (generation !== undefined) return this.send(nl, generation);
    for (let attempt = 1; ; attempt++) {
      try {
        return this.send(nl, getGeneration(nl));
      } catch (e) {
        if (attempt >= MAX_ATTEMPTS || !isErrno(e, ERESTART)) throw e;
      }
    }
  }

  /**
   * Commits without a generation check, for batches that do not depend on state read before
   * (adding or deleting known elements): one round trip instead of two.
   */
  commitUnconditional(nl: NetlinkSocket): void {
    if (this.empty) return;
    this.send(nl, undefined);
  }

  private send(nl: NetlinkSocket, generation: number | undefined): void {
    const w = this.w.reset();
    const pending: Pending[] = [];
    const beginSeq = nl.nextSeq();
    const begin = beginNft(w, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, beginSeq, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
    if (generation !== undefined) w.attrBe32(NFNL_BATCH_GENID, generation);
    w.end(begin);
    const what = this.messages.map((m) => `${m.op} ${m.object}`);
    pending.push({
      seq: beginSeq,
      at: begin,
      op: "commit",
      object: `nf_tables transaction (${what.slice(0, 3).join(", ")}${what.length > 3 ? `, +${what.length - 3} more` : ""})`,
      errorOnly: true,
    });
    for (const m of this.messages) {
      const seq = nl.nextSeq();
      const at = beginNft(w, nftMsgType(m.msg), NLM_F_REQUEST | NLM_F_ACK | m.flags, seq, m.family);
      m.encode(w);
      w.end(at);
      pending.push({
        seq,
        at,
        op: m.op,
        object: m.object,
        attrName: (_type, offset) => {
          const len = new DataView(w.buf.buffer).getUint32(at, true);
          const attrs = new DataView(w.buf.buffer, at + NFT_ATTRS, len - NFT_ATTRS);
          return attrPath(attrs, offset - NFT_ATTRS, m.schema);
        },
      });
    }
    const end = beginNft(w, NFNL_MSG_BATCH_END, NLM_F_REQUEST, nl.nextSeq(), NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES);
    w.end(end);
    nl.transact(w, pending);
  }
}

/**
 * Reads state and builds a batch from it, then commits with the generation read before the
 * state: if anything changed the ruleset in between, the kernel refuses (ERESTART) and the
 * batch is rebuilt from fresh state, as often as that happens. Retrying once was not enough:
 * on a host's first use, dozens of processes make the table or add elements at the same moment,
 * and each commit of theirs makes every other's generation stale.
 */
export function transaction(nl: NetlinkSocket, build: (batch: Batch) => void): void {
  for (let attempt = 1; ; attempt++) {
    const generation = getGeneration(nl);
    const batch = new Batch();
    build(batch);
    try {
      batch.commit(nl, generation);
      return;
    } catch (e) {
      if (attempt >= MAX_ATTEMPTS || !isErrno(e, ERESTART)) throw e;
    }
  }
}
