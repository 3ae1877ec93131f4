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
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { CGROUP_PARENT, chrootRoot, pivotRoot, waitReady, type Bare } from "./bare-root.ts";
import { TSNET, assertThrowawayHost, sh, type Result } from "./helpers.ts";

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

    test("--network host keeps the host's /sys", async () => {
      const links = (): string[] => JSON.parse(ok(bare.outside(["ip", "-j", "link"]))).map((l: any) => l.ifname).sort();
      // The earlier tests' containers are gone, but their veth pairs go with their namespaces, in
      // the kernel's cleanup worker, a moment later: the host's links are compared once settled.
      for (let i = 0; links().some((n) => n.startsWith("veth")); i++) {
        if (i === 100) throw new Error(`the earlier containers' veths did not go: ${links().join(" ")}`);
        await Bun.sleep(50);
      }
      const inside = ok(bare.tsnet(["run", "--rm", "--network", "host", "--", "ls", "/sys/class/net"]));
      const outside = links();
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
