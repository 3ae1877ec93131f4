// Taking a container's interface away while its namespace lives on (CNI DEL into a namespace the
// runtime keeps, `tsnet network disconnect`), three ways, timed in the caller, in one process:
// - delete: RTM_DELLINK of the inside end (the pair goes; the caller waits in rcu_barrier());
// - move: a throwaway namespace (unshare + fd) and the inside end moved into it by IFLA_NET_NS_FD,
//   the fd then closed so the kernel's cleanup worker destroys the pair (dev_change_net_namespace
//   has its own rcu_barrier());
// - set aside: what tsnet does (src/network/sandbox.ts setAsideVeth): inside end down, addresses
//   removed, renamed; host end down, off the bridge, renamed (after a look for an older pair set
//   aside there, src/network/reap.ts);
// and, after set aside, "reap": what the container's manager then pays on its own event loop to
// delete that pair (reapSetAside: a look, then one deletion by the host end).
// Each round makes three pairs on one bridge, untimed (ip), and times the three ways in an order
// that rotates. Reported: the median and range per way. Run inside a throwaway host:
// bash test/sandbox.sh node_modules/.bin/bun bench/detach.ts
import { CLONE_NEWNET, O_RDONLY, close, open, setns, unshare } from "../ffi/libc.ts";
import { NETLINK_ROUTE } from "../src/netlink/constants.ts";
import { NetlinkSocket } from "../src/netlink/socket.ts";
import { homeNetns, inNetns } from "../src/netns/netns.ts";
import { reapSetAside } from "../src/network/reap.ts";
import { setAsideVeth } from "../src/network/sandbox.ts";
import { linkDel, linkGet, linkSet } from "../src/rtnetlink/link.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 30);
if (process.env.TSNET_THROWAWAY_HOST !== "1") {
  console.error("bench/detach.ts makes bridges and namespaces: run it inside test/sandbox.sh");
  process.exit(1);
}

function ip(...args: string[]): void {
  const r = Bun.spawnSync(["ip", ...args], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString()}`);
}

ip("link", "add", "benchbr", "type", "bridge");
ip("link", "set", "benchbr", "up");

/** A namespace like a container's: eth0 with an address and a default route, its peer on the bridge. */
function pair(tag: string): { ns: string; fd: number; hostVeth: string } {
  const ns = `bd-${tag}`;
  const hostVeth = `bv-${tag}`;
  ip("netns", "add", ns);
  ip("link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", ns);
  ip("link", "set", hostVeth, "master", "benchbr", "up");
  ip("-n", ns, "link", "set", "eth0", "up");
  ip("-n", ns, "addr", "add", "10.66.0.2/24", "dev", "eth0");
  ip("-n", ns, "route", "add", "default", "via", "10.66.0.1");
  return { ns, fd: open(`/run/netns/${ns}`, O_RDONLY), hostVeth };
}

const ways: Record<string, (p: { fd: number; hostVeth: string }) => void> = {
  delete(p) {
    inNetns(p.fd, () => {
      const nl = new NetlinkSocket(NETLINK_ROUTE, "bench");
      try {
        linkDel(nl, "eth0");
      } finally {
        nl.close();
      }
    });
  },
  move(p) {
    const back = homeNetns();
    unshare(CLONE_NEWNET, "throwaway namespace");
    let away: number;
    try {
      away = open("/proc/thread-self/ns/net", O_RDONLY);
    } finally {
      setns(back, CLONE_NEWNET, "home");
    }
    try {
      inNetns(p.fd, () => {
        const nl = new NetlinkSocket(NETLINK_ROUTE, "bench");
        try {
          linkSet(nl, linkGet(nl, "eth0")!.index, { nsFd: away }, "eth0");
        } finally {
          nl.close();
        }
      });
    } finally {
      close(away);
    }
  },
  "set aside"(p) {
    setAsideVeth({ what: "bench" }, { hostVeth: p.hostVeth, ifname: "eth0" }, p.fd);
  },
};

const names = Object.keys(ways);
const times: Record<string, number[]> = Object.fromEntries([...names, "reap"].map((n) => [n, []]));
for (let r = 0; r < ROUNDS; r++) {
  const order = names.map((_, i) => names[(i + r) % names.length]!);
  const pairs = Object.fromEntries(names.map((n, i) => [n, pair(`${r}-${i}`)]));
  for (const n of order) {
    const t = performance.now();
    ways[n]!(pairs[n]!);
    times[n]!.push(performance.now() - t);
    if (n === "set aside") {
      const t2 = performance.now();
      if (reapSetAside(pairs[n]!.fd, 1).deleted !== 1) throw new Error("reap: the pair set aside was not deleted");
      times.reap!.push(performance.now() - t2);
    }
  }
  for (const p of Object.values(pairs)) {
    close(p.fd);
    ip("netns", "del", p.ns);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`taking eth0 out of a namespace that stays, in the caller (ms), ${ROUNDS} rounds, order rotating:`);
for (const n of [...names, "reap"]) {
  const xs = times[n]!;
  console.log(`  ${n.padEnd(10)} median ${median(xs).toFixed(2).padStart(6)}   min ${Math.min(...xs).toFixed(2).padStart(6)}   max ${Math.max(...xs).toFixed(2).padStart(6)}`);
}
