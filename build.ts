// Builds the single executable with `bun build --compile`. Never strip the result: stripping
// removes the embedded program and leaves the plain bun CLI.
//   bun build.ts             dist/tsnet for this machine
//   bun build.ts --release   dist/tsnet-linux-x64 and dist/tsnet-linux-arm64, and dist/SHA256SUMS
// The version (package.json) and the commit built from are written into the program, so
// `tsnet --version` needs no git at run time.
// Cross-compiling needs Bun's runtime for the other architecture: Bun fetches it from the npm
// registry (the @oven/bun-linux-aarch64 package of the same version) into ~/.bun/install/cache.
// If that fails, the same package is fetched with npm itself (which honours npm's registry and
// proxy settings) and handed to Bun as the executable to embed the program in.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };

function git(args: string[]): string | undefined {
  try {
    const r = Bun.spawnSync(["git", ...args], { stderr: "ignore" });
    return r.exitCode === 0 ? r.stdout.toString().trim() : undefined;
  } catch {
    return undefined; // no git here
  }
}

/** The commit's short hash, "-dirty" when tracked files differ from it, "unknown" outside git. */
function commit(): string {
  const sha = git(["rev-parse", "--short=12", "HEAD"]);
  if (!sha) return "unknown";
  return git(["status", "--porcelain", "--untracked-files=no"]) ? `${sha}-dirty` : sha;
}

const COMMIT = commit();
const define = { TSNET_VERSION: JSON.stringify(pkg.version), TSNET_COMMIT: JSON.stringify(COMMIT) };

async function build(outfile: string, target?: Bun.Build.CompileTarget, executablePath?: string): Promise<boolean> {
  const result = await Bun.build({
    entrypoints: ["./src/cli/main.ts"],
    compile: {
      outfile,
      ...(target ? { target } : {}),
      ...(executablePath ? { executablePath } : {}),
      // A root tool runs in whatever directory root happens to be in: a bunfig.toml there could
      // preload code (as uid 0), and a .env would enter tsnet's environment and every container's.
      // The executable reads none of the files Bun would otherwise pick up from the working
      // directory (test/security.test.ts plants them).
      autoloadBunfig: false,
      autoloadDotenv: false,
      autoloadTsconfig: false,
      autoloadPackageJson: false,
    },
    minify: true,
    sourcemap: "none",
    bytecode: true,
    target: "bun",
    define,
  });
  if (!result.success) for (const m of result.logs) console.error(m);
  return result.success;
}

/** Bun's runtime for `npmArch` (x64, aarch64) from the npm package @oven/bun-linux-ARCH. */
function runtimeFromNpm(npmArch: string): string {
  const dir = mkdtempSync(join(tmpdir(), "tsnet-bun-"));
  const spec = `@oven/bun-linux-${npmArch}@${Bun.version}`;
  const pack = Bun.spawnSync(["npm", "pack", "--silent", spec, "--pack-destination", dir], { stderr: "inherit" });
  if (pack.exitCode !== 0) throw new Error(`npm pack ${spec} failed`);
  const tarball = join(dir, basename(pack.stdout.toString().trim().split("\n").at(-1)!));
  const untar = Bun.spawnSync(["tar", "-xzf", tarball, "-C", dir, "package/bin/bun"], { stderr: "inherit" });
  if (untar.exitCode !== 0) throw new Error(`unpacking ${tarball} failed`);
  return join(dir, "package/bin/bun");
}

async function release(): Promise<void> {
  const targets = [
    { file: "dist/tsnet-linux-x64", target: "bun-linux-x64", npmArch: "x64" },
    { file: "dist/tsnet-linux-arm64", target: "bun-linux-arm64", npmArch: "aarch64" },
  ] as const;
  const sums: string[] = [];
  for (const t of targets) {
    let ok = !process.env.TSNET_RUNTIME_FROM_NPM && (await build(t.file, t.target).catch((e) => (console.error(String(e)), false)));
    if (!ok) {
      console.error(`build: fetching Bun's ${t.npmArch} runtime with npm`);
      const runtime = runtimeFromNpm(t.npmArch);
      try {
        ok = await build(t.file, t.target, runtime);
      } finally {
        rmSync(join(runtime, "../../.."), { recursive: true, force: true });
      }
    }
    if (!ok) process.exit(1);
    const hash = new Bun.CryptoHasher("sha256").update(readFileSync(t.file)).digest("hex");
    sums.push(`${hash}  ${basename(t.file)}`);
  }
  // The format sha256sum -c reads: run it in dist/.
  writeFileSync("dist/SHA256SUMS", `${sums.join("\n")}\n`);
}

const started = performance.now();
if (process.argv.includes("--release")) {
  await release();
  console.error(`build: dist/tsnet-linux-x64, dist/tsnet-linux-arm64, dist/SHA256SUMS (${COMMIT}) in ${Math.round(performance.now() - started)} ms`);
} else {
  if (!(await build("./dist/tsnet"))) process.exit(1);
  console.error(`build: dist/tsnet (${COMMIT}) in ${Math.round(performance.now() - started)} ms`);
}
