// A plan as the bash script a person would type for it (`tsnet explain`): ip, tc, sysctl and nft
// commands, each step under a `# ` line saying what it is for (the op's `why`). Rendering is pure:
// it reads nothing and changes nothing. Where tsnet does a thing no command does the same way,
// the closest command is written and its comment says what differs (test/explain.test.ts runs
// the script on a fresh host and compares what it built with what tsnet builds).
import { formatIp, formatPrefix } from "../ip/addr.ts";
import { changesText, elementDeletesText, elementsText, tableText } from "../nftables/text.ts";
import type { TableSpec } from "../nftables/ensure.ts";
import type { BpfFilter } from "../rtnetlink/tc.ts";
import type { NetnsRef, Op } from "./ops.ts";

export interface RenderOptions {
  /** The loopback guard's filter (src/network/guard.ts), for `guard` steps. */
  guard?: BpfFilter;
  /** Tables whose sets nft-elements steps name (the layouts their elements are written in). */
  tables?: readonly TableSpec[];
  /** Lines of `# ` comment put under the shebang (what was explained). */
  header?: readonly string[];
}

/** A control character (a CNI interface name may hold one: the kernel refuses only '/', ':' and white space). */
const CONTROL = /[\x00-\x1f\x7f]/g;

/**
 * A word for bash: left bare when it is plainly safe, single-quoted otherwise; with a control
 * character, ANSI-C quoted ($'...', each one as \xHH), so the script a terminal shows is the one
 * bash runs (an escape sequence inside plain quotes could move the cursor and hide lines).
 */
export function shellWord(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  if (!s.match(CONTROL)) return `'${s.replaceAll("'", `'\\''`)}'`;
  return `$'${s.replace(/[\\']/g, "\\$&").replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}'`;
}

/** A `# ` line: whatever it says (a name from a configuration, say) cannot end it or reach the terminal raw. */
function comment(text: string): string {
  return `# ${text.replace(CONTROL, "?")}`;
}

const words = (argv: readonly string[]) => argv.map(shellWord).join(" ");

/** A namespace given by path (a CNI runtime's) rather than by name under /run/netns. */
function isPath(ns: NetnsRef): boolean {
  return ns.includes("/");
}

/** `ip` in a namespace: `ip -n NAME`, or through nsenter for a path. */
function ip(ns: NetnsRef | undefined, args: readonly string[], family?: 4 | 6): string {
  const fam = family === 6 ? ["-6"] : [];
  if (ns === undefined) return words(["ip", ...fam, ...args]);
  if (isPath(ns)) return words(["nsenter", `--net=${ns}`, "ip", ...fam, ...args]);
  return words(["ip", "-n", ns, ...fam, ...args]);
}

/** Any other program run inside a namespace (`ip netns exec NAME ...`). */
function exec(ns: NetnsRef | undefined, argv: readonly string[]): string {
  if (ns === undefined) return words(argv);
  if (isPath(ns)) return words(["nsenter", `--net=${ns}`, ...argv]);
  return words(["ip", "netns", "exec", ns, ...argv]);
}

/** `tc -n NAME ...` (tc knows -n as ip does). */
function tc(ns: NetnsRef | undefined, args: readonly string[]): string {
  if (ns === undefined) return words(["tc", ...args]);
  if (isPath(ns)) return words(["nsenter", `--net=${ns}`, "tc", ...args]);
  return words(["tc", "-n", ns, ...args]);
}

/** nft reading one transaction from a here-document (quoted: the shell expands nothing in it). */
function nft(ns: NetnsRef | undefined, text: string): string {
  if (text.includes("\nEOF\n") || text.startsWith("EOF\n")) throw new RangeError("nft text holds the here-document's end marker");
  return `${exec(ns, ["nft", "-f", "-"])} <<'EOF'\n${text}EOF`;
}

/** The classic BPF program in tc's `bytecode` form: "COUNT,code jt jf k,..." (struct sock_filter, host order). */
export function tcBytecode(ops: Uint8Array): string {
  if (ops.length % 8 !== 0) throw new RangeError(`a classic BPF program is 8 bytes an instruction, not ${ops.length}`);
  const dv = new DataView(ops.buffer, ops.byteOffset, ops.byteLength);
  const insns: string[] = [];
  for (let at = 0; at < ops.length; at += 8) {
    insns.push(`${dv.getUint16(at, true)} ${dv.getUint8(at + 2)} ${dv.getUint8(at + 3)} ${dv.getUint32(at + 4, true)}`);
  }
  return `${insns.length},${insns.join(",")}`;
}

