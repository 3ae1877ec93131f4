// tsnet copied onto a bare root (issue 18): glibc, busybox and the executable alone, no
// /etc/hosts, no /etc/resolv.conf, no iproute2 or nftables, as a freshly debootstrapped server
// or a rescue system would be. Entered two ways, each in a host of its own (mount and network
// namespaces, so the bridge and the ruleset are the bare root's alone):
// - chroot into a directory that is NOT a mount point (tsnet must come back to its own root
//   after every mount-namespace switch, and cannot make "/" a slave: "/" is no mount there);
// - pivot_root onto a tmpfs, the old root unmounted: what an initramfs or a container sees.
// /proc, /sys (its cgroup2 hierarchy below, at /sys/fs/cgroup as on a current server), /run
// (tmpfs) and /dev are mounted inside, as a bare server has them. Observed from outside: curl and
// ip from the host's tools, in the bare root's network namespace.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { TSNET, assertThrowawayHost, cgroupMount, sh, type Result } from "./helpers.ts";

const CGROUP_PARENT = process.env.TSNET_CGROUP_PARENT ?? "";
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
function populate(dir: string, etc: (etcDir: string) => void): void {
  for (const d of ["usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/local/bin", "etc", "proc", "sys", "run", "dev", "tmp", "var/lib", "www"]) {
    mkdirSync(`${dir}/${d}`, { recursive: true });
  }
  for (const l of ["bin", "sbin", "lib", "lib64"]) symlinkSync(`usr/${l}`, `${dir}/${l}`);
  chmodSync(`${dir}/tmp`, 0o1777);
  for (const f of glibcFiles()) copyFileSync(f, `${dir}/usr${f.replace(/^\/usr/, "")}`);
  // until libmnl is embedded (branch ship)
  for (const f of readdirSync("/usr/lib/x86_64-linux-gnu").filter((n) => n.startsWith("libmnl.so.0"))) {
    sh(["cp", "-a", `/usr/lib/x86_64-linux-gnu/${f}`, `${dir}/usr/lib/x86_64-linux-gnu/`]);
  }
  copyFileSync("/bin/busybox", `${dir}/usr/bin/busybox`);
  chmodSync(`${dir}/usr/bin/busybox`, 0o755);
  for (const a of APPLETS) symlinkSync("busybox", `${dir}/usr/bin/${a}`);
  copyFileSync(TSNET, `${dir}/usr/local/bin/tsnet`);
  chmodSync(`${dir}/usr/local/bin/tsnet`, 0o755);
  writeFileSync(`${dir}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(`${dir}/etc/group`, "root:x:0:\n");
  symlinkSync("/proc/self/mounts", `${dir}/etc/mtab`);
  writeFileSync(`${dir}/www/index.html`, "served from a bare root\n");
  etc(`${dir}/etc`);
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

interface Bare {
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

async function waitReady(proc: Bun.Subprocess<"ignore", "pipe", "pipe">): Promise<void> {
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
async function chrootRoot(): Promise<Bare> {
  const base = mkdtempSync("/tmp/bareroot-chroot-");
  const root = `${base}/root`;
  mkdirSync(root);
  populate(root, (etc) => {
    // /etc/hosts missing, /etc/resolv.conf a link to nowhere (systemd-resolved's, not running),
    // /etc/hostname empty.
    symlinkSync("../run/systemd/resolve/stub-resolv.conf", `${etc}/resolv.conf`);
    writeFileSync(`${etc}/hostname`, "");
  });
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
async function pivotRoot(): Promise<Bare> {
  const base = mkdtempSync("/tmp/bareroot-pivot-");
  const staged = `${base}/staged`;
  const root = `${base}/root`;
  mkdirSync(staged);
  mkdirSync(root);
  populate(staged, (etc) => {
    // /etc/hosts, /etc/resolv.conf and /etc/hostname all missing.
    void etc;
  });
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

// A DNS server on the bare root's 127.0.0.1:53 that answers every A question with 192.0.2.7 and
// every other question with no answer.
const FAKE_DNS = `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("ready", flush=True)
while True:
    q, a = s.recvfrom(512)
    i = 12
    while q[i]:
        i += q[i] + 1
    question = q[12:i + 5]
    is_a = q[i + 1:i + 3] == b"\\x00\\x01"
    answer = b"\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04" + bytes([192, 0, 2, 7]) if is_a else b""
    s.sendto(q[:2] + b"\\x81\\x80\\x00\\x01" + (b"\\x00\\x01" if is_a else b"\\x00\\x00") + b"\\x00\\x00\\x00\\x00" + question + answer, a)
`;

function ok(r: Result): string {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

beforeAll(() => {
  assertThrowawayHost();
  if (!CGROUP_PARENT) throw new Error("TSNET_CGROUP_PARENT is unset: run under test/sandbox.sh, which removes the containers' cgroups");
  if (sh(["sh", "-c", "busybox --list | grep -qx httpd"]).code !== 0) throw new Error("busybox (static) is missing: run test/deps.sh");
});

for (const [how, make] of [["chroot into a directory that is not a mount point", chrootRoot], ["pivot_root onto a tmpfs", pivotRoot]] as const) {
  describe(`a bare root entered by ${how}`, () => {
    let bare: Bare;
    let etcBefore: string[] = [];
    beforeAll(async () => {
      bare = await make();
      etcBefore = readdirSync(bare.hostPath("/etc")).sort();
    });
    afterAll(async () => {
      if (!bare) return;
      bare.tsnet(["rm", "-f", "web", "mac", "nonet"]);
      await bare.close();
    });

    const noneLeft = () => {
      expect(ok(bare.tsnet(["ps", "-a", "-q"]))).toBe("");
      expect(readdirSync(bare.hostPath("/run/tsnet/containers")).filter((f) => f.endsWith(".json"))).toEqual([]);
    };

    test("run --rm -- true exits 0 and leaves nothing", () => {
      expect(bare.tsnet(["run", "--rm", "--", "true"])).toEqual({ code: 0, stdout: "", stderr: "" });
      noneLeft();
    });

    test("the container's /etc files are made though the root has none (or a dangling or empty one)", () => {
      const out = ok(bare.tsnet(["run", "--rm", "-h", "box", "--", "sh", "-c", "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf; cat /etc/passwd; readlink /etc/mtab"]));
      const lines = out.split("\n");
      expect(lines[0]).toBe("box");
      expect(lines[1]).toBe("box");
      expect(out).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
      expect(out).toMatch(/^(\d+\.){3}\d+\tbox \w+$/m);
      expect(out).toMatch(/^nameserver 127\.0\.0\.11$/m);
      // The rest of the root's /etc is still there, as it is: files and links.
      expect(out).toContain("root:x:0:0:root:/root:/bin/sh\n");
      expect(out).toContain("/proc/self/mounts\n");
      // Nothing was made in the root's own /etc.
      expect(readdirSync(bare.hostPath("/etc")).sort()).toEqual(etcBefore);
      expect(existsSync(bare.hostPath("/etc/hosts"))).toBe(false);
      noneLeft();
    });

    test("run -d -p 8080:80 busybox httpd answers the host; ps; rm -f leaves nothing", async () => {
      const id = ok(bare.tsnet(["run", "-d", "--name", "web", "-p", "8080:80", "--", "httpd", "-f", "-p", "80", "-h", "/www"])).trim();
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      let body = "";
      for (let i = 0; i < 100 && body === ""; i++) {
        body = bare.outside(["curl", "-sS", "--max-time", "2", "http://127.0.0.1:8080/"]).stdout;
        if (body === "") await Bun.sleep(50);
      }
      expect(body).toBe("served from a bare root\n");
      const ps = ok(bare.tsnet(["ps", "--format", "{{.Names}} {{.Status}} {{.Ports}}"]));
      expect(ps).toMatch(/^web Up .* 0\.0\.0\.0:8080->80\/tcp\n$/);
      expect(ok(bare.tsnet(["rm", "-f", "web"]))).toBe("web\n");
      noneLeft();
      expect(bare.outside(["curl", "-sS", "--max-time", "1", "http://127.0.0.1:8080/"]).code).not.toBe(0);
    });

    test("--network none: /sys/class/net lists lo alone", () => {
      expect(ok(bare.tsnet(["run", "--rm", "--network", "none", "--", "ls", "/sys/class/net"]))).toBe("lo\n");
    });

    test("on a bridge: /sys/class/net is eth0 and lo, eth0's sysfs MAC is ip link's, /sys/fs/cgroup is populated", () => {
      ok(bare.tsnet(["run", "-d", "--name", "mac", "--", "sleep", "600"]));
      expect(ok(bare.tsnet(["exec", "mac", "ls", "/sys/class/net"]))).toBe("eth0\nlo\n");
      const mac = ok(bare.tsnet(["exec", "mac", "cat", "/sys/class/net/eth0/address"])).trim();
      const [link] = JSON.parse(ok(bare.outside(["nsenter", `--net=${bare.hostPath("/run/netns/tsnet-mac")}`, "ip", "-j", "link", "show", "eth0"])));
      expect(mac).toBe(link.address);
      // The host's eth0-less namespace has no such MAC: sysfs is the container's own.
      const hostMacs = JSON.parse(ok(bare.outside(["ip", "-j", "link"]))).map((l: any) => l.address);
      expect(hostMacs).not.toContain(mac);
      // The cgroup2 hierarchy below /sys is put back: a cgroup's control files are there.
      const cg = ok(bare.tsnet(["exec", "mac", "ls", "/sys/fs/cgroup"])).split("\n");
      expect(cg).toContain("cgroup.procs");
      expect(cg).toContain(CGROUP_PARENT);
      expect(ok(bare.tsnet(["rm", "-f", "mac"]))).toBe("mac\n");
      noneLeft();
    });

    test("with no nameserver in the root's resolv.conf, other names go where the host's programs would ask: 127.0.0.1", async () => {
      const server = bare.spawnOutside(["python3", "-c", FAKE_DNS]);
      try {
        await waitReady(server);
        const out = bare.tsnet(["run", "--rm", "--", "nslookup", "-type=a", "some.example.test"]);
        expect(out.stdout).toContain("192.0.2.7");
      } finally {
        server.kill("SIGKILL");
        await server.exited;
      }
    });

    test("--network host keeps the host's /sys", () => {
      const inside = ok(bare.tsnet(["run", "--rm", "--network", "host", "--", "ls", "/sys/class/net"]));
      const outside = JSON.parse(ok(bare.outside(["ip", "-j", "link"]))).map((l: any) => l.ifname).sort();
      expect(inside.trim().split("\n").sort()).toEqual(outside);
      expect(outside).toContain("tsnet0");
    });
  });
}


describe("on the throwaway host", () => {
  test("a container's /sys is its own, with every mount the host has below /sys put back", () => {
    const points = (text: string) => [...new Set(text.split("\n").map((l) => l.split(" ")[4] ?? "").filter((p) => p.startsWith("/sys/")))].sort();
    const host = points(readFileSync("/proc/self/mountinfo", "utf8"));
    expect(host.length).toBeGreaterThan(0);
    // A link of the host's that the old code's containers saw in /sys/class/net.
    expect(sh(["ip", "link", "add", "sysA", "type", "veth", "peer", "name", "sysB"]).code).toBe(0);
    let inside: Result;
    try {
      inside = sh([TSNET, "run", "--rm", "--network", "none", "--", "sh", "-c", "cat /proc/self/mountinfo; echo ---; ls /sys/class/net; echo ---; ls /sys/fs/cgroup"]);
    } finally {
      sh(["ip", "link", "del", "sysA"]);
    }
    expect(inside.code).toBe(0);
    const [mounts, net, cgroup] = inside.stdout.split("---\n");
    expect(points(mounts!)).toEqual(host);
    // The throwaway host has bridges and veths; the container sees its lo alone.
    expect(net).toBe("lo\n");
    expect(cgroup!.trim().split("\n").sort()).toEqual(readdirSync("/sys/fs/cgroup").sort());
  });
});
