// Builds the single executable with `bun build --compile`. Never strip the result: stripping
// removes the embedded program and leaves the plain bun CLI.
//   bun build.ts             dist/tsnet for this machine
//   bun build.ts --release   dist/tsnet-linux-x64 and dist/tsnet-linux-arm64, the archives
//                            dist/tsnet-VERSION-linux-{x64,arm64}.tar.xz, and dist/SHA256SUMS
//   --xz=N                   the archives' xz level (default 6; npm test uses 0: the same files,
//                            packed in 15 s instead of 2 minutes each on a busy 2-core machine)
// The version (package.json) and the commit built from are written into the program, so
// `tsnet --version` needs no git at run time.
// Cross-compiling needs Bun's runtime for the other architecture: Bun fetches it from the npm
// registry (the @oven/bun-linux-aarch64 package of the same version) into ~/.bun/install/cache.
// If that fails, the same package is fetched with npm itself (which honours npm's registry and
// proxy settings) and handed to Bun as the executable to embed the program in.
//
// libmnl (LGPL-2.1) travels inside each executable (ffi/libmnl.ts loads it from memory). Its
// bytes come from, in this order: TSNET_LIBMNL_X64 / TSNET_LIBMNL_ARM64 (a libmnl.so.0 of one's
// own: how the embedded library is swapped), this machine's /usr/lib/TRIPLET/libmnl.so.0 for its
// own architecture, or Debian's libmnl0 package for the architecture, downloaded by apt from this
// machine's configured Debian mirror into build/libmnl/ARCH (a private package list: the
// machine's dpkg and apt state are not touched). Only this script reads those variables; the
// executable never loads code named by its environment.
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";

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
const XZ_LEVEL = (() => {
  const arg = process.argv.find((a) => a.startsWith("--xz="));
  const level = arg === undefined ? "6" : arg.slice("--xz=".length);
  if (!/^[0-9]$/.test(level)) {
    console.error(`build: --xz=${level} is not an xz level: give 0 to 9`);
    process.exit(1);
  }
  return level;
})();
const define = { TSNET_VERSION: JSON.stringify(pkg.version), TSNET_COMMIT: JSON.stringify(COMMIT) };

type Arch = "x64" | "arm64";
const ARCHES = {
  x64: { target: "bun-linux-x64", npmArch: "x64", debArch: "amd64", triplet: "x86_64-linux-gnu", elfMachine: 62, elfName: "x86-64" },
  arm64: { target: "bun-linux-arm64", npmArch: "aarch64", debArch: "arm64", triplet: "aarch64-linux-gnu", elfMachine: 183, elfName: "AArch64" },
} as const;

/** The libmnl a build embeds, with the notice that goes with it. */
interface Libmnl {
  bytes: Buffer;
  /** Where the bytes came from, for the release's LICENSE notice. */
  from: string;
  /** Debian's copyright file of libmnl0 (its upstream copyright and licence). */
  copyright: string;
}

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}

function run(cmd: string[], cwd?: string): string {
  const r = Bun.spawnSync(cmd, { cwd, stderr: "inherit" });
  if (r.exitCode !== 0) fail(`${cmd.join(" ")} failed (exit ${r.exitCode})`);
  return r.stdout.toString();
}

/** The bytes of `path` if it is a 64-bit little-endian ELF shared object for `arch`. */
function sharedObject(path: string, arch: Arch, named: string): Buffer {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (e) {
    fail(`${named}: cannot read ${path} (${(e as NodeJS.ErrnoException).code})`);
  }
  // ELF header: magic, EI_CLASS 2 (64-bit) at 4, EI_DATA 1 (little-endian) at 5, e_type u16 at 16
  // (3: ET_DYN), e_machine u16 at 18.
  const ok = b.length > 64 && b.subarray(0, 4).toString("latin1") === "\x7fELF" && b[4] === 2 && b[5] === 1 &&
    b.readUInt16LE(16) === 3 && b.readUInt16LE(18) === ARCHES[arch].elfMachine;
  if (!ok) fail(`${named}: ${path} is not a 64-bit ${ARCHES[arch].elfName} shared library (give libmnl.so.0 built for ${arch})`);
  return b;
}

/** Debian's copyright and licence notice of the machine's libmnl0. */
const SYSTEM_COPYRIGHT = "/usr/share/doc/libmnl0/copyright";

