// The tools measured side by side, each doing the same work: a container cycle `run --rm ... true`
// on a bridge, with and without one published port (-p 8080:80); a population of running
// containers; a server behind a published port. A peer that is not installed (or does not work
// here) is reported as missing with the command that installs it, and the rest go on without it.
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { CniRuntime, referenceConfList, type Attachment, type PortMapping } from "./cni.ts";
import { memoryOf, pidsByExe, pool, run, runAsync, StepError, tryRun, which, type Memory } from "./proc.ts";

export interface Ctx {
  /** The repository (bench/ lives here). */
  root: string;
  /** The tsnet executable measured (resolved). */
  tsnet: string;
  /** A directory on the throwaway host's tmpfs for everything the peers keep. */
  work: string;
}

export interface Row {
  id: string;
  tool: string;
  /** The command as a user would type it (or what it stands for). */
  label: string;
  publish: boolean;
  /** "cycle" rows are the container cycle; "startup" rows time a start-up alone. */
  group: "cycle" | "startup";
  /** One cycle, start to finish; throws on failure. */
  cycle(): void;
}

/** What the results file keeps of a row: all but its cycle. */
export type RowInfo = Omit<Row, "cycle">;

export interface Population {
  /** Levels (running containers) to measure at; 0 first. */
  levels: number[];
  /** Why the ladder stops where it does. */
  why: string;
  /** What one running container is for this tool. */
  what: string;
  grow(to: number): Promise<void>;
  size(): number;
  clear(): Promise<void>;
  /** Rows measured at each level; the first is the one charted. */
  rows: Row[];
  /** What the tool keeps resident for its running containers, and which processes those are. */
  memory?(): Memory & { what: string };
}

export interface Server {
  /** HOST:PORT through the published port, and straight to the container's address. */
  published: { conn: string; iperf: string };
  direct: { conn: string; iperf: string };
  stop(): Promise<void>;
}

export interface Tool {
  id: string;
  name: string;
  version: string;
  rows: Row[];
  population?: Population;
  server?(): Promise<Server>;
  teardown(): Promise<void>;
}

export interface Missing {
  id: string;
  name: string;
  why: string;
  install: string;
}

const levelsFrom = (env: string | undefined, dflt: number[]): number[] =>
  env ? [...new Set([0, ...env.split(",").map(Number)])].sort((a, b) => a - b) : dflt;

const firstLine = (s: string | null) => (s ?? "").trim().split("\n")[0] ?? "";
const dpkgVersion = (pkg: string) => tryRun(["dpkg-query", "-W", "-f", "${Version}", pkg])?.trim() || "not installed";

/** Waits until HOST:PORT accepts a TCP connection. */
export async function waitPort(target: string, seconds = 15): Promise<void> {
  const [hostname, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      const s = await Bun.connect({ hostname, port, socket: { data() {} } });
      s.end();
      return;
    } catch {
      if (Date.now() > deadline) throw new StepError(`nothing answered on ${target} after ${seconds} s`);
      await Bun.sleep(50);
    }
  }
}

// ---- unshare -n true: the kernel's floor ------------------------------------------------------

function floor(): Tool {
  return {
    id: "floor",
    name: "`unshare -n true` (the floor)",
    version: firstLine(tryRun(["unshare", "--version"])),
    rows: [{ id: "floor", tool: "floor", label: "unshare -n true", publish: false, group: "cycle", cycle: () => run(["unshare", "-n", "true"]) }],
    teardown: async () => {},
  };
}

// ---- tsnet -------------------------------------------------------------------------------------

