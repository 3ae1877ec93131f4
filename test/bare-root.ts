// A bare root for tests and benchmarks (issue 18): Debian 12's layout with this machine's glibc
// (what `ldd dist/tsnet` names), a static busybox and tsnet, entered by chroot into a directory that
// is not a mount point or by pivot_root onto a tmpfs, each in a host of its own (mount and network
// namespaces), with /proc, /sys (the cgroup2 hierarchy at /sys/fs/cgroup), /run and /dev mounted
// inside as a bare server has them.
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { TSNET, cgroupMount, sh, type Result } from "./helpers.ts";

export const CGROUP_PARENT = process.env.TSNET_CGROUP_PARENT ?? "";
const APPLETS = ["sh", "ls", "cat", "httpd", "true", "sleep", "mount", "umount", "hostname", "echo", "env", "grep", "readlink", "wc", "nslookup"];

/** The files `ldd dist/tsnet` names, and the dynamic loader. */
function glibcFiles(): string[] {
  const out = sh(["ldd", TSNET]).stdout;
  const files = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) files.add(m[1]!);
  }
  if (![...files].some((f) => f.includes("ld-linux"))) throw new Error(`ldd named no dynamic loader: ${out}`);
  return [...files];
}

/**
 * Fills dir with a bare root: Debian 12's layout (merged /usr), glibc, busybox, tsnet, a web root,
 * /etc with only passwd and group (and what `etc` adds), and empty mount points.
 */
