// The container resolver under attack and under faults: forged answers, exhaustion by one
// container, leaks, refused and unreachable upstreams, garbage. Attackers are unprivileged users
// in containers (-u 65534) and hosts in namespaces of the test's own; everything is seen from
// outside tsnet: a fake upstream's log of source ports, python DNS clients, ss, /proc, curl.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { startUpstream } from "./dns-upstream.ts";
import { alive, curl, useNeighbour, managerPid, nginxSite, records, removeAllContainers, runDetached, sh, tsnet, waitFor } from "./helpers.ts";

const PY = "/usr/bin/python3"; // not a shim under /root: the attackers are not root
const dir = mkdtempSync("/tmp/tsnet-resolver-");
chmodSync(dir, 0o755);
const site = nginxSite("still serving\n");

/**
 * A DNS client: asks SERVER for NAME (A) COUNT times, one after the other, and prints one line per
 * question: "RCODE MS" ("timeout MS" when nothing came within TIMEOUT s). With leave=1 it sends
 * and closes its socket at once (a client that gave up: the answer meets a closed port).
 */
writeFileSync(`${dir}/ask.py`, `
import random, socket, struct, sys, time
server, name, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
leave = len(sys.argv) > 5 and sys.argv[5] == "1"
q = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\\0" + struct.pack(">HH", 1, 1)
for n in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout)
    i = random.randrange(65536)
    t = time.monotonic()
    s.sendto(struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + q, (server, 53))
    if leave:
        s.close(); print("left 0", flush=True); continue
    try:
        while True:
            r = s.recv(4096)
            if r[:2] == struct.pack(">H", i): break
        print(r[3] & 15, round((time.monotonic() - t) * 1000), flush=True)
    except socket.timeout:
        print("timeout", round((time.monotonic() - t) * 1000), flush=True)
    s.close()
`);

/** Sends raw packets (hex, one per argument) to 127.0.0.11:53 and prints each reply's hex, or "none". */
writeFileSync(`${dir}/raw.py`, `
import socket, sys
for h in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
    s.sendto(bytes.fromhex(h), ("127.0.0.11", 53))
    try: print(s.recv(4096).hex(), flush=True)
    except socket.timeout: print("none", flush=True)
`);

useNeighbour();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(site.dir, { recursive: true, force: true });
});
afterEach(() => removeAllContainers());

/** The fake upstream on the neighbour host (192.0.2.2:53), with its log of who asked. */
const upstream = (delayMs = 0) => startUpstream(dir, delayMs);