/** libmnl0 of this machine, for its own architecture (test/deps.sh installs it). */
function systemLibmnl(arch: Arch): { so: string; copyright: string; version: string } | undefined {
  if (process.arch !== arch) return undefined;
  const so = `/usr/lib/${ARCHES[arch].triplet}/libmnl.so.0`;
  const copyright = SYSTEM_COPYRIGHT;
  if (!existsSync(so) || !existsSync(copyright)) return undefined;
  const q = Bun.spawnSync(["dpkg-query", "-W", "-f=${Version}", `libmnl0:${ARCHES[arch].debArch}`], { stderr: "ignore" });
  return { so: realpathSync(so), copyright, version: q.exitCode === 0 ? q.stdout.toString().trim() : "unknown" };
}

/**
 * Debian's libmnl0 for `arch`, unpacked into build/libmnl/ARCH/root (kept for later builds; remove
 * build/ to fetch again). apt reads the machine's sources and keyring but keeps its package lists
 * and cache in build/libmnl/ARCH/apt, and is told the architecture on its command line, so
 * neither dpkg's architectures nor the machine's lists change.
 */
function debianLibmnl(arch: Arch): { so: string; copyright: string; version: string } {
  const { debArch, triplet } = ARCHES[arch];
  const dir = resolve(`build/libmnl/${arch}`);
  const root = `${dir}/root`;
  const so = `${root}/usr/lib/${triplet}/libmnl.so.0`;
  if (!existsSync(so)) {
    console.error(`build: fetching Debian's libmnl0:${debArch} with apt`);
    const apt = `${dir}/apt`;
    rmSync(dir, { recursive: true, force: true });
    for (const d of ["lists/partial", "cache/archives/partial", "deb"]) mkdirSync(`${apt}/${d}`, { recursive: true });
    const opts = [
      "-qq", "-o", `APT::Architecture=${debArch}`, "-o", `APT::Architectures=${debArch}`,
      "-o", `Dir::State::Lists=${apt}/lists`, "-o", `Dir::Cache=${apt}/cache`, "-o", "Dir::State::status=/dev/null",
      // The download lands in build/, which apt's unprivileged _apt user may not reach.
      "-o", "APT::Sandbox::User=root",
    ];
    run(["apt-get", ...opts, "update"]);
    run(["apt-get", ...opts, "download", `libmnl0:${debArch}`], `${apt}/deb`);
    const debs = readdirSync(`${apt}/deb`).filter((f) => f.endsWith(".deb"));
    if (debs.length !== 1) fail(`apt-get download libmnl0:${debArch} left ${debs.length} packages in ${apt}/deb`);
    const deb = `${apt}/deb/${debs[0]}`;
    const version = run(["dpkg-deb", "-f", deb, "Version"]).trim();
    run(["dpkg-deb", "-x", deb, root]);
    writeFileSync(`${dir}/version`, `${version}\n`);
    rmSync(apt, { recursive: true, force: true }); // the lists are 20 MB
    if (!existsSync(so)) fail(`Debian's libmnl0:${debArch} has no usr/lib/${triplet}/libmnl.so.0`);
  }
  return { so: realpathSync(so), copyright: `${root}/usr/share/doc/libmnl0/copyright`, version: readFileSync(`${dir}/version`, "utf8").trim() };
}

function libmnl(arch: Arch): Libmnl {
  const variable = `TSNET_LIBMNL_${arch.toUpperCase()}`;
  const own = process.env[variable];
  if (own) {
    // libmnl's notice goes with any build of it: this machine's copy of the notice, fetched only
    // when the machine has none.
    const notice = existsSync(SYSTEM_COPYRIGHT) ? SYSTEM_COPYRIGHT : debianLibmnl(arch).copyright;
    return { bytes: sharedObject(own, arch, variable), from: `${basename(own)} given to build.ts as ${variable}`, copyright: readFileSync(notice, "utf8") };
  }
  const fromDebian = systemLibmnl(arch) ?? debianLibmnl(arch);
  const copyright = readFileSync(fromDebian.copyright, "utf8");
  return { bytes: sharedObject(fromDebian.so, arch, "libmnl"), from: `Debian's libmnl0 ${fromDebian.version} (${ARCHES[arch].debArch})`, copyright };
}

