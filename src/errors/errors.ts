import { errnoHint, errnoName } from "./errno.ts";

/**
 * The one error model. Everything tsnet throws on purpose is a TsnetError; the CLI prints its
 * message as one line on stderr and exits with its exitCode (125 unless said otherwise, Docker's
 * code for "the runtime itself failed").
 */
export class TsnetError extends Error {
  override name = "TsnetError";
  constructor(message: string, readonly exitCode = 125) {
    super(message);
  }
}

/**
 * tsnet declines its own state: a file or directory someone else could have written, or a record
 * holding what tsnet never writes (src/state/owned.ts). Always 125, in an object command too,
 * where other failures with one object exit 1: a forged state is no unknown container.
 */
export class RefusedStateError extends TsnetError {
  override name = "RefusedStateError";
  constructor(message: string) {
    super(message, 125);
  }
}

/** Bad command line or configuration: nothing was changed when this is thrown. */
export class UsageError extends TsnetError {
  override name = "UsageError";
}

/**
 * A kernel call failed: a libc call (errno), or a netlink request (the NLMSG_ERROR ack, with the
 * kernel's extended-ack text or the offset of the attribute it rejected).
 * Prints as: `<op> <object>: <ERRNO> (<strerror>): <ext-ack>`, or with the errno's general hint
 * (errnoHint) where the kernel gave no text: `<op> <object>: <ERRNO> (<strerror>): <what to do>`.
 */
export class KernelError extends TsnetError {
  override name = "KernelError";
  readonly errnoName: string;
  constructor(
    readonly op: string,
    readonly object: string,
    readonly errno: number,
    readonly detail?: string,
    readonly extAck?: string,
  ) {
    const en = errnoName(errno);
    const what = object ? `${op} ${object}` : op;
    const after = extAck ?? errnoHint(errno);
    super(`${what}: ${en}${detail ? ` (${detail})` : ""}${after ? `: ${after}` : ""}`);
    this.errnoName = en;
  }
}

/** Several cleanup steps failed; teardown goes on past each failure and reports them together. */
export class TeardownError extends TsnetError {
  override name = "TeardownError";
  constructor(readonly errors: Error[]) {
    super(`cleanup left ${errors.length} problem(s): ${errors.map((e) => e.message).join("; ")}`);
  }
}

/**
 * Collects the failures of cleanup steps so that every step runs even when an earlier one fails
 * ("clean up as much as possible"), then throws them together.
 */
export class Cleanup {
  private readonly errors: Error[] = [];

  step(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.errors.push(e instanceof Error ? e : new Error(String(e)));
    }
  }

  done(): void {
    if (this.errors.length === 1) throw this.errors[0];
    if (this.errors.length > 1) throw new TeardownError(this.errors);
  }
}

export function isErrno(e: unknown, ...errnos: number[]): boolean {
  return e instanceof KernelError && errnos.includes(e.errno);
}