function tsnet(ctx: Ctx): Tool {
  const T = ctx.tsnet;
  const bridgeCap = Number(process.env.BENCH_TSNET_BRIDGE_CAP ?? 1000);
  let running = 0;
  let hello = "";
  const row = (publish: boolean): Row => ({
    id: publish ? "tsnet-p" : "tsnet",
    tool: "tsnet",
    label: `tsnet run --rm${publish ? " -p 8080:80" : ""} -- true`,
    publish,
    group: "cycle",
    cycle: () => run(publish ? [T, "run", "--rm", "-p", "8080:80", "--", "true"] : [T, "run", "--rm", "--", "true"]),
  });
  const ps: Row = { id: "tsnet-ps", tool: "tsnet", label: "tsnet ps", publish: false, group: "cycle", cycle: () => run([T, "ps"]) };
  const version: Row = { id: "tsnet-version", tool: "tsnet", label: "tsnet --version", publish: false, group: "startup", cycle: () => run([T, "--version"]) };
  const helloRow: Row = {
    id: "bun-hello",
    tool: "tsnet",
    label: "a compiled Bun hello world (same build options)",
    publish: false,
    group: "startup",
    cycle: () => run([hello]),
  };
  const tool: Tool = {
    id: "tsnet",
    name: "tsnet",
    version: `${firstLine(tryRun([T, "--version"]))} (${firstLine(tryRun(["git", "-C", ctx.root, "rev-parse", "--short", "HEAD"]))}), Bun ${Bun.version}`,
    rows: [row(false), row(true), version, helloRow],
    population: {
      levels: levelsFrom(process.env.BENCH_TSNET_LEVELS, [0, 100, 500, 1000, 5000]),
      why: `the Linux bridge holds at most 1,023 ports (BR_MAX_PORTS), so containers past ${bridgeCap} run with --network none`,
      what: `\`tsnet run -d --rm -- sleep inf\` (bridge up to ${bridgeCap}, then --network none)`,
      size: () => running,
      grow: async (to) => {
        const idx = Array.from({ length: Math.max(0, to - running) }, (_, i) => running + i);
        await pool(idx, 2, async (i) => {
          const net = i < bridgeCap ? [] : ["--network", "none"];
          await runAsync([T, "run", "-d", "--rm", "--name", `g${i}`, ...net, "--", "sleep", "inf"]);
        });
        running = to;
        await Bun.sleep(1000); // let the supervisor settle after the burst before measuring
      },
      clear: async () => {
        const ids = run([T, "ps", "-aq"]).split("\n").filter(Boolean);
        for (let i = 0; i < ids.length; i += 200) tryRun([T, "rm", "-f", ...ids.slice(i, i + 200)], { timeoutMs: 600_000 });
        running = 0;
      },
      rows: [row(true), row(false), ps],
      memory: () => ({ ...memoryOf(pidsByExe(T)), what: "every tsnet process (the supervisor)" }),
    },
    server: async () => {
      run([T, "run", "-d", "--rm", "--name", "bench-srv", "-p", "18080:80", "-p", "15201:5201", "--", "bash", `${ctx.root}/bench/serve.sh`]);
      const ip = (JSON.parse(run([T, "inspect", "bench-srv"])) as { NetworkSettings: { IPAddress: string } }[])[0]!.NetworkSettings.IPAddress;
      return {
        published: { conn: "127.0.0.1:18080", iperf: "127.0.0.1:15201" },
        direct: { conn: `${ip}:80`, iperf: `${ip}:5201` },
        stop: async () => void tryRun([T, "rm", "-f", "bench-srv"]),
      };
    },
    teardown: async () => {
      const ids = tryRun([T, "ps", "-aq"])?.split("\n").filter(Boolean) ?? [];
      for (let i = 0; i < ids.length; i += 200) tryRun([T, "rm", "-f", ...ids.slice(i, i + 200)], { timeoutMs: 600_000 });
    },
  };
  // The bridge and table inet tsnet are made once, as a user's first run would; the by-hand rows
  // use both.
  run([T, "run", "--rm", "-p", "8080:80", "--", "true"]);
  hello = `${ctx.work}/hello/hello`;
  return Object.assign(tool, { ready: buildHello(ctx) });
}

/** A compiled Bun hello world built as build.ts builds tsnet: the start-up floor of any Bun executable. */
async function buildHello(ctx: Ctx): Promise<void> {
  mkdirSync(`${ctx.work}/hello`, { recursive: true });
  writeFileSync(`${ctx.work}/hello/hello.ts`, 'console.log("hello");\n');
  const r = await Bun.build({
    entrypoints: [`${ctx.work}/hello/hello.ts`],
    compile: { outfile: `${ctx.work}/hello/hello` },
    minify: true,
    sourcemap: "none",
    bytecode: true,
    target: "bun",
  });
  if (!r.success) throw new Error(`building the hello world failed: ${r.logs.join(" ")}`);
}

// ---- by hand with iproute2 -------------------------------------------------------------------

