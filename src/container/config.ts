// What `tsnet run` sets beyond the network: the command's environment (-e, --env-file), working
// directory (-w), user (-u) and labels (--label). All of it is read and checked where the command
// line is, before anything is made, so a mistake is one line and exit 125.
//
// The environment is the caller's, as nsenter, unshare and `ip netns exec` pass it: a container
// of tsnet's runs a host program on the host's files, where the caller's PATH, HOME, locale and
// proxies still mean what they meant. -e and --env-file add to it or override it, in Docker's
// syntax; -u also sets HOME, USER and LOGNAME to the user's, as su and sudo do.
import { readFileSync, statSync } from "../../ffi/fs.ts";
import { TsnetError, UsageError } from "../errors/errors.ts";

/** Docker's env-file: NAME=VALUE per line, taken as is; a bare NAME takes the caller's value (left out if unset); # comments. */
export function parseEnvFile(path: string, caller: Record<string, string | undefined>): string[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const why = code === "ENOENT" ? "no such file (ENOENT): give the path of a file of NAME=VALUE lines"
      : code === "EISDIR" ? "it is a directory (EISDIR): give the path of a file of NAME=VALUE lines"
      : code === "EACCES" ? "permission denied (EACCES): make it readable by root"
      : code;
    throw new UsageError(`cannot read --env-file ${path}: ${why}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`invalid --env-file ${path}: it is not UTF-8 text`);
  }
  const out: string[] = [];
  text.replace(/^\uFEFF/, "").split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").replace(/^\s+/, "");
    if (line === "" || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    const name = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    const where = `invalid --env-file ${path}, line ${i + 1}`;
    if (name === "") throw new UsageError(`${where}: no variable name before "="`);
    if (/\s/.test(name)) throw new UsageError(`${where}: variable name "${name}" contains whitespace`);
    if (eq >= 0) out.push(line);
    else if (caller[name] !== undefined) out.push(`${name}=${caller[name]}`);
  });
  return out;
}

/** -e NAME=VALUE, or a bare -e NAME taking the caller's value (left out if the caller has none). */
export function parseEnvOption(spec: string, caller: Record<string, string | undefined>): string | undefined {
  const eq = spec.indexOf("=");
  const name = eq < 0 ? spec : spec.slice(0, eq);
  if (name === "") throw new UsageError(`invalid -e "${spec}": give NAME=VALUE, or NAME to pass the caller's value, e.g. -e PORT=8080`);
  if (eq >= 0) return spec;
  return caller[name] === undefined ? undefined : `${name}=${caller[name]}`;
}

/** --label KEY=VALUE (or KEY: an empty value), as Docker reads it. */
export function parseLabels(specs: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf("=");
    const key = eq < 0 ? spec : spec.slice(0, eq);
    if (key === "" || /\s/.test(key)) throw new UsageError(`invalid --label "${spec}": give KEY=VALUE with a key of no whitespace, e.g. --label tier=web`);
    labels[key] = eq < 0 ? "" : spec.slice(eq + 1);
  }
  // Sorted by key, as Go prints a map (inspect's JSON, {{json .Config.Labels}}).
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** An absolute path from one relative to cwd, with "." and ".." resolved by name (as node's path.resolve). */
function absolute(dir: string, cwd: string): string {
  const parts: string[] = [];
  for (const p of `${dir.startsWith("/") ? "" : cwd}/${dir}`.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return `/${parts.join("/")}`;
}

/** -w: an existing directory, absolute or relative to the caller's. */
export function resolveWorkdir(dir: string, cwd: string): string {
  const path = absolute(dir, cwd);
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {}
  if (!isDir) throw new UsageError(`invalid -w "${dir}": ${path} is not a directory (tsnet runs host commands and does not create it)`);
  return path;
}

export interface User {
  uid: number;
  gid: number;
  /** From /etc/passwd, when the user has an entry. */
  name?: string;
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function readTable(path: string): string[][] {
  try {
    return readFileSync(path, "utf8").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
  } catch (e) {
    throw new TsnetError(`cannot read ${path} to resolve -u: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

const ID = /^\d{1,10}$/;
const MAX_ID = 2 ** 32 - 2; // (uid_t)-1 means "unchanged" to the kernel

function number(text: string, what: string, spec: string): number {
  const n = Number(text);
  if (n > MAX_ID) throw new UsageError(`invalid -u "${spec}": ${what} ${text} is out of range`);
  return n;
}

/**
 * -u USER[:GROUP]: a name from /etc/passwd or a uid, a group name from /etc/group or a gid. The
 * group defaults to the user's own (/etc/passwd); a uid with no entry there must name one, since
 * running with group 0 (root's) is rarely what anyone means on a host.
 */
export function resolveUser(spec: string, passwd = "/etc/passwd", group = "/etc/group"): User {
  const [userText = "", groupText, ...more] = spec.split(":");
  if (userText === "" || groupText === "" || more.length) throw new UsageError(`invalid -u "${spec}": give USER[:GROUP], a name or a number each, e.g. -u www-data or -u 1000:1000`);
  const users: PasswdEntry[] = readTable(passwd).map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] || "/" }));
  let entry: PasswdEntry | undefined;
  let uid: number;
  if (ID.test(userText)) {
    uid = number(userText, "uid", spec);
    entry = users.find((u) => u.uid === uid);
  } else {
    entry = users.find((u) => u.name === userText);
    if (!entry) throw new UsageError(`invalid -u "${spec}": no user "${userText}" in ${passwd}`);
    uid = entry.uid;
  }
  let gid: number;
  if (groupText === undefined) {
    if (!entry) throw new UsageError(`invalid -u "${spec}": uid ${uid} has no entry in ${passwd}, so its group is unknown: give one, e.g. -u ${uid}:${uid}`);
    gid = entry.gid;
  } else if (ID.test(groupText)) {
    gid = number(groupText, "gid", spec);
  } else {
    const g = readTable(group).find((f) => f[0] === groupText);
    if (!g) throw new UsageError(`invalid -u "${spec}": no group "${groupText}" in ${group}`);
    gid = Number(g[2]);
  }
  return { uid, gid, name: entry?.name, home: entry?.home ?? "/" };
}

/** What --env-file (each file in turn) and then -e set, as NAME=VALUE entries in order. */
export function explicitEnv(files: readonly string[], specs: readonly string[], caller: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  for (const file of files) out.push(...parseEnvFile(file, caller));
  for (const e of specs) {
    const entry = parseEnvOption(e, caller);
    if (entry !== undefined) out.push(entry);
  }
  return out;
}

/**
 * The command's environment: the caller's; for -u, HOME, USER and LOGNAME of that user; then
 * what -e and --env-file set (`explicit`, in order, the last one winning). Undefined when that is
 * the caller's environment unchanged.
 */
export function commandEnv(caller: Record<string, string | undefined>, explicit: string[], user?: User): Record<string, string | undefined> | undefined {
  if (!explicit.length && !user) return undefined;
  const env = { ...caller };
  if (user) {
    env.HOME = user.home;
    if (user.name !== undefined) {
      env.USER = user.name;
      env.LOGNAME = user.name;
    } else {
      delete env.USER;
      delete env.LOGNAME;
    }
  }
  for (const e of explicit) {
    const eq = e.indexOf("=");
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return env;
}
