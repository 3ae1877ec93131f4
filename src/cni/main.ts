// tsnet as a CNI plugin: started with CNI_COMMAND in its environment (a runtime found it in its
// plugin directory under the name of a configuration's `type`), tsnet reads the request from the
// environment and stdin, does it, and answers as the specification says: a result (ADD) or a
// version list (VERSION) as JSON on stdout and exit 0; nothing for DEL, CHECK, GC and STATUS;
// on failure the error JSON {cniVersion, code, msg, details} on stdout (where libcni reads it),
// the same as one line on stderr, and exit 1. Each command's module is loaded only when it runs.
import { flushTrace, mark } from "../errors/trace.ts";
import { readFileSync, writeSync } from "../../ffi/fs.ts";
import { KernelError, TsnetError, UsageError } from "../errors/errors.ts";
import { parseConf, readEnv } from "./config.ts";
import {
  CURRENT_VERSION, CniError, ERR_FAILED, ERR_INTERNAL, ERR_INVALID_CONFIG, ERR_IO, SUPPORTED_VERSIONS, isSemver, toVersion,
} from "./spec.ts";

function write(fd: number, text: string): void {
  const b = Buffer.from(text);
  for (let off = 0; off < b.length; ) off += writeSync(fd, b, off);
}

function readStdin(): string {
  try {
    return readFileSync(0, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // No stdin at all (closed, or a terminal's EOF) is an empty configuration.
    if (code === "EBADF" || code === "EAGAIN") return "";
    throw new CniError(ERR_IO, `cannot read the network configuration from stdin: ${(e as Error).message}`);
  }
}

/** The version to answer in: the configuration's, when it can be read at all. */
function versionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (isSemver(v) && (SUPPORTED_VERSIONS as readonly string[]).includes(v)) return v;
  } catch {}
  return CURRENT_VERSION;
}

function asCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof UsageError) return new CniError(ERR_INVALID_CONFIG, e.message);
  if (e instanceof KernelError || e instanceof TsnetError) return new CniError(ERR_FAILED, e.message);
  const what = e instanceof Error ? `${e.name === "Error" ? "" : `${e.name}: `}${e.message}` : String(e);
  return new CniError(ERR_INTERNAL, `internal error: ${what}`, process.env.TSNET_DEBUG && e instanceof Error ? (e.stack ?? "") : "");
}

/** With TSNET_TRACE=1, the marks of a call on stderr (where libcni does not look). */
function done(): number {
  mark("done");
  flushTrace();
  return 0;
}

export async function cniMain(): Promise<number> {
  let stdin = "";
  let version = CURRENT_VERSION;
  const fail = (e: unknown): number => {
    const err = asCniError(e);
    const oneLine = (s: string) => s.replace(/\s*\n\s*/g, " ").trim();
    write(1, `${JSON.stringify({ cniVersion: version, code: err.code, msg: oneLine(err.message), ...(err.details && { details: oneLine(err.details) }) })}\n`);
    write(2, `tsnet: CNI ${process.env.CNI_COMMAND ?? ""}: ${oneLine(err.message)}${err.details ? ` (${oneLine(err.details)})` : ""}\n`);
    return 1;
  };
  process.on("uncaughtException", (e) => process.exit(fail(e)));
  process.on("unhandledRejection", (e) => process.exit(fail(e)));
  try {
    mark("cni");
    stdin = readStdin();
    version = versionOf(stdin);
    const env = readEnv(process.env);
    if (env.command === "VERSION") {
      write(1, `${JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS })}\n`);
      return 0;
    }
    const conf = parseConf(stdin, env);
    mark("conf");
    version = conf.cniVersion;
    switch (env.command) {
      case "ADD": {
        const { cniAdd } = await import("./add.ts");
        write(1, `${JSON.stringify(toVersion(await cniAdd(env, conf, stdin), version))}\n`);
        return done();
      }
      case "DEL":
        await (await import("./del.ts")).cniDel(env, conf, stdin);
        return done();
      case "CHECK":
        await (await import("./check.ts")).cniCheck(env, conf, stdin);
        return 0;
      case "GC":
        await (await import("./gc.ts")).cniGc(env, conf, stdin);
        return 0;
      case "STATUS":
        await (await import("./status.ts")).cniStatus(env, conf, stdin);
        return 0;
    }
  } catch (e) {
    return fail(e);
  }
}