function byHand(ctx: Ctx): Tool[] {
  const script = `${ctx.root}/bench/by-hand.sh`;
  const row = (layout: string, publish: boolean): Row => ({
    id: `hand-${layout}${publish ? "-p" : ""}`,
    tool: `hand-${layout}`,
    label: `bash bench/by-hand.sh ${layout}${publish ? " -p" : ""}`,
    publish,
    group: "cycle",
    cycle: () => run(["bash", script, layout, ...(publish ? ["-p"] : [])]),
  });
  let running = 0;
  // One running container made by hand: the by-hand setup without exec and teardown, on tsnet0,
  // at 10.77.100.2 upwards (far from tsnet's lowest-free leases).
  const addOne = async (i: number) => {
    const n = `hand${i}`;
    const a = `10.77.${100 + Math.floor(i / 250)}.${2 + (i % 250)}`;
    await runAsync([
      "bash",
      "-ec",
      `ip netns add ${n}
       ip link add v${n} type veth peer name eth0 netns ${n}
       ip link set v${n} master tsnet0 up
       ip -n ${n} link set lo up
       ip -n ${n} link set eth0 up
       ip -n ${n} addr add ${a}/16 dev eth0
       ip -n ${n} route add default via 10.77.0.1`,
    ]);
  };
  const clear = async () => {
    for (const f of existsSync("/run/netns") ? readdirSync("/run/netns") : []) if (/^hand\d+$/.test(f)) tryRun(["ip", "netns", "del", f]);
    running = 0;
    // The kernel removes the veth pairs after the namespaces go: wait for it, so the next phase
    // does not pay for that clean-up.
    for (let i = 0; i < 600 && /\bvhand\d+/.test(run(["ip", "-br", "link"])); i++) await Bun.sleep(100);
  };
  const version = `iproute2 ${dpkgVersion("iproute2")}, nftables ${dpkgVersion("nftables")}`;
  return [
    {
      id: "hand-netns-del",
      name: "by hand: 9 `ip` processes ending in `ip netns del`",
      version,
      rows: [row("netns-del", false), row("netns-del", true)],
      population: {
        levels: levelsFrom(process.env.BENCH_HAND_LEVELS, [0, 100, 500]),
        why: "as for the other peers (its veths share tsnet0 with the cycle's, 1,023 ports at most)",
        what: "a namespace with a veth on tsnet0, address and route, made by 7 `ip` processes",
        size: () => running,
        grow: async (to) => {
          await pool(
            Array.from({ length: Math.max(0, to - running) }, (_, i) => running + i),
            2,
            addOne,
          );
          running = to;
        },
        clear,
        rows: [row("netns-del", true)],
      },
      teardown: clear,
    },
    {
      id: "hand-link-del",
      name: "by hand with `ip link del` (9 processes)",
      version,
      rows: [row("link-del", false), row("link-del", true)],
      teardown: async () => {},
    },
  ];
}

// ---- the CNI reference plugins -----------------------------------------------------------------