function populate(dir: string, etc: (etcDir: string) => void, withTsnet: boolean): void {
  for (const d of ["usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/local/bin", "etc", "proc", "sys", "run", "dev", "tmp", "var/lib", "www"]) {
    mkdirSync(`${dir}/${d}`, { recursive: true });
  }
  for (const l of ["bin", "sbin", "lib", "lib64"]) symlinkSync(`usr/${l}`, `${dir}/${l}`);
  chmodSync(`${dir}/tmp`, 0o1777);
  for (const f of glibcFiles()) copyFileSync(f, `${dir}/usr${f.replace(/^\/usr/, "")}`);
  // No libmnl: the executable carries its own (README, "Shipping to servers").
  copyFileSync("/bin/busybox", `${dir}/usr/bin/busybox`);
  chmodSync(`${dir}/usr/bin/busybox`, 0o755);
  for (const a of APPLETS) symlinkSync("busybox", `${dir}/usr/bin/${a}`);
  if (withTsnet) copyIn(dir);
  writeFileSync(`${dir}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(`${dir}/etc/group`, "root:x:0:\n");
  symlinkSync("/proc/self/mounts", `${dir}/etc/mtab`);
  writeFileSync(`${dir}/www/index.html`, "served from a bare root\n");
  etc(`${dir}/etc`);
}

/** Puts dist/tsnet into the root at dir, as an administrator copies the release file in. */
export function copyIn(dir: string): void {
  copyFileSync(TSNET, `${dir}/usr/local/bin/tsnet`);
  chmodSync(`${dir}/usr/local/bin/tsnet`, 0o755);
}

/** The mounts a bare server has, made inside ROOT by a shell of the bare root's host. */
function mountsScript(root: string): string {
  const cg = cgroupMount();
  return [
    `mount -t proc proc ${root}/proc`,
    `mount -t sysfs sysfs ${root}/sys`,
    `mount --bind ${cg} ${root}/sys/fs/cgroup`,
    `mount -t tmpfs -o mode=755 run ${root}/run`,
    `mount --rbind /dev ${root}/dev`,
  ].join(" && ");
}

export interface Bare {
  /** The root's directory as this process sees it, for files put in before anything is run (not below a mount). */
  dir: string;
  /** tsnet inside the bare root. */
  tsnet(args: string[]): Result;
  /** A command of the host's (curl, ip, nsenter) in the bare root's network namespace. */
  outside(cmd: string[]): Result;
  /** A long-running command of the host's in the bare root's network namespace. */
  spawnOutside(cmd: string[]): Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** The host's path of a path inside the bare root. */
  hostPath(p: string): string;
  close(): Promise<void>;
}

export async function waitReady(proc: Bun.Subprocess<"ignore", "pipe", "pipe">): Promise<void> {
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the bare root's host did not start: ${await new Response(proc.stderr).text()}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
}

const ENV = { PATH: "/usr/local/bin:/usr/bin:/bin", TSNET_CGROUP_PARENT: CGROUP_PARENT };

/** A host of its own whose processes are chroot'ed into a directory that is not a mount point. */
export async function chrootRoot(withTsnet = true): Promise<Bare> {
  const base = mkdtempSync("/tmp/bareroot-chroot-");
  const root = `${base}/root`;
  mkdirSync(root);
  populate(root, (etc) => {
    // /etc/hosts missing, /etc/resolv.conf a link to nowhere (systemd-resolved's, not running),
    // /etc/hostname empty.
    symlinkSync("../run/systemd/resolve/stub-resolv.conf", `${etc}/resolv.conf`);
    writeFileSync(`${etc}/hostname`, "");
  }, withTsnet);
  const proc = Bun.spawn(
    ["unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-ec",
      `${mountsScript(root)} && ip link set lo up && echo ready && exec sleep infinity`],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  await waitReady(proc);
  const host = (cmd: string[], env?: Record<string, string>) => {
    const p = Bun.spawnSync(["nsenter", "-t", String(proc.pid), "-m", "-n", "--", ...cmd], { stdin: "ignore", env: env ?? process.env, timeout: 60_000 });
    return { code: p.exitCode ?? 128 + 9, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  };
  return {
    dir: root,
    tsnet: (args) => host(["/usr/sbin/chroot", root, "/usr/local/bin/tsnet", ...args], ENV),
    outside: (cmd) => host(cmd),
    spawnOutside: (cmd) => Bun.spawn(["nsenter", "-t", String(proc.pid), "-n", "--", ...cmd], { stdio: ["ignore", "pipe", "pipe"] }),
    hostPath: (p) => `/proc/${proc.pid}/root${root}${p}`,
    async close() {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** A host of its own that pivot_root'ed onto a tmpfs holding the bare root. */
export async function pivotRoot(): Promise<Bare> {
  const base = mkdtempSync("/tmp/bareroot-pivot-");
  const staged = `${base}/staged`;
  const root = `${base}/root`;
  mkdirSync(staged);
  mkdirSync(root);
  populate(staged, (etc) => {
    // /etc/hosts, /etc/resolv.conf and /etc/hostname all missing.
    void etc;
  }, true);
  const proc = Bun.spawn(
    ["unshare", "--mount", "--net", "--propagation", "private", "--", "sh", "-ec", [
      `mount -t tmpfs -o mode=755 bare ${root}`,
      `cp -a ${staged}/. ${root}/`,
      mountsScript(root),
      "ip link set lo up",
      `mkdir ${root}/.old`,
      `cd ${root}`,
      "pivot_root . .old",
      // From here on only the bare root's busybox is there.
      `exec /bin/sh -ec 'umount -l /.old; echo ready; exec sleep 1000000'`,
    ].join(" && ")],
    { stdio: ["ignore", "pipe", "pipe"], cwd: "/" },
  );
  await waitReady(proc);
  // The staged copy is not needed once the tmpfs holds it.
  rmSync(staged, { recursive: true, force: true });
  const ns = (flags: string[], cmd: string[], env?: Record<string, string>) => {
    const p = Bun.spawnSync(["nsenter", "-t", String(proc.pid), ...flags, "--", ...cmd], { stdin: "ignore", env: env ?? process.env, timeout: 60_000 });
    return { code: p.exitCode ?? 128 + 9, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  };
  return {
    dir: `/proc/${proc.pid}/root`,
    // nsenter -m puts the command at the mount namespace's root: the tmpfs.
    tsnet: (args) => ns(["-m", "-n"], ["/usr/local/bin/tsnet", ...args], ENV),
    outside: (cmd) => ns(["-n"], cmd),
    spawnOutside: (cmd) => Bun.spawn(["nsenter", "-t", String(proc.pid), "-n", "--", ...cmd], { stdio: ["ignore", "pipe", "pipe"] }),
    hostPath: (p) => `/proc/${proc.pid}/root${p}`,
    async close() {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(base, { recursive: true, force: true });
    },
  };
}
