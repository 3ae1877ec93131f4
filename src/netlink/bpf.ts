// Classic BPF, the socket filter language (linux/filter.h, linux/bpf_common.h), under the
// kernel's names: enough for a filter that lets the kernel drop notifications a socket's reader
// would only look at and throw away, so the reader is not even woken for them, and for the
// loopback guard on each container veth's ingress (src/network/guard.ts).
//
// One instruction (struct sock_filter), host order: | code u16 | jt u8 | jf u8 | k u32 |
// jt/jf are forward offsets from the next instruction, at most 255. Loads of packet data are
// big-endian (`ld [x + k]` is ntohl of the 4 bytes there); a load past the end of the packet
// ends the program with 0 (for a socket filter: drop it). An absolute load at SKF_AD_OFF + n
// reads the packet's metadata instead (SKF_AD_PROTOCOL: skb->protocol, host order).
export const BPF_LD = 0x00, BPF_LDX = 0x01, BPF_ST = 0x02, BPF_ALU = 0x04, BPF_JMP = 0x05, BPF_RET = 0x06;
export const BPF_W = 0x00, BPF_H = 0x08, BPF_B = 0x10;
export const BPF_IMM = 0x00, BPF_ABS = 0x20, BPF_IND = 0x40, BPF_MEM = 0x60, BPF_LEN = 0x80;
export const BPF_ADD = 0x00, BPF_OR = 0x40, BPF_AND = 0x50, BPF_LSH = 0x60;
export const BPF_JA = 0x00, BPF_JEQ = 0x10, BPF_JGT = 0x20, BPF_JGE = 0x30;
export const BPF_K = 0x00, BPF_X = 0x08;
export const SKF_AD_OFF = -0x1000, SKF_AD_PROTOCOL = 0;
/** BPF_MAXINSNS */
export const BPF_MAXINSNS = 4096;

/** A jump target: a label, or undefined for the next instruction. */
type Target = string | undefined;

interface Insn {
  code: number;
  k: number;
  jt?: Target;
  jf?: Target;
}

/** Builds a program with named forward jump targets, resolved by encode(). */
export class BpfProgram {
  private readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();

  /** The next instruction is `name`. */
  label(name: string): this {
    if (this.labels.has(name)) throw new RangeError(`BPF label ${name} defined twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  op(code: number, k = 0): this {
    this.insns.push({ code, k });
    return this;
  }

  /** A conditional jump: to jt when the comparison holds, else to jf. */
  jump(code: number, k: number, jt: Target, jf: Target): this {
    this.insns.push({ code: BPF_JMP | code, k, jt, jf });
    return this;
  }

  /** An unconditional jump. */
  goto(target: string): this {
    this.insns.push({ code: BPF_JMP | BPF_JA, k: 0, jt: target });
    return this;
  }

  ret(k: number): this {
    return this.op(BPF_RET | BPF_K, k);
  }

  get length(): number {
    return this.insns.length;
  }

  encode(): Uint8Array {
    if (this.insns.length > BPF_MAXINSNS) throw new RangeError(`BPF program of ${this.insns.length} instructions exceeds ${BPF_MAXINSNS}`);
    const out = new Uint8Array(this.insns.length * 8);
    const v = new DataView(out.buffer);
    const offset = (i: number, t: Target, wide = false): number => {
      if (t === undefined) return 0;
      const at = this.labels.get(t);
      if (at === undefined) throw new RangeError(`BPF label ${t} is not defined`);
      const off = at - (i + 1);
      if (off < 0 || (!wide && off > 255)) throw new RangeError(`BPF jump to ${t} is ${off} instructions away`);
      return off;
    };
    this.insns.forEach((x, i) => {
      const ja = x.code === (BPF_JMP | BPF_JA);
      v.setUint16(i * 8, x.code, true);
      v.setUint8(i * 8 + 2, ja ? 0 : offset(i, x.jt));
      v.setUint8(i * 8 + 3, ja ? 0 : offset(i, x.jf));
      v.setUint32(i * 8 + 4, ja ? offset(i, x.jt, true) : x.k >>> 0, true);
    });
    return out;
  }
}