function cni(ctx: Ctx): Tool | Missing {
  const dir = ["/usr/lib/cni", "/opt/cni/bin"].find((d) => ["bridge", "host-local", "portmap"].every((p) => existsSync(`${d}/${p}`)));
  const install = "apt-get install containernetworking-plugins (Debian; it brings iptables)";
  if (!dir) return { id: "cni", name: "CNI reference plugins", why: "bridge, host-local and portmap not found in /usr/lib/cni or /opt/cni/bin", install };
  if (!which("iptables")) return { id: "cni", name: "CNI reference plugins", why: "iptables not found (portmap and bridge's ipMasq use it)", install };
  mkdirSync(`${ctx.work}/cni`, { recursive: true });
  const list = referenceConfList("bench-cni", `${ctx.work}/cni/ipam`);
  writeFileSync(`${ctx.work}/cni/bench.conflist`, JSON.stringify(list, null, 2));
  const rt = new CniRuntime(list, dir);
  let seq = 0;
  const newId = () => crypto.randomUUID().replaceAll("-", "");
  /** A namespace made as a runtime makes one (here with `ip netns add`), attached by ADD. */
  const attach = (name: string, ports: PortMapping[]): Attachment => {
    run(["ip", "netns", "add", name]);
    try {
      return rt.add(newId(), `/run/netns/${name}`, ports);
    } catch (e) {
      tryRun(["ip", "netns", "del", name]);
      throw e;
    }
  };
  const detach = (name: string, a: Attachment) => {
    try {
      rt.del(a);
    } finally {
      run(["ip", "netns", "del", name]);
    }
  };
  const p8080: PortMapping[] = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }];
  const row = (publish: boolean): Row => ({
    id: publish ? "cni-p" : "cni",
    tool: "cni",
    label: `CNI ADD (bridge, host-local, portmap${publish ? " 8080:80" : ""}) + nsenter true + DEL`,
    publish,
    group: "cycle",
    cycle: () => {
      const name = `cnic${seq++}`;
      const a = attach(name, publish ? p8080 : []);
      try {
        run(["nsenter", `--net=/run/netns/${name}`, "true"]);
      } finally {
        detach(name, a);
      }
    },
  });
  const pop: { name: string; a: Attachment }[] = [];
  const clear = async () => {
    while (pop.length) {
      const { name, a } = pop.pop()!;
      try {
        detach(name, a);
      } catch (e) {
        console.error(`bench: CNI DEL of ${name}: ${(e as Error).message}`);
        tryRun(["ip", "netns", "del", name]);
      }
    }
  };
  let srv: { name: string; a: Attachment } | null = null;
  return {
    id: "cni",
    name: "CNI reference plugins (bridge + host-local + portmap)",
    version: `containernetworking-plugins ${dpkgVersion("containernetworking-plugins")}, iptables ${firstLine(tryRun(["iptables", "--version"]))}`,
    rows: [row(false), row(true)],
    population: {
      levels: levelsFrom(process.env.BENCH_CNI_LEVELS, [0, 100, 500]),
      why: "every ADD and DEL runs several iptables-nft processes whose cost grows with the rules already there; getting to 500 and back takes over a minute of the run",
      what: "a namespace attached by ADD (no published port), no process in it",
      size: () => pop.length,
      grow: async (to) => {
        while (pop.length < to) {
          const name = `cnip${pop.length}`;
          pop.push({ name, a: attach(name, []) });
        }
      },
      clear,
      rows: [row(true)],
    },
    server: async () => {
      const name = "cnisrv";
      const a = attach(name, [
        { hostPort: 18082, containerPort: 80, protocol: "tcp" },
        { hostPort: 15203, containerPort: 5201, protocol: "tcp" },
      ]);
      srv = { name, a };
      const proc = Bun.spawn(["nsenter", `--net=/run/netns/${name}`, "bash", `${ctx.root}/bench/serve.sh`], { stdio: ["ignore", "ignore", "inherit"] });
      appendFileSync(`${ctx.work}/pids`, `${proc.pid}\n`); // bench/run.sh ends it if this process dies first
      const ip = CniRuntime.address(a);
      return {
        published: { conn: "127.0.0.1:18082", iperf: "127.0.0.1:15203" },
        direct: { conn: `${ip}:80`, iperf: `${ip}:5201` },
        stop: async () => {
          proc.kill("SIGTERM");
          await proc.exited;
          if (srv) detach(srv.name, srv.a);
          srv = null;
        },
      };
    },
    teardown: clear,
  };
}

// ---- Podman with netavark ----------------------------------------------------------------------

export interface PodmanEnv {
  /** argv prefix: podman, run in its own mount namespace. */
  P: string[];
  /** The host's / rbound inside that namespace: what --rootfs gets. */
  rootfs: string;
  /** "podman X, netavark Y, conmon Z, crun W". */
  version: string;
  conmon: string;
  /** Ends the process holding Podman's mount namespace (after every container is gone). */
  endHolder(): Promise<void>;
}

const PODMAN_NAME = "Podman with netavark";
const PODMAN_INSTALL = "apt-get install podman netavark conmon crun (Debian 12: Podman 4.3, netavark 1.4)";

/**
 * Podman made to work in the throwaway host (see /work/shared/notes/peers.md): its configuration,
 * storage and state under ctx.work/podman, a mount namespace of its own, and one
 * `podman run --rm --network none` that must succeed. Used by bench/bench.ts and bench/ipv6.ts.
 */
