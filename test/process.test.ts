// What the command sees of tsnet: stdio passed through, exit status, signals forwarded.
import { beforeAll, describe, expect, test } from "bun:test";
import {
  TSNET, alive, assertThrowawayHost, containerCgroups, leases, netnsNames, pidsByArgv, procState, records, sh, tsnet, veths, waitFor,
} from "./helpers.ts";

beforeAll(() => assertThrowawayHost());

describe("stdio and exit status", () => {
  test("stdin (with -i), stdout and stderr pass through untouched", () => {
    const r = tsnet(["run", "--rm", "-i", "--", "wc", "-l"], { stdin: "a\nb\n" });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("2");
    const e = tsnet(["run", "--rm", "--", "sh", "-c", "echo out; echo err >&2"]);
    expect(e.stdout).toBe("out\n");
    expect(e.stderr).toBe("err\n");
  });

  test("tsnet exits with the command's status", () => {
    expect(tsnet(["run", "--rm", "--", "sh", "-c", "exit 7"]).code).toBe(7);
    expect(tsnet(["run", "--rm", "--network", "none", "--", "false"]).code).toBe(1);
  });

  test("128+N when signal N killed the command", () => {
    expect(tsnet(["run", "--rm", "--", "sh", "-c", "kill -KILL $$"]).code).toBe(137);
  });

  test("127 when the command is not found, 126 when it cannot be executed; nothing is left", () => {
    const nf = tsnet(["run", "--rm", "--", "no-such-command-here"]);
    expect(nf.code).toBe(127);
    expect(nf.stderr.trim().split("\n").length).toBe(1);
    expect(nf.stderr).toContain("no-such-command-here");
    expect(tsnet(["run", "--rm", "--", "/etc/hostname"]).code).toBe(126);
    expect(veths()).toEqual([]);
    expect(netnsNames()).toEqual([]);
    expect(leases()).toEqual([]);
    expect(containerCgroups()).toEqual([]);
  });

  test("options end at the first word that is not an option", () => {
    const r = tsnet(["run", "--rm", "--network", "none", "sh", "-c", "echo $0 $1", "--rm", "--network"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("--rm --network");
  });

  test("without --rm the exited container's record stays, with its exit code", () => {
    expect(tsnet(["run", "--name", "kept", "--", "sh", "-c", "exit 3"]).code).toBe(3);
    const rec = records().find((r) => r.name === "kept");
    expect(rec).toMatchObject({ status: "exited", exitCode: 3 });
    expect(veths()).toEqual([]);
    expect(leases()).toEqual([]);
    // The name stays taken while the record exists, as in Docker.
    const again = tsnet(["run", "--name", "kept", "--", "true"]);
    expect(again.code).toBe(125);
    expect(again.stderr).toContain('"kept" is already in use');
  });
});

describe("signals", () => {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const) {
    test(`${sig} to tsnet reaches the command, and everything is cleaned up`, async () => {
      const name = `sig-${sig.toLowerCase()}`;
      // The command reports the signal it got and exits 3, so its status proves delivery.
      const script = `trap 'echo got ${sig.slice(3)}; exit 3' ${sig.slice(3)}; echo ready; while :; do sleep 0.05; done`;
      const p = Bun.spawn([TSNET, "run", "--rm", "--name", name, "--", "sh", "-c", script], { stdout: "pipe", stderr: "pipe" });
      const reader = p.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain("ready");
      await waitFor("record", () => records().find((r) => r.name === name && r.status === "running"));
      p.kill(sig);
      expect(await p.exited).toBe(3);
      const rest = new TextDecoder().decode((await reader.read()).value);
      expect(first + rest).toContain(`got ${sig.slice(3)}`);
      expect(veths()).toEqual([]);
      expect(netnsNames()).toEqual([]);
      expect(records().find((r) => r.name === name)).toBeUndefined();
    });
  }
});

// A command that reports every signal it receives, one line each, with its sender: the signals
// are blocked and taken with sigtimedwait, so each delivery is seen with its siginfo. It exits 3
// after 1.5 s without a signal.
const REPORTER = `import signal, sys
names = sys.argv[1:]
sigs = {getattr(signal, n) for n in names}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
print("ready", flush=True)
while True:
    info = signal.sigtimedwait(sigs, 1.5)
    if info is None: break
    print("%s from %d code %d" % (signal.Signals(info.si_signo).name, info.si_pid, info.si_code), flush=True)
sys.exit(3)`;

/** A foreground run of REPORTER, once it has said "ready"; `out` resolves to all it printed. */
async function reporter(name: string, signals: string[]) {
  const p = Bun.spawn([TSNET, "run", "--rm", "--network", "none", "--name", name, "--", "python3", "-c", REPORTER, ...signals], { stdout: "pipe", stderr: "pipe" });
  const reader = p.stdout.getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name} ended before it was ready: ${text}`);
    text += new TextDecoder().decode(value);
  }
  const out = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return text;
      text += new TextDecoder().decode(value);
    }
  })();
  return { p, out };
}

describe("exact signal delivery", () => {
  test("Ctrl-C on a terminal gives the command exactly one SIGINT, the one tsnet forwards", () => {
    // A pseudo-terminal: tsnet is its session's foreground process group, as in a shell.
    const driver = String.raw`import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def pump(until, timeout):
    global out
    end = time.time() + timeout
    while time.time() < end and not until(out):
        if not select.select([fd], [], [], 0.05)[0]: continue
        try: data = os.read(fd, 4096)
        except OSError: return
        if not data: return
        out += data
pump(lambda o: b"ready" in o, 20)
os.write(fd, b"\x03")
pump(lambda o: False, 10)
status = os.waitpid(pid, 0)[1]
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
print("tsnet %d exit %d" % (pid, os.waitstatus_to_exitcode(status)))`;
    const r = sh(["python3", "-c", driver, TSNET, "run", "--rm", "--network", "none", "--", "python3", "-c", REPORTER, "SIGINT"]);
    const tsnetPid = Number(r.stdout.match(/^tsnet (\d+) exit 3$/m)?.[1]);
    expect(tsnetPid).toBeGreaterThan(0);
    // The terminal echoes ^C wherever it lands in the output, so the lines are matched anywhere.
    const got = r.stdout.match(/SIGINT from \d+ code \d+/g) ?? [];
    // si_code 0 is SI_USER (kill(2)); the terminal's own SIGINT would say SI_KERNEL (128).
    expect(got).toEqual([`SIGINT from ${tsnetPid} code 0`]);
  });

  test("with -i and without -t, a terminal on stdin is still read and written by the command, which leads a session of its own", () => {
    const driver = String.raw`import os, pty, sys, time, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
end = time.time() + 20
sent = False
while time.time() < end:
    if not sent and b"ask" in out:
        os.write(fd, b"hello\n")
        sent = True
    if not select.select([fd], [], [], 0.05)[0]: continue
    try: data = os.read(fd, 4096)
    except OSError: break
    if not data: break
    out += data
sys.stdout.write(out.decode().replace("\r", ""))
print("exit %d" % os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))`;
    const cmd = 'echo ask; read x; echo "got $x"; tty; ps -o sid= -p $$ | tr -d " "; echo "$$"';
    const r = sh(["python3", "-c", driver, TSNET, "run", "--rm", "-i", "--network", "none", "--", "sh", "-c", cmd]);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toContain("got hello");
    expect(lines).toContain("exit 0");
    expect(lines.find((l) => l.startsWith("/dev/pts/"))).toBeDefined();
    // The shell's session is its own (sid = its pid), not the terminal's.
    const i = lines.indexOf("got hello");
    expect(lines[i + 2]).toBe(lines[i + 3]);
  });

  test("kill -INT <tsnet pid> gives the command exactly one SIGINT", async () => {
    const { p, out } = await reporter("int-once", ["SIGINT"]);
    p.kill("SIGINT");
    expect(await p.exited).toBe(3);
    expect((await out).split("\n").filter((l) => l.startsWith("SIGINT"))).toEqual([`SIGINT from ${p.pid} code 0`]);
  });

  test("every signal tsnet can catch reaches the command exactly once, and none kills tsnet", async () => {
    const sent = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGABRT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGTERM", "SIGCONT", "SIGURG", "SIGXCPU", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO"];
    const { p, out } = await reporter("all-signals", sent);
    for (const sig of sent) {
      p.kill(sig as NodeJS.Signals);
      await Bun.sleep(40);
    }
    // Real-time signals cannot be handled in Bun: tsnet ignores them rather than die.
    expect(sh(["kill", "-s", "RTMIN", String(p.pid)]).code).toBe(0);
    expect(await p.exited).toBe(3);
    const got = (await out).split("\n").filter((l) => l.startsWith("SIG"));
    expect(got.map((l) => l.split(" ")[0]).sort()).toEqual([...sent].sort());
    expect(got.every((l) => l.endsWith(`from ${p.pid} code 0`))).toBe(true);
    expect(netnsNames()).toEqual([]);
  });

  test("USR1 reaches the command, and tsnet exits with the command's status", async () => {
    const p = Bun.spawn([TSNET, "run", "--rm", "--name", "usr1", "--", "sh", "-c", "trap 'exit 5' USR1; echo ready; while :; do sleep 0.05; done"], { stdout: "pipe" });
    await waitFor("running", () => records().find((r) => r.name === "usr1" && r.status === "running"));
    await Bun.sleep(100);
    p.kill("SIGUSR1");
    expect(await p.exited).toBe(5);
    expect(netnsNames()).toEqual([]);
    expect(records().find((r) => r.name === "usr1")).toBeUndefined();
  });

  test("kill -USR1 no longer orphans the command: it dies of it, tsnet reports 138 and leaves nothing", async () => {
    const p = Bun.spawn([TSNET, "run", "--rm", "--name", "usr1dfl", "--", "sleep", "67"], { stdout: "pipe" });
    await waitFor("running", () => records().find((r) => r.name === "usr1dfl" && r.status === "running"));
    p.kill("SIGUSR1");
    expect(await p.exited).toBe(138);
    expect(pidsByArgv(["sleep", "67"])).toEqual([]);
    expect(netnsNames()).toEqual([]);
    expect(veths()).toEqual([]);
    expect(containerCgroups()).toEqual([]);
  });

  test("once the first process has exited, a forwarded signal reaches every process that remains", async () => {
    // Two daemons in sessions of their own; the command itself exits at once.
    const daemon = [
      "import os, signal, sys, time",
      "def bye(*_):",
      "    os.write(1, ('USR2 %s\\n' % sys.argv[1]).encode())",
      "    os._exit(0)",
      "signal.signal(signal.SIGUSR2, bye)",
      "os.write(1, ('ready %s\\n' % sys.argv[1]).encode())",
      "while True: time.sleep(1)",
    ].join("\n");
    const script = 'for i in 1 2; do setsid -f python3 -c "$0" $i; done';
    const p = Bun.spawn([TSNET, "run", "--rm", "--name", "fanout", "--", "sh", "-c", script, daemon], { stdout: "pipe" });
    const reader = p.stdout.getReader();
    let text = "";
    while (!(text.includes("ready 1\n") && text.includes("ready 2\n"))) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the daemons ended before they were ready: ${text}`);
      text += new TextDecoder().decode(value);
    }
    p.kill("SIGUSR2");
    // 128 + SIGUSR2: the signal forwarded through tsnet ended the rest.
    expect(await p.exited).toBe(140);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.trim().split("\n").filter((l) => l.startsWith("USR2")).sort()).toEqual(["USR2 1", "USR2 2"]);
  });

  test("TSTP stops the container's processes and tsnet; CONT resumes them", async () => {
    const p = Bun.spawn([TSNET, "run", "--rm", "--name", "tstp", "--", "sh", "-c", "sleep 68 & exec sleep 69"], { stdout: "pipe" });
    await waitFor("both sleeps", () => pidsByArgv(["sleep", "68"]).length && pidsByArgv(["sleep", "69"]).length);
    const sleeps = [...pidsByArgv(["sleep", "68"]), ...pidsByArgv(["sleep", "69"])];
    p.kill("SIGTSTP");
    await waitFor("all stopped", () => [p.pid, ...sleeps].every((x) => procState(x) === "T"));
    p.kill("SIGCONT");
    await waitFor("all resumed", () => [p.pid, ...sleeps].every((x) => procState(x) === "S"));
    expect(tsnet(["stop", "tstp"]).code).toBe(0);
    expect(await p.exited).toBe(143);
    expect(sleeps.some(alive)).toBe(false);
  });
});