async function build(outfile: string, lib: Libmnl, target?: Bun.Build.CompileTarget, executablePath?: string): Promise<boolean> {
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
    // The library as a string constant: ffi/libmnl.ts must have it synchronously, and reading an
    // embedded file synchronously would take node:fs (ffi/fs.ts says what that costs).
    define: { ...define, TSNET_LIBMNL: JSON.stringify(lib.bytes.toString("base64")) },
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

/** The notice at the top of each release archive: what is in the executable, under which terms. */
function notice(arch: Arch, lib: Libmnl): string {
  return `tsnet ${pkg.version} (build ${COMMIT}) for linux-${arch}

The file tsnet is one executable holding three things:

- tsnet's own program (package.json: MIT licence).
- Bun's runtime (${Bun.version}), into which it is compiled. Bun is MIT-licensed; it statically
  links JavaScriptCore and WebKit (LGPL-2) and other libraries, each under its own licence:
  https://bun.com/docs/project/license says which and how to relink Bun.
- libmnl, the netlink library, carried as a copy loaded from memory at run time: ${lib.from}.
  libmnl is copyright (C) 2008-2012 Pablo Neira Ayuso, licensed under the
  GNU Lesser General Public License 2.1 or later: LICENSES/libmnl.copyright is its Debian
  copyright file, LICENSES/LGPL-2.1 the licence's text. Its source: Debian's source package libmnl
  (apt-get source libmnl), or https://www.netfilter.org/projects/libmnl/.

Swapping libmnl: build tsnet from its source with your own libmnl.so.0,
  TSNET_LIBMNL_${arch.toUpperCase()}=/path/to/libmnl.so.0 npm run release
(README.md, "Shipping to servers"). The executable falls back to the system's libmnl.so.0 only
when the copy it carries cannot be loaded.
`;
}

/** dist/tsnet-VERSION-linux-ARCH.tar.xz: the executable, README.md and the licence notices. */
function archive(arch: Arch, exe: string, lib: Libmnl): string {
  const name = `tsnet-${pkg.version}-linux-${arch}`;
  const stage = resolve(`build/release/${name}`);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(`${stage}/LICENSES`, { recursive: true });
  copyFileSync(exe, `${stage}/tsnet`);
  chmodSync(`${stage}/tsnet`, 0o755);
  copyFileSync("README.md", `${stage}/README.md`);
  writeFileSync(`${stage}/LICENSE`, notice(arch, lib));
  writeFileSync(`${stage}/LICENSES/libmnl.copyright`, lib.copyright);
  const lgpl = "/usr/share/common-licenses/LGPL-2.1";
  if (!existsSync(lgpl)) fail(`${lgpl} is missing (Debian's base-files has it): the archive must carry libmnl's licence`);
  copyFileSync(lgpl, `${stage}/LICENSES/LGPL-2.1`);
  const out = `dist/${name}.tar.xz`;
  // The same tree gives the same archive: sorted names, no owners, one time (the commit's).
  const time = git(["log", "-1", "--format=%ct"]) ?? "0";
  const tar = Bun.spawnSync(
    ["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", `--mtime=@${time}`, "-C", resolve("build/release"), "-cJf", out, name],
    { env: { ...process.env, XZ_OPT: `-${XZ_LEVEL} -T0` }, stderr: "inherit" },
  );
  if (tar.exitCode !== 0) fail(`tar ${out} failed`);
  rmSync(stage, { recursive: true, force: true });
  return out;
}

async function release(): Promise<string[]> {
  const files: string[] = [];
  const archives: string[] = [];
  for (const arch of ["x64", "arm64"] as const) {
    const { target, npmArch } = ARCHES[arch];
    const file = `dist/tsnet-linux-${arch}`;
    const lib = libmnl(arch);
    let ok = !process.env.TSNET_RUNTIME_FROM_NPM && (await build(file, lib, target).catch((e) => (console.error(String(e)), false)));
    if (!ok) {
      console.error(`build: fetching Bun's ${npmArch} runtime with npm`);
      const runtime = runtimeFromNpm(npmArch);
      try {
        ok = await build(file, lib, target, runtime);
      } finally {
        rmSync(join(runtime, "../../.."), { recursive: true, force: true });
      }
    }
    if (!ok) process.exit(1);
    files.push(file);
    archives.push(archive(arch, file, lib));
  }
  files.push(...archives);
  // The format sha256sum -c reads: run it in dist/.
  const sums = files.map((f) => `${new Bun.CryptoHasher("sha256").update(readFileSync(f)).digest("hex")}  ${basename(f)}`);
  writeFileSync("dist/SHA256SUMS", `${sums.join("\n")}\n`);
  return [...files, "dist/SHA256SUMS"];
}

const started = performance.now();
if (process.argv.includes("--release")) {
  const files = await release();
  console.error(`build: ${files.join(", ")} (${COMMIT}) in ${Math.round(performance.now() - started)} ms`);
} else {
  const arch = process.arch;
  if (arch !== "x64" && arch !== "arm64") fail(`no release target for ${arch}: tsnet builds for x64 and arm64`);
  if (!(await build("./dist/tsnet", libmnl(arch)))) process.exit(1);
  console.error(`build: dist/tsnet (${COMMIT}) in ${Math.round(performance.now() - started)} ms`);
}