export async function podmanEnv(ctx: Ctx): Promise<PodmanEnv | Missing> {
  const install = PODMAN_INSTALL;
  const name = PODMAN_NAME;
  const need = { podman: which("podman"), netavark: ["/usr/lib/podman/netavark", "/usr/libexec/podman/netavark"].find(existsSync), conmon: which("conmon"), crun: which("crun") };
  const lacking = Object.entries(need).filter(([, p]) => !p).map(([k]) => k);
  if (lacking.length) return { id: "podman", name, why: `${lacking.join(", ")} not found`, install };
  const dir = `${ctx.work}/podman`;
  const rootfs = `${dir}/rootfs`;
  // Podman gets a mount namespace of its own (entered with nsenter, about 1 ms per command): there crun finds no cgroup v2 hierarchy beside the v1 ones (it refuses the
  // hybrid layout), /dev/shm is a private tmpfs (Podman's lock segment), and / is rbound onto
  // rootfs (crun cannot pivot_root to / itself). Its storage, state and network files all live
  // under the throwaway host's /run.
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    `${dir}/containers.conf`,
    `[containers]
# The machine lacks CAP_SYS_RESOURCE (hard nofile 20000): Podman's defaults make crun's setrlimit fail.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
network_config_dir = "${dir}/networks"
`,
  );
  writeFileSync(`${dir}/storage.conf`, `[storage]\ndriver = "vfs"\nrunroot = "${dir}/runroot"\ngraphroot = "${dir}/storage"\n`);
  process.env.CONTAINERS_CONF = `${dir}/containers.conf`;
  process.env.CONTAINERS_STORAGE_CONF = `${dir}/storage.conf`;
  // A process holds the namespace (bench/run.sh ends it by PID if this one dies first).
  // (`unshare --mount=FILE` would need no process, but binding the namespace file failed with
  // EINVAL now and then when started from Bun.)
  mkdirSync(rootfs, { recursive: true });
  const holder = Bun.spawn(
    [
      "unshare",
      "--mount",
      "--propagation",
      "slave",
      "bash",
      "-ec",
      `if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
       mount -t tmpfs -o mode=1777 bench-shm /dev/shm
       mount --rbind / ${rootfs}
       echo ready
       exec sleep infinity`,
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  appendFileSync(`${ctx.work}/pids`, `${holder.pid}\n`);
  const endHolder = async () => {
    holder.kill("SIGTERM");
    await holder.exited;
  };
  writeFileSync(`${dir}/holder.pid`, `${holder.pid}\n`);
  const first = await Promise.race([holder.stdout.getReader().read(), holder.exited.then(() => ({ value: undefined }))]);
  const ready = first.value ? new TextDecoder().decode(first.value) : "";
  if (!ready.startsWith("ready")) {
    const err = await new Response(holder.stderr).text();
    await endHolder();
    return { id: "podman", name, why: `its mount namespace could not be made: ${err.trim()}`, install };
  }
  const P = ["nsenter", `--mount=/proc/${holder.pid}/ns/mnt`, "podman"];
  const podmanRun = (args: string[]) => [...P, "run", ...args];
  try {
    run(podmanRun(["--rm", "--network", "none", "--rootfs", rootfs, "true"]));
  } catch (e) {
    await endHolder();
    return { id: "podman", name, why: `\`podman run --rm --rootfs\` failed here: ${(e as Error).message}`, install };
  }
  const version = `podman ${firstLine(tryRun(["podman", "--version"])).replace(/^podman version /, "")}, netavark ${firstLine(tryRun([need.netavark!, "--version"])).replace(/^netavark /, "")}, conmon ${firstLine(tryRun(["conmon", "--version"])).replace(/^conmon version /, "")}, crun ${firstLine(tryRun(["crun", "--version"])).replace(/^crun version /, "")}`;
  return { P, rootfs, version, conmon: realpathSync(need.conmon!), endHolder };
}

async function podman(ctx: Ctx): Promise<Tool[] | Missing> {
  const name = PODMAN_NAME;
  const install = PODMAN_INSTALL;
  const env = await podmanEnv(ctx);
  if ("install" in env) return env;
  const { P, rootfs, version, endHolder } = env;
  const podmanRun = (args: string[]) => [...P, "run", ...args];
  // The default network (podman0, 10.88.0.0/16) is kept up by one container, as tsnet0 stays up:
  // netavark removes a bridge with its last container. Network "benchmade" has none kept, so
  // its runs make and remove their bridge each time.
  try {
    run([...P, "run", "-d", "--name", "bench-keep", "--rootfs", rootfs, "sleep", "inf"]);
    run([...P, "network", "create", "--disable-dns", "--subnet", "10.89.0.0/24", "benchmade"]);
  } catch (e) {
    tryRun([...P, "rm", "-a", "-f", "-t", "0"]);
    await endHolder();
    return { id: "podman", name, why: `setting up its networks failed: ${(e as Error).message}`, install };
  }
  const row = (made: boolean, publish: boolean): Row => ({
    id: `podman${made ? "-made" : ""}${publish ? "-p" : ""}`,
    tool: made ? "podman-made" : "podman",
    label: `podman run --rm${made ? " --network benchmade" : ""}${publish ? " -p 8080:80" : ""} --rootfs DIR true`,
    publish,
    group: "cycle",
    cycle: () => run(podmanRun(["--rm", ...(made ? ["--network", "benchmade"] : []), ...(publish ? ["-p", "8080:80"] : []), "--rootfs", rootfs, "true"])),
  });
  let running = 0;
  const conmon = env.conmon;
  const clearPop = async () => {
    const names = Array.from({ length: running }, (_, i) => `pod${i}`);
    for (let i = 0; i < names.length; i += 50) tryRun([...P, "rm", "-f", "-t", "0", ...names.slice(i, i + 50)], { timeoutMs: 600_000 });
    running = 0;
  };
  return [
    {
      id: "podman",
      name: `${name} (bridge kept up by another container)`,
      version,
      rows: [row(false, false), row(false, true)],
      population: {
        levels: levelsFrom(process.env.BENCH_PODMAN_LEVELS, [0, 100, 500]),
        why: "every container keeps a conmon (about 2 MiB, 1 GiB at 500); getting to 500 and back takes over a minute of the run",
        what: "`podman run -d --rootfs DIR sleep inf` (plus the one keeping the bridge up)",
        size: () => running,
        grow: async (to) => {
          await pool(
            Array.from({ length: Math.max(0, to - running) }, (_, i) => running + i),
            2,
            async (i) => void (await runAsync([...P, "run", "-d", "--name", `pod${i}`, "--rootfs", rootfs, "sleep", "inf"])),
          );
          running = to;
        },
        clear: clearPop,
        rows: [row(false, true)],
        memory: () => ({ ...memoryOf(pidsByExe(conmon)), what: "every conmon (one per container)" }),
      },
      server: async () => {
        run(podmanRun(["-d", "--name", "bench-srv", "-p", "18081:80", "-p", "15202:5201", "--rootfs", rootfs, "bash", `${ctx.root}/bench/serve.sh`]));
        const ip = run([...P, "inspect", "bench-srv", "--format", "{{.NetworkSettings.IPAddress}}"]).trim();
        return {
          published: { conn: "127.0.0.1:18081", iperf: "127.0.0.1:15202" },
          direct: { conn: `${ip}:80`, iperf: `${ip}:5201` },
          stop: async () => void tryRun([...P, "rm", "-f", "-t", "0", "bench-srv"]),
        };
      },
      // Torn down after podman-made (tools are torn down in reverse order): the holder of the
      // mount namespace goes last.
      teardown: async () => {
        await clearPop();
        tryRun([...P, "rm", "-a", "-f", "-t", "0"], { timeoutMs: 600_000 });
        await endHolder();
      },
    },
    {
      id: "podman-made",
      name: `${name} (bridge made and removed each run)`,
      version,
      rows: [row(true, false), row(true, true)],
      teardown: async () => void tryRun([...P, "network", "rm", "-f", "benchmade"]),
    },
  ];
}

// ---- Docker, unpacked and started inside the throwaway host -------------------------------------

/**
 * Debian's docker.io, containerd and runc as bench/deps.sh unpacked them (never installed), run
 * here with everything of their own under the throwaway host's /run: containerd with its own
 * root, state and socket; dockerd with its own data root (overlay2), exec root, pidfile, API
 * socket, configuration file and key file (dockerd 20.10 writes /etc/docker/key.json unless told
 * otherwise), the cgroupfs driver and a cgroup parent named for this run. docker0 and dockerd's
 * iptables-nft rules land in the throwaway host's network namespace. The image is busybox-static's
 * busybox, made with `docker import` (the throwaway host has no network to pull one).
 * cgroups are shared with the machine: bench/run.sh removes every one under the parent named in
 * WORK/docker/cgroup-parent (runc makes one in each v1 hierarchy and in the unified one).
 */
async function docker(ctx: Ctx): Promise<Tool | Missing> {
  const name = "Docker (docker.io, containerd, runc)";
  const cache = process.env.BENCH_DOCKER_DIR ?? `${ctx.root}/bench/.cache/docker`;
  const install = "run `bash bench/deps.sh` (it downloads Debian's docker.io, containerd and runc with `apt-get download` and unpacks them into bench/.cache/docker; nothing is installed), and have busybox-static";
  if (!existsSync(`${cache}/unpacked`)) return { id: "docker", name, why: `${cache} holds no unpacked docker.io, containerd and runc`, install };
  const root = `${cache}/root`;
  if (!existsSync("/bin/busybox")) return { id: "docker", name, why: "/bin/busybox (busybox-static) not found: the image is made from it", install };
  if (!which("iptables")) return { id: "docker", name, why: "iptables not found (dockerd's bridge driver runs it)", install };
  const w = `${ctx.work}/docker`;
  mkdirSync(w, { recursive: true });
  // A name no other run on this machine picks: cgroups are shared, and bench/run.sh removes these.
  const cgroupParent = `tsnet-bench-docker-${crypto.randomUUID().slice(0, 8)}`;
  writeFileSync(`${w}/cgroup-parent`, `${cgroupParent}\n`);
  const env = { ...process.env, PATH: `${root}/usr/bin:${root}/usr/sbin:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}` };
  writeFileSync(
    `${w}/containerd.toml`,
    `version = 2
root = "${w}/containerd/root"
state = "${w}/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${w}/containerd.sock"
[ttrpc]
  address = "${w}/containerd.sock.ttrpc"
`,
  );
  writeFileSync(`${w}/daemon.json`, `${JSON.stringify({ "deprecated-key-path": `${w}/key.json` })}\n`);
  const daemons: { name: string; proc: ReturnType<typeof Bun.spawn> }[] = [];
  const start = (argv: string[], log: string) => {
    const fd = openSync(log, "a");
    const proc = Bun.spawn(argv, { env, stdin: "ignore", stdout: fd, stderr: fd });
    closeSync(fd);
    writeFileSync(`${w}/${argv[0]!.split("/").at(-1)}.pid`, `${proc.pid}\n`); // bench/run.sh ends it if this process dies first
    daemons.push({ name: argv[0]!, proc });
    return proc;
  };
  /** Stops the daemons by PID, dockerd first (it stops its containers' tasks through containerd). */
  const stopDaemons = async () => {
    for (const d of [...daemons].reverse()) {
      d.proc.kill("SIGTERM");
      const ended = await Promise.race([d.proc.exited.then(() => true), Bun.sleep(20_000).then(() => false)]);
      if (!ended) {
        console.error(`bench: ${d.name} did not stop in 20 s after SIGTERM; killing it`);
        d.proc.kill("SIGKILL");
        await d.proc.exited;
      }
    }
    daemons.length = 0;
    // Gone: bench/run.sh must not signal whatever gets these PIDs next.
    for (const f of ["containerd.pid", "dockerd.pid"]) rmSync(`${w}/${f}`, { force: true });
  };
  // Set up but not working: the daemon's own words are the lead.
  const failed = "fix what the quoted log lines say (bench/lib/tools.ts starts it), or leave Docker out with BENCH_SKIP=docker";
  const logTail = (log: string) => (tryRun(["tail", "-n", "3", log]) ?? "").trim().replaceAll("\n", " | ");
  /** Until what() holds, SECONDS pass, or the daemon exits (its log then says why). */
  const waitFor = async (what: () => boolean, seconds: number, proc: ReturnType<typeof Bun.spawn>) => {
    for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline && proc.exitCode === null; await Bun.sleep(100)) if (what()) return true;
    return false;
  };
  const ctrd = start([`${root}/usr/bin/containerd`, "--config", `${w}/containerd.toml`], `${w}/containerd.log`);
  if (!(await waitFor(() => existsSync(`${w}/containerd.sock`), 30, ctrd))) {
    await stopDaemons();
    return { id: "docker", name, why: `containerd did not open its socket (30 s at most): ${logTail(`${w}/containerd.log`)}`, install: failed };
  }
  const dockerd = start(
    [
      `${root}/usr/sbin/dockerd`,
      "--config-file", `${w}/daemon.json`,
      "--data-root", `${w}/data`,
      "--exec-root", `${w}/exec`,
      "--pidfile", `${w}/dockerd.pidfile`,
      "-H", `unix://${w}/docker.sock`,
      "--containerd", `${w}/containerd.sock`,
      "--exec-opt", "native.cgroupdriver=cgroupfs",
      "--cgroup-parent", cgroupParent,
      "--storage-driver", "overlay2",
      "--userland-proxy-path", `${root}/usr/sbin/docker-proxy`,
    ],
    `${w}/dockerd.log`,
  );
  const D = [`${root}/usr/bin/docker`, "-H", `unix://${w}/docker.sock`];
  let server = "";
  if (!(await waitFor(() => Boolean((server = tryRun([...D, "version", "--format", "{{.Server.Version}}"], { env }) ?? "")), 60, dockerd))) {
    await stopDaemons();
    return { id: "docker", name, why: `dockerd did not answer (60 s at most): ${logTail(`${w}/dockerd.log`)}`, install: failed };
  }
  const image = "busybox";
  try {
    mkdirSync(`${w}/image/bin`, { recursive: true });
    run(["cp", "/bin/busybox", `${w}/image/bin/busybox`]);
    for (const c of ["sh", "true", "sleep", "chroot"]) run(["ln", "-sf", "busybox", `${w}/image/bin/${c}`]);
    run(["tar", "-C", `${w}/image`, "-cf", `${w}/image.tar`, "."]);
    run([...D, "import", `${w}/image.tar`, image], { env });
    run([...D, "run", "--rm", "--network", "bridge", image, "true"], { env });
  } catch (e) {
    await stopDaemons();
    return { id: "docker", name, why: `a first \`docker run\` of the imported busybox failed: ${(e as Error).message}`, install: failed };
  }
  const pkgs = (tryRun(["cat", `${cache}/versions`]) ?? "").trim().split("\n").join(", ");
  const version = `Docker ${server.trim()} (${pkgs}; overlay2, cgroupfs, userland proxy on)`;
  const row = (publish: boolean): Row => ({
    id: publish ? "docker-p" : "docker",
    tool: "docker",
    label: `docker run --rm --network bridge${publish ? " -p 8080:80" : ""} ${image} true`,
    publish,
    group: "cycle",
    cycle: () => run([...D, "run", "--rm", "--network", "bridge", ...(publish ? ["-p", "8080:80"] : []), image, "true"], { env }),
  });
  const shim = realpathSync(`${root}/usr/bin/containerd-shim-runc-v2`);
  let running = 0;
  const removeAll = () => {
    const ids = tryRun([...D, "ps", "-aq"], { env })?.split("\n").filter(Boolean) ?? [];
    for (let i = 0; i < ids.length; i += 50) tryRun([...D, "rm", "-f", ...ids.slice(i, i + 50)], { env, timeoutMs: 600_000 });
  };
  const clearPop = async () => {
    const names = Array.from({ length: running }, (_, i) => `dk${i}`);
    for (let i = 0; i < names.length; i += 50) tryRun([...D, "rm", "-f", ...names.slice(i, i + 50)], { env, timeoutMs: 600_000 });
    running = 0;
  };
  return {
    id: "docker",
    name,
    version,
    rows: [row(false), row(true)],
    population: {
      levels: levelsFrom(process.env.BENCH_DOCKER_LEVELS, [0, 100, 500]),
      why: "every container keeps a containerd-shim-runc-v2; getting to 500 and back takes minutes of the run",
      what: `\`docker run -d --network bridge ${image} sleep 1000000000\``,
      size: () => running,
      grow: async (to) => {
        await pool(
          Array.from({ length: Math.max(0, to - running) }, (_, i) => running + i),
          2,
          async (i) => void (await runAsync([...D, "run", "-d", "--network", "bridge", "--name", `dk${i}`, image, "sleep", "1000000000"], { env })),
        );
        running = to;
      },
      clear: clearPop,
      rows: [row(true)],
      memory: () => ({ ...memoryOf(pidsByExe(shim)), what: "every containerd-shim-runc-v2 (one per container)" }),
    },
    // The servers run from the throwaway host's own root (python3, iperf3), as Podman's do from
    // its rbind of /: the busybox container chroots into / bound at /host.
    server: async () => {
      run([...D, "run", "-d", "--name", "bench-srv", "--network", "bridge", "-p", "18083:80", "-p", "15204:5201", "-v", "/:/host", image, "chroot", "/host", "bash", `${ctx.root}/bench/serve.sh`], { env });
      const ip = run([...D, "inspect", "bench-srv", "--format", "{{.NetworkSettings.IPAddress}}"], { env }).trim();
      return {
        published: { conn: "127.0.0.1:18083", iperf: "127.0.0.1:15204" },
        direct: { conn: `${ip}:80`, iperf: `${ip}:5201` },
        stop: async () => void tryRun([...D, "rm", "-f", "bench-srv"], { env }),
      };
    },
    teardown: async () => {
      await clearPop();
      removeAll();
      await stopDaemons();
    },
  };
}

/** Every tool that works here, in table order, and the peers that are missing. */
export async function discover(ctx: Ctx, skip: Set<string>): Promise<{ tools: Tool[]; missing: Missing[] }> {
  const tools: Tool[] = [];
  const missing: Missing[] = [];
  const add = (t: Tool | Tool[] | Missing) => {
    if ("install" in t) missing.push(t);
    else for (const x of Array.isArray(t) ? t : [t]) if (!skip.has(x.id)) tools.push(x);
  };
  add(floor());
  const ts = tsnet(ctx) as Tool & { ready: Promise<void> };
  await ts.ready;
  add(ts);
  add(byHand(ctx));
  if (!skip.has("cni")) add(cni(ctx));
  if (!skip.has("podman")) add(await podman(ctx));
  if (!skip.has("docker")) add(await docker(ctx));
  return { tools, missing };
}
