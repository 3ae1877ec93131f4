// The layout's rule, held by a test: each folder imports only folders below it (ARCHITECTURE.md,
// "Layout"), and only ffi/ imports bun:ffi. Type-only imports are exempt: they are erased at
// build time and say what shape a value has, not which code runs. Two folders hold two layers:
// src/errors/'s error model (errors.ts, errno.ts, ...) imports nothing and sits below ffi/, which
// throws its KernelError, while its message writers (notice.ts, trace.ts, contain.ts) write through ffi/; and
// src/cli/'s entry (main.ts, the registry, dispatch, help, completion), which reaches every command,
// sits on top, while what the commands share (option tables, output, logging) sits low.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = join(import.meta.dir, "..");
const CLI_ENTRY = new Set(["src/cli/main.ts", "src/cli/registry.ts", "src/cli/dispatch.ts", "src/cli/help.ts", "src/cli/complete.ts"]);
// Help, completion and explain reach the commands themselves (explain parses with the explained
// command's own table), so they are part of the entry.
const ENTRY_COMMANDS = new Set(["src/commands/help.ts", "src/commands/_complete.ts", "src/commands/explain.ts"]);
const ERROR_WRITERS = new Set(["src/errors/notice.ts", "src/errors/trace.ts", "src/errors/contain.ts"]);

const RANK: Record<string, number> = {
  "errors (model)": -1,
  ffi: 0,
  "errors (writers)": 1,
  template: 1.5,
  "cli (shared)": 2,
  ip: 2,
  dns: 2,
  process: 2,
  cgroup: 2,
  netlink: 3,
  state: 3,
  rtnetlink: 4,
  nftables: 4,
  logs: 4,
  netns: 4,
  nat: 5,
  plan: 5.5,
  network: 6,
  container: 7,
  cni: 7,
  supervisor: 8,
  commands: 9,
  "cli (entry)": 10,
};

function layerOf(file: string): string {
  if (file.startsWith("ffi/")) return "ffi";
  const folder = file.split("/")[1]!;
  if (folder === "cli") return CLI_ENTRY.has(file) ? "cli (entry)" : "cli (shared)";
  if (folder === "errors") return ERROR_WRITERS.has(file) ? "errors (writers)" : "errors (model)";
  if (ENTRY_COMMANDS.has(file)) return "cli (entry)";
  return folder;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

/** Each import that runs code: `import ... from "x"` (not `import type`), `export ... from "x"`, `import("x")`. */
function runtimeImports(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^;]*?\sfrom\s+"([^"]+)"/gms)) if (!m[1]) specs.push(m[2]!);
  for (const m of text.matchAll(/^\s*import\s+"([^"]+)"/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)) specs.push(m[1]!);
  return specs;
}

const files = [...sources("src"), ...sources("ffi")];

describe("layers", () => {
  test("every folder has a place in the table", () => {
    const unknown = [...new Set(files.map(layerOf))].filter((l) => !(l in RANK));
    expect(unknown).toEqual([]);
  });

  test("imports go only downward", () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const spec of runtimeImports(readFileSync(join(ROOT, file), "utf8"))) {
        if (!spec.startsWith(".")) continue;
        const target = relative(ROOT, normalize(join(ROOT, dirname(file), spec)));
        const to = layerOf(target);
        if (to !== from && !(RANK[to]! < RANK[from]!)) upward.push(`${file} (${from}) imports ${target} (${to})`);
      }
    }
    expect(upward).toEqual([]);
  });

  test("the leaves that records are made of (state/, ip/) import nothing above them, not even types", () => {
    // A record's shapes (published ports among them) live at or below it, so a record never
    // depends on what the network or nat layers call things.
    const upward: string[] = [];
    for (const file of files.filter((f) => f.startsWith("src/state/") || f.startsWith("src/ip/"))) {
      const text = readFileSync(join(ROOT, file), "utf8");
      for (const m of text.matchAll(/^\s*(?:import|export)\s+(?:type\s+)?[^;]*?\sfrom\s+"(\.[^"]+)"/gms)) {
        const target = relative(ROOT, normalize(join(ROOT, dirname(file), m[1]!)));
        const to = layerOf(target);
        if (to !== layerOf(file) && !(RANK[to]! < RANK[layerOf(file)]!)) upward.push(`${file} imports ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  test("only ffi/ imports bun:ffi", () => {
    const outside = files.filter((f) => !f.startsWith("ffi/") && runtimeImports(readFileSync(join(ROOT, f), "utf8")).includes("bun:ffi"));
    expect(outside).toEqual([]);
  });

  test("the checker sees an upward import and ignores a type-only one", () => {
    expect(runtimeImports(`import { a } from "../x.ts";\nimport type { B } from "../y.ts";\nconst m = await import("../z.ts");`)).toEqual(["../x.ts", "../z.ts"]);
  });
});