/** Runs ask.py inside a container's namespace (as the container would): [rcode or "timeout", ms] per question. */
function ask(container: string, name: string, count = 1, timeout = 3, leave = false): [string, number][] {
  const r = sh(["ip", "netns", "exec", `tsnet-${container}`, PY, `${dir}/ask.py`, "127.0.0.11", name, String(count), String(timeout), leave ? "1" : "0"]);
  if (r.code !== 0) throw new Error(`ask.py in ${container} failed: ${r.stderr}`);
  return r.stdout.trim().split("\n").map((l) => {
    const [rcode, ms] = l.split(" ");
    return [rcode!, Number(ms)];
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** A detached nginx published on 8080, and a check that it answers. */
function publishedNeighbour(): () => void {
  runDetached(["--name", "web", "-p", "8080:80", "--", ...site.command]);
  const check = () => expect(curl("http://127.0.0.1:8080/").stdout).toBe("still serving\n");
  return check;
}

describe("forwarding: RFC 5452's random source port and id", () => {
  test("30 forwarded lookups reach the upstream from at least 25 source ports, from the address that reaches it", async () => {
    const up = await upstream();
    try {
      const names = Array.from({ length: 30 }, (_, i) => `n${i}.example.test`);
      const r = tsnet(["run", "--rm", "--dns", "192.0.2.2", "--", PY, "-c", `import socket\nfor n in ${JSON.stringify(names)}: socket.gethostbyname(n)`]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const asked = up.asked().filter((a) => names.includes(a.name));
      expect(asked.length).toBeGreaterThanOrEqual(30);
      expect(new Set(asked.map((a) => a.port)).size).toBeGreaterThanOrEqual(25);
      expect(new Set(asked.map((a) => a.id)).size).toBeGreaterThanOrEqual(25);
      // From the host's address on the way to the server (the socket was connected to it).
      expect(new Set(asked.map((a) => a.addr))).toEqual(new Set(["192.0.2.1"]));
    } finally {
      await up.stop();
    }
  });

  test("the socket waiting for an answer is connected to the server, and answers forged to its port from a container are not taken", async () => {
    // The real server answers after 2 s; meanwhile a container on another network sends an
    // answer with every one of the 65,536 ids to the port of the socket waiting for it.
    const up = await upstream(2000);
    try {
      tsnet(["network", "create", "atka"]);
      runDetached(["--name", "attacker", "--network", "atka", "--", "sleep", "60"]);
      runDetached(["--name", "victim", "--dns", "192.0.2.2", "--", PY, "-c", "import socket; print(socket.gethostbyname('bank.example.test'))"]);
      const sup = managerPid("victim");
      const line = await waitFor("the victim's upstream socket", () =>
        sh(["ss", "-uanpH", "dst", "192.0.2.2:53"]).stdout.split("\n").find((l) => l.includes(`pid=${sup},`)));
      const [, , , local, peer] = line.trim().split(/\s+/);
      expect(peer).toBe("192.0.2.2:53");
      expect(local).toMatch(/^192\.0\.2\.1:\d+$/); // bound to the address it needs, not 0.0.0.0
      const port = Number(local!.split(":")[1]);
      const gateway = JSON.parse(tsnet(["network", "inspect", "atka"]).stdout)[0].IPAM.Config[0].Gateway;
      const flood = `
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q = b"\\x04bank\\x07example\\x04test\\x00" + struct.pack(">HH", 1, 1)
for addr in (${JSON.stringify(gateway)}, "192.0.2.1"):
    for i in range(65536):
        s.sendto(struct.pack(">HHHHHH", i, 0x8180, 1, 1, 0, 0) + q + b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([6, 6, 6, 6]), (addr, ${port}))
`;
      sh(["ip", "netns", "exec", "tsnet-attacker", "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", PY, "-c", flood]);
      expect(await waitFor("the victim's answer", () => tsnet(["logs", "victim"]).stdout, 8000)).toBe("192.0.2.77\n");
    } finally {
      await up.stop();
      removeAllContainers();
      tsnet(["network", "rm", "atka"]);
    }
  });
});

describe("one container cannot starve or kill the others", () => {
  test("a non-root container holding 30,000 TCP connections to 127.0.0.11: a neighbour resolves within 1.5 s, run -d works, nothing dies", async () => {
    const up = await upstream();
    try {
      const check = publishedNeighbour();
      runDetached(["--name", "neighbour", "--dns", "192.0.2.2", "--", "sleep", "120"]);
      // Three processes (the file limit is per process) keep 10,000 connections each open, from
      // their own loopback address (the ephemeral ports of one address would not do), opening a
      // new one for each the resolver closes, for 40 s. Each prints, every half second, how many
      // it holds once topped up and how many it has opened in all.
      const hold = `
import select, socket, sys, time
src, want = sys.argv[1], 10000
socks, opened = {}, 0
ep = select.epoll()
def more():
    global opened
    while len(socks) < want:
        s = socket.socket(); s.setblocking(False)
        try:
            s.bind((src, 0)); s.connect(("127.0.0.11", 53))
        except BlockingIOError: pass
        except OSError: s.close(); return
        opened += 1
        socks[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
end = time.time() + 40
while time.time() < end:
    more()
    print(len(socks), opened, flush=True)
    until = time.time() + 0.5
    while time.time() < until:
        for fd, ev in ep.poll(0.1):
            ep.unregister(fd); socks.pop(fd).close()
`;
      writeFileSync(`${dir}/hold.py`, hold);
      runDetached(["--name", "holder", "-u", "65534", "--dns", "192.0.2.2", "--", "sh", "-c",
        `for a in 127.0.0.21 127.0.0.22 127.0.0.23; do ${PY} ${dir}/hold.py $a & done; wait`]);
      const sup = managerPid("holder");
      // The attack is on: 30,000 connections open at once, more opened as the resolver closes them.
      await waitFor("30,000 connections", () => {
        const lines = tsnet(["logs", "holder"]).stdout.trim().split("\n").slice(-3).map((l) => l.split(" ").map(Number));
        return lines.length === 3 && lines.every((l) => l[0] === 10000 && l[1]! >= 10000);
      }, 30000);
      for (let i = 0; i < 5; i++) {
        const [[rcode, ms]] = ask("neighbour", `up${i}.example.test`, 1, 1.5) as [[string, number]];
        expect(rcode).toBe("0");
        expect(ms).toBeLessThan(1500);
      }
      // The supervisor has its file descriptors, and starts containers.
      expect(fdCount(sup)).toBeLessThan(1000);
      const late = tsnet(["run", "-d", "--name", "late", "--", "true"]);
      expect(late.code).toBe(0);
      expect(tsnet(["wait", "late"]).stdout).toBe("0\n");
      check();
      expect(alive(sup)).toBe(true);
      expect(records().find((r) => r.name === "web")?.status).toBe("running");
    } finally {
      await up.stop();
    }
  }, 120_000);

  test("three flooding processes in one non-root container: 15 lookups from a victim container all answer, median under 300 ms", async () => {
    const up = await upstream();
    try {
      const flood = `
import os, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
end = time.time() + 40
n = 0
while time.time() < end:
    for _ in range(1000):
        n += 1
        q = struct.pack(">HHHHHH", n & 65535, 0x0100, 1, 0, 0, 0) + b"\\x06f%05d\\x07example\\x04test\\x00" % (n % 100000) + struct.pack(">HH", 1, 1)
        try: s.sendto(q, ("127.0.0.11", 53))
        except OSError: pass
        try:
            while True: s.recv(4096)
        except OSError: pass
`;
      writeFileSync(`${dir}/flood.py`, flood);
      runDetached(["--name", "victim", "--dns", "192.0.2.2", "--", "sleep", "120"]);
      runDetached(["--name", "flooder", "-u", "65534", "--dns", "192.0.2.2", "--", "sh", "-c",
        `for i in 1 2 3; do ${PY} ${dir}/flood.py & done; wait`]);
      const sup = managerPid("flooder");
      // The flood is on: the upstream sees the flooder's questions.
      await waitFor("the flood", () => up.asked().filter((a) => a.name.startsWith("f")).length > 100, 15000);
      await Bun.sleep(1000);
      const answers = ask("victim", "victim.example.test", 15, 5);
      expect(answers.map(([rcode]) => rcode)).toEqual(Array(15).fill("0"));
      expect(median(answers.map(([, ms]) => ms))).toBeLessThan(300);
      expect(alive(sup)).toBe(true);
    } finally {
      await up.stop();
    }
  }, 120_000);
});

describe("faults stay with the container they belong to", () => {
  /** A detached lookup with these --dns servers ends with getent's 2, and the others go on. */
  async function survives(dns: string[], expectPrompt: boolean) {
    const check = publishedNeighbour();
    const up = await upstream();
    try {
      runDetached(["--name", "bystander", "--dns", "192.0.2.2", "--", "sleep", "120"]);
      const sup = managerPid("web");
      const dnsArgs = dns.flatMap((d) => ["--dns", d]);
      // The foreground command's own failure: getent's 2, not tsnet's 125.
      const fg = tsnet(["run", "--rm", ...dnsArgs, "--", "getent", "hosts", "x.example.test"]);
      expect(fg.stderr).toBe("");
      expect(fg.code).toBe(2);
      // Detached: the same lookup fails alone.
      const id = runDetached([...dnsArgs, "--", "getent", "hosts", "y.example.test"]);
      expect(tsnet(["wait", id]).stdout).toBe("2\n");
      // The answer is SERVFAIL, and (for a refusal) prompt: well under a client's 5 s.
      runDetached(["--name", "asker", ...dnsArgs, "--", "sleep", "120"]);
      const [[rcode, ms]] = ask("asker", "z.example.test", 1, 5) as [[string, number]];
      expect(rcode).toBe("2");
      if (expectPrompt) expect(ms).toBeLessThan(1000);
      else expect(ms).toBeLessThan(4000);
      expect(alive(sup)).toBe(true);
      check();
      expect(ask("bystander", "fine.example.test")[0]![0]).toBe("0");
      expect(records().filter((r) => ["web", "bystander", "asker"].includes(r.name)).map((r) => r.status)).toEqual(["running", "running", "running"]);
    } finally {
      await up.stop();
    }
  }

  test("--dns 127.0.0.2 (nothing listening): SERVFAIL at once, the lookup fails alone", async () => {
    await survives(["127.0.0.2"], true);
  }, 60_000);

  test("--dns to a host of ours with port 53 closed: SERVFAIL at once, the lookup fails alone", async () => {
    // The neighbour's nb namespace answers on 192.0.2.2 only while the fake upstream runs: this
    // asks another address of it, with nothing on 53.
    sh(["ip", "-n", "nb", "addr", "add", "192.0.2.3/24", "dev", "eth0"]);
    // The neighbour stands in for a DNS host whose port is closed: it must say so to every query.
    // Its kernel would say it to one peer about once a second after a burst of 6 (icmp_ratelimit),
    // and the two getent runs before the timed question use that burst up, so the timed one met
    // silence (a timeout, not the refusal under test) whenever they ran within the same second.
    const limit = sh(["ip", "netns", "exec", "nb", "sysctl", "-n", "net.ipv4.icmp_ratelimit"]).stdout.trim();
    sh(["ip", "netns", "exec", "nb", "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"]);
    try {
      await survives(["192.0.2.3"], true);
    } finally {
      sh(["ip", "netns", "exec", "nb", "sysctl", "-qw", `net.ipv4.icmp_ratelimit=${limit}`]);
      sh(["ip", "-n", "nb", "addr", "del", "192.0.2.3/24", "dev", "eth0"]);
    }
  }, 60_000);

  test("--dns to a dead address: SERVFAIL before the client's timeout, the lookup fails alone", async () => {
    await survives(["192.0.2.99"], false);
  }, 120_000);

  test("--dns to a container without a DNS server: the lookup fails alone", async () => {
    runDetached(["--name", "mute", "--", "sleep", "120"]);
    const ip = sh(["ip", "-n", "tsnet-mute", "-4", "-j", "addr", "show", "eth0"]).stdout;
    const address = JSON.parse(ip)[0].addr_info[0].local as string;
    await survives([address], true);
  }, 60_000);

  test("a client that leaves before a slow upstream answers (the answer meets a closed port) costs nothing", async () => {
    const check = publishedNeighbour();
    const up = await upstream(700);
    try {
      runDetached(["--name", "impatient", "--dns", "192.0.2.2", "--", "sleep", "120"]);
      const sup = managerPid("impatient");
      ask("impatient", "slow.example.test", 5, 1, true);
      await Bun.sleep(1500);
      expect(alive(sup)).toBe(true);
      check();
      expect(ask("impatient", "after.example.test")[0]![0]).toBe("0");
    } finally {
      await up.stop();
    }
  }, 60_000);

  test("20,000 random packets at 127.0.0.11 from a non-root container: names still resolve, neighbours keep serving", async () => {
    const check = publishedNeighbour();
    const up = await upstream();
    try {
      runDetached(["--name", "noise", "-u", "65534", "--dns", "192.0.2.2", "--", "sleep", "120"]);
      const sup = managerPid("noise");
      const noise = `
import os, random, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20000):
    s.sendto(os.urandom(random.randrange(0, 600)), ("127.0.0.11", 53))
    # and over TCP, now and then
    if i % 500 == 0:
        t = socket.socket(); t.settimeout(1)
        try:
            t.connect(("127.0.0.11", 53)); t.sendall(os.urandom(random.randrange(1, 3000)))
        except OSError: pass
        t.close()
`;
      const r = sh(["ip", "netns", "exec", "tsnet-noise", "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", PY, "-c", noise]);
      expect(r.stderr).toBe("");
      await Bun.sleep(1500); // the bucket refills
      expect(alive(sup)).toBe(true);
      check();
      expect(ask("noise", "after.example.test")[0]![0]).toBe("0");
      expect(tsnet(["exec", "noise", "getent", "hosts", "after.example.test"]).stdout).toBe("192.0.2.77      after.example.test\n");
    } finally {
      await up.stop();
    }
  }, 60_000);

  test("garbage gets FORMERR, other opcodes NOTIMP, and a response gets no answer (Docker's embedded DNS does the same)", () => {
    runDetached(["--name", "prober", "--", "sleep", "60"]);
    const header = (flags: string, qd: string) => `abcd${flags}${qd}000000000000`;
    const question = "0378797a0000010001"; // "xyz" A IN
    const r = sh(["ip", "netns", "exec", "tsnet-prober", PY, `${dir}/raw.py`,
      header("0100", "0000"), // no question
      header("0100", "0001") + "3f", // a question cut short
      header("1100", "0001") + question, // opcode 2 (STATUS)
      header("8180", "0001") + question, // a response
      "abcd01", // shorter than a header
    ]);
    const lines = r.stdout.trim().split("\n");
    const rcode = (hex: string) => parseInt(hex.slice(6, 8), 16) & 15;
    expect(lines.length).toBe(5);
    expect(lines[0]!.slice(0, 4)).toBe("abcd");
    expect(rcode(lines[0]!)).toBe(1);
    expect(rcode(lines[1]!)).toBe(1);
    expect(rcode(lines[2]!)).toBe(4);
    expect(lines[3]).toBe("none");
    expect(lines[4]).toBe("none");
  });
});
