// The supervisor's socket speaks one JSON line each way per connection: the request, then the
// reply. Requests: run a container (its options, whole environment and working directory); wait
// for one of its containers to end (answered then); wake one waiting to restart (a stop or a
// restart that cannot wait for the delay); adopt the containers of managers that died; hand its
// containers over to a tsnet of another build (it exits, leaving them running, for the next
// supervisor to adopt). A run request is as large
// as the command line and environment the kernel accepted for `tsnet run -d` itself: up to
// ARG_MAX (a quarter of the stack limit, 2 MiB by default, 6 MiB at most), more once JSON has
// escaped it. A unix socket takes about 200 KiB at a time, so both sides write in pieces,
// resuming on drain, and read until the newline (JSON escapes every newline inside a string,
// so the first one ends the message).
import type { CreateOptions } from "../container/lifecycle.ts";
import type { RunConfig } from "../state/containers.ts";
import { parseIp } from "../ip/addr.ts";

export interface RunRequest {
  op: "run";
  opts: CreateOptions;
  /** The command's whole environment, and its working directory. */
  env: Record<string, string | undefined>;
  cwd: string;
  /** -u, resolved: the user and group the command runs as. */
  uid?: number;
  gid?: number;
  /** What the record keeps of the rest (labels, restart policy...). */
  config?: RunConfig;
  /**
   * The id the client chose for a new container: a request sent again (its supervisor died
   * before answering) is answered for the container made under it, not made twice.
   */
  newId?: string;
}

/** Answered when the container's current run has ended: its exit status. */
export interface WaitRequest {
  op: "wait";
  id: string;
}

/** A container waiting to restart: act on its record now (it was stopped, or restarted). */
export interface WakeRequest {
  op: "wake";
  id: string;
}

/** Containers whose manager died and whose processes live: adopt them now. */
export interface AdoptRequest {
  op: "adopt";
}

/**
 * From a tsnet of another build (exe: its identity, src/cli/self.ts): exit once this is
 * answered, leaving every container running, so that a supervisor of that build adopts them.
 */
export interface HandoverRequest {
  op: "handover";
  exe: string;
}

export type Request = RunRequest | WaitRequest | WakeRequest | AdoptRequest | HandoverRequest;

/** What a supervisor writes to SUPERVISOR_BUILD once it listens: who it is, and which executable it runs. */
export interface SupervisorBuild {
  pid: number;
  start: number;
  exe: string;
}

/** warning: lines for the user (no cgroup v2, no subreaper), "\n" between them, printed by the client. */
export type RunReply = { ok: true; id: string; warning?: string } | { ok: false; message: string; exitCode: number };

/** wait: the exit status; managed false: the supervisor does not manage it (it has ended). */
export type WaitReply = { ok: true; managed: true; exitCode: number } | { ok: true; managed: false };

export type Reply = RunReply | WaitReply | { ok: true };

/**
 * The most a request may take. The kernel's own ceiling is 6 MiB of arguments and environment
 * (3/4 of _STK_LIM, whatever the stack limit), which JSON may grow to six times in the worst case
 * (control characters as \u00XX): a runaway client cannot make the supervisor hold more.
 */
export const MAX_MESSAGE = 40 * 1024 * 1024;

/** The part of a Bun socket a message is written to. */
interface Writable {
  write(data: Uint8Array): number;
}

/**
 * A message being written: `pump()` writes as much as the socket takes now; call it again from
 * the socket's drain handler until it returns true (all written). false with `closed` set: the
 * peer went away.
 */
export class Outgoing {
  private sent = 0;
  closed = false;
  private readonly bytes: Uint8Array;

  constructor(message: unknown) {
    // An array of its own: a small Buffer would be a view into Buffer's shared pool.
    this.bytes = new TextEncoder().encode(`${JSON.stringify(message)}\n`);
  }

  pump(s: Writable): boolean {
    while (this.sent < this.bytes.length) {
      const n = s.write(this.bytes.subarray(this.sent));
      if (n < 0) {
        this.closed = true;
        return false;
      }
      if (n === 0) return false; // full: drain() resumes
      this.sent += n;
    }
    return true;
  }
}

/**
 * A message being read: chunks are kept as bytes (a character may be split between two of
 * them) and decoded once the newline has come.
 */
export class Incoming {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  /** Adds a chunk; the message's text once it is complete, else undefined. */
  add(chunk: Uint8Array): string | undefined {
    const nl = chunk.indexOf(10);
    // A copy: the socket may reuse the chunk's memory for the next read.
    this.chunks.push(Buffer.from(nl < 0 ? chunk : chunk.subarray(0, nl)));
    this.size += nl < 0 ? chunk.length : nl;
    if (this.size > MAX_MESSAGE) throw new Error(`message larger than ${MAX_MESSAGE} bytes`);
    return nl < 0 ? undefined : Buffer.concat(this.chunks, this.size).toString("utf8");
  }

