// The fake upstream DNS server of the resolver tests (test/resolver.test.ts and
// test/resolver-leak.test.ts): it runs on the neighbour host of makeNeighbour() (192.0.2.2:53).
import { writeFileSync, readFileSync } from "node:fs";

const PY = "/usr/bin/python3";

/** A fake upstream DNS server: A 192.0.2.77 for every name, after delay ms; logs "addr port id name". */
const UPSTREAM_PY = `
import socket, struct, sys, threading, time
addr, log, delay = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, 53))
out = open(log, "a", buffering=1)
print("ready", flush=True)
while True:
    q, a = s.recvfrom(4096)
    try:
        i, labels = 12, []
        while q[i]:
            labels.append(q[i+1:i+1+q[i]].decode()); i += 1 + q[i]
        qtype = struct.unpack(">H", q[i+1:i+3])[0]; end = i + 5
    except Exception:
        continue
    out.write("%s %d %d %s\\n" % (a[0], a[1], struct.unpack(">H", q[:2])[0], ".".join(labels).lower()))
    an = 1 if qtype == 1 else 0
    r = q[:2] + struct.pack(">HHHHH", 0x8180, 1, an, 0, 0) + q[12:end]
    if an: r += b"\\xc0\\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 77])
    if delay: threading.Timer(delay, s.sendto, (r, a)).start()
    else: s.sendto(r, a)
`;

/**
 * The fake upstream on the neighbour host "nb" (192.0.2.2:53), its script and its log of who
 * asked in `dir`; resolves once it listens.
 */
export async function startUpstream(dir: string, delayMs = 0): Promise<{ asked(): { addr: string; port: number; id: number; name: string }[]; stop(): Promise<void> }> {
  writeFileSync(`${dir}/upstream.py`, UPSTREAM_PY);
  const log = `${dir}/asked-${Date.now()}`;
  writeFileSync(log, "");
  const p = Bun.spawn(["ip", "netns", "exec", "nb", PY, `${dir}/upstream.py`, "192.0.2.2", log, String(delayMs)], { stdout: "pipe", stderr: "inherit" });
  const first = await (p.stdout as ReadableStream<Uint8Array>).getReader().read();
  if (!new TextDecoder().decode(first.value).includes("ready")) throw new Error("the fake upstream did not start");
  return {
    asked: () =>
      readFileSync(log, "utf8").trim().split("\n").filter(Boolean).map((l) => {
        const [addr, port, id, name] = l.split(" ");
        return { addr: addr!, port: Number(port), id: Number(id), name: name! };
      }),
    async stop() {
      p.kill();
      await p.exited;
    },
  };
}
