// Line coverage of the kernel-facing layers by the root-free unit tests alone (`npm run coverage`).
// Runs `bun test --coverage unit` with the lcov reporter, sums each folder's lines found and hit
// over its files, prints one row per folder and exits 1 when a folder is under the floor. A file
// of the folder that no unit test loads is counted with all its code lines unhit (bun leaves it
// out of the report altogether).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const FOLDERS = ["src/netlink", "src/nftables", "src/rtnetlink", "src/nat", "src/dns", "src/ip"];
const FLOOR = 80;

const root = new URL("..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "tsnet-coverage-"));
try {
  const run = Bun.spawnSync([process.execPath, "test", "--coverage", "--coverage-reporter=lcov", `--coverage-dir=${dir}`, "unit"], {
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  });
  if (run.exitCode !== 0) {
    console.error(`coverage: the unit tests failed (exit ${run.exitCode})`);
    process.exit(1);
  }

  // lcov: SF:<path> ... LF:<lines found> LH:<lines hit> ... end_of_record, per file.
  const files = new Map<string, { found: number; hit: number }>();
  let cur: { path: string; found: number; hit: number } | undefined;
  for (const line of readFileSync(join(dir, "lcov.info"), "utf8").split("\n")) {
    if (line.startsWith("SF:")) cur = { path: line.slice(3), found: 0, hit: 0 };
    else if (cur && line.startsWith("LF:")) cur.found = Number(line.slice(3));
    else if (cur && line.startsWith("LH:")) cur.hit = Number(line.slice(3));
    else if (cur && line === "end_of_record") {
      files.set(cur.path, { found: cur.found, hit: cur.hit });
      cur = undefined;
    }
  }

  let failed = false;
  for (const folder of FOLDERS) {
    let found = 0;
    let hit = 0;
    const unloaded: string[] = [];
    for (const f of sources(join(root, folder))) {
      const path = relative(root, f);
      const c = files.get(path);
      if (c) {
        found += c.found;
        hit += c.hit;
      } else {
        found += codeLines(f);
        unloaded.push(path);
      }
    }
    const pct = found ? (100 * hit) / found : 100;
    const ok = pct >= FLOOR;
    if (!ok) failed = true;
    const extra = unloaded.length ? `  (never loaded: ${unloaded.join(", ")})` : "";
    console.log(`${folder.padEnd(15)} ${pct.toFixed(1).padStart(5)}%  ${String(hit).padStart(5)}/${String(found).padEnd(5)} ${ok ? "ok" : `UNDER ${FLOOR}%`}${extra}`);
  }
  process.exitCode = failed ? 1 : 0;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function sources(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(d, e.name)) : e.name.endsWith(".ts") ? [join(d, e.name)] : [],
  );
}

/** Lines of a file that are neither blank nor only a comment: an upper bound of what lcov would count. */
function codeLines(f: string): number {
  return readFileSync(f, "utf8").split("\n").filter((l) => {
    const t = l.trim();
    return t !== "" && !t.startsWith("//") && !t.startsWith("*") && !t.startsWith("/*");
  }).length;
}