  /** What came before the peer closed without a newline (a partial message: "" if nothing). */
  get received(): number {
    return this.size;
  }
}

/** A request that is not one tsnet's client sends: refused before anything acts on it. */
export class BadRequest extends Error {}

const ID = /^[0-9a-f]{64}$/;
const MODES = new Set(["none", "host", "bridge", "container"]);
const POLICIES = new Set(["no", "on-failure", "always", "unless-stopped"]);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");
const isPort = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535;

function need(ok: boolean, field: string): void {
  if (!ok) throw new BadRequest(`field ${field} is not what tsnet's client sends`);
}

/**
 * Reads a request line, checking every field that decides what the supervisor makes, kills or
 * records against what the client writes: a malformed request (anything can connect as root)
 * is answered with an error and changes nothing, where it could otherwise be written into a
 * record that every later command refuses.
 */
export function parseRequest(text: string): Request {
  let r: unknown;
  try {
    r = JSON.parse(text);
  } catch {
    throw new BadRequest("it is not JSON");
  }
  need(isObject(r), "(the request)");
  const q = r as Json;
  if (q.op === "wait" || q.op === "wake") {
    need(typeof q.id === "string" && ID.test(q.id), "id");
    return q as unknown as Request;
  }
  if (q.op === "adopt") return q as unknown as Request;
  if (q.op === "handover") {
    need(typeof q.exe === "string", "exe");
    return q as unknown as Request;
  }
  need(q.op === "run", "op");
  const o = q.opts;
  need(isObject(o), "opts");
  const opts = o as Json;
  need(typeof opts.mode === "string" && MODES.has(opts.mode), "opts.mode");
  need(isStrings(opts.command) && (opts.command as string[]).length > 0, "opts.command");
  need(typeof opts.rm === "boolean", "opts.rm");
  for (const f of ["network", "join", "ip", "mac", "hostname", "name", "id", "created"]) need(opts[f] === undefined || typeof opts[f] === "string", `opts.${f}`);
  // Checked as the record checks it (a request the record would refuse must not be written).
  need(opts.expose === undefined || (isStrings(opts.expose) && (opts.expose as string[]).every((x) => /^\d{1,5}\/(tcp|udp)$/.test(x))), "opts.expose");
  for (const f of ["aliases", "dns", "dnsSearch"]) need(opts[f] === undefined || isStrings(opts[f]), `opts.${f}`);
  need(opts.detached === undefined || typeof opts.detached === "boolean", "opts.detached");
  need(opts.id === undefined || ID.test(opts.id as string), "opts.id");
  need(
    opts.extraHosts === undefined || (Array.isArray(opts.extraHosts) && opts.extraHosts.every((h) => isObject(h) && typeof h.name === "string" && typeof h.address === "string")),
    "opts.extraHosts",
  );
  need(
    Array.isArray(opts.publish) &&
      opts.publish.every((p) => isObject(p) && (p.proto === "tcp" || p.proto === "udp") && (p.hostIp === undefined || (typeof p.hostIp === "string" && parseIp(p.hostIp) !== undefined)) && isPort(p.hostPort) && isPort(p.containerPort)),
    "opts.publish",
  );
  need(isObject(q.env) && Object.values(q.env).every((v) => v === undefined || typeof v === "string"), "env");
  need(typeof q.cwd === "string", "cwd");
  need(q.newId === undefined || (typeof q.newId === "string" && ID.test(q.newId)), "newId");
  for (const f of ["uid", "gid"]) need(q[f] === undefined || (Number.isInteger(q[f]) && (q[f] as number) >= 0), f);
  if (q.config !== undefined) {
    need(isObject(q.config), "config");
    const c = q.config as Json;
    need(c.labels === undefined || (isObject(c.labels) && Object.values(c.labels).every((v) => typeof v === "string")), "config.labels");
    need(c.env === undefined || isStrings(c.env), "config.env");
    for (const f of ["workdir", "user"]) need(c[f] === undefined || typeof c[f] === "string", `config.${f}`);
    for (const f of ["tty", "interactive"]) need(c[f] === undefined || typeof c[f] === "boolean", `config.${f}`);
    need(
      c.restart === undefined || (isObject(c.restart) && POLICIES.has(c.restart.name as string) && Number.isInteger(c.restart.max)),
      "config.restart",
    );
  }
  return q as unknown as Request;
}