/** Commands for one step (without its comment); `note` gets what the commands cannot say. */
function commands(op: Op, o: RenderOptions): { lines: string[]; note?: string } {
  switch (op.op) {
    case "netns-add":
      return {
        lines: [words(["ip", "netns", "add", op.name])],
        note: "tsnet keeps the namespace by a symbolic link to its manager's open fd; ip netns add bind-mounts it",
      };
    case "netns-del":
      return { lines: [words(["ip", "netns", "del", op.name])] };
    case "sysctl": {
      // -e: a file that does not exist is nothing to set (no IPv6 in the kernel, say).
      const flags = op.ifMissing === undefined ? ["-q", "-e", "-w"] : ["-q", "-w"];
      return { lines: [exec(op.netns, ["sysctl", ...flags, `${op.key}=${op.value}`])] };
    }
    case "link-add": {
      const args = ["link", "add", op.name];
      if (op.mac) args.push("address", op.mac);
      if (op.mtu !== undefined) args.push("mtu", String(op.mtu));
      if (op.master) args.push("master", op.master);
      if (op.up) args.push("up");
      args.push("type", op.kind);
      if (op.kind === "veth" && op.peer) {
        args.push("peer", "name", op.peer.name);
        if (op.peer.netns !== undefined) args.push("netns", op.peer.netns);
        if (op.peer.mac) args.push("address", op.peer.mac);
        if (op.peer.mtu !== undefined) args.push("mtu", String(op.peer.mtu));
        if (op.peer.index !== undefined) args.push("index", String(op.peer.index));
      }
      return { lines: [ip(op.netns, args)] };
    }
    case "link-set": {
      const lines: string[] = [];
      const args = ["link", "set", "dev", op.dev];
      if (op.moveTo !== undefined) args.push("netns", op.moveTo);
      if (op.mtu !== undefined) args.push("mtu", String(op.mtu));
      if (op.mac) args.push("address", op.mac);
      if (op.master) args.push("master", op.master);
      if (op.up !== undefined) args.push(op.up ? "up" : "down");
      if (args.length > 4) lines.push(ip(op.netns, args));
      if (op.hairpin !== undefined) lines.push(ip(op.netns, ["link", "set", "dev", op.dev, "type", "bridge_slave", "hairpin", op.hairpin ? "on" : "off"]));
      return { lines };
    }
    case "link-del": {
      const line = ip(op.netns, ["link", "del", "dev", op.dev]);
      return { lines: [op.ifExists ? `${line} 2>/dev/null || true` : line] };
    }
    case "addr-add": {
      const args = ["addr", "add", `${formatIp(op.address)}/${op.prefix}`, "dev", op.dev];
      if (op.nodad) args.push("nodad");
      return { lines: [ip(op.netns, args)] };
    }
    case "addr-del":
      return { lines: [`${ip(op.netns, ["addr", "del", `${formatIp(op.address)}/${op.prefix}`, "dev", op.dev])} 2>/dev/null || true`] };
    case "route-add": {
      const dst = op.dst ? formatPrefix(op.dst) : "default";
      return { lines: [ip(op.netns, ["route", "add", dst, "via", formatIp(op.gateway), "dev", op.dev], op.gateway.family)] };
    }
    case "guard": {
      const g = o.guard;
      if (!g) throw new RangeError("a guard step needs the guard's filter (RenderOptions.guard)");
      return {
        lines: [
          tc(op.netns, ["qdisc", "add", "dev", op.dev, "clsact"]),
          tc(op.netns, [
            "filter", "add", "dev", op.dev, "ingress", "prio", String(g.prio), "handle", `0x${g.handle.toString(16)}`,
            "protocol", g.protocol === 3 ? "all" : `0x${g.protocol.toString(16)}`, "bpf", "direct-action", "bytecode", tcBytecode(g.ops),
          ]),
        ],
      };
    }
    case "nft-table": {
      const text = op.changes === undefined ? tableText(op.spec) : changesText(op.spec, op.changes);
      if (!text) return { lines: [], note: "the table already matches: nothing to send" };
      return { lines: [nft(op.netns, text)] };
    }
    case "nft-elements": {
      // Elements are written in their sets' layout: the table's spec, from an nft-table step of
      // the plan or from the caller.
      const id = `${op.family} ${op.table}`;
      const spec = o.tables?.find((t) => `${t.family} ${t.name}` === id);
      if (!spec) throw new RangeError(`elements of table ${id}, whose sets are not known (RenderOptions.tables)`);
      const text = elementDeletesText(spec, op.delete ?? []) + elementsText(spec, op.add ?? []);
      return { lines: text ? [nft(op.netns, text)] : [] };
    }
  }
}

/** The whole plan as a bash script: shebang, `set -e`, and each step under its `# why` line. */
export function renderScript(ops: readonly Op[], options: RenderOptions = {}): string {
  const specs = ops.flatMap((op) => (op.op === "nft-table" ? [op.spec] : []));
  const o = { ...options, tables: [...specs, ...(options.tables ?? [])] };
  const out = ["#!/bin/bash", ...(o.header ?? []).map(comment), "set -euo pipefail", ""];
  for (const op of ops) {
    const { lines, note } = commands(op, o);
    out.push(comment(`${op.why}${note ? ` (${note})` : ""}`));
    out.push(...lines, "");
  }
  return out.join("\n");
}
