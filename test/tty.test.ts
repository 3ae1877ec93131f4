// `-t` and `-i` as a person uses them: the test holds the master side of a pseudo-terminal (the
// person's terminal, 100 columns by 40 rows), runs a shell script on it that calls tsnet, types
// keys into it (Ctrl-C, Ctrl-Z as the bytes a keyboard sends) and reads the screen. The caller's
// terminal settings are read with `stty -g` by that outer script, before and after tsnet.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { TSNET, assertThrowawayHost, pidsByArgv, records, removeAllContainers, runDetached, sh, tsnet, waitFor } from "./helpers.ts";

beforeAll(() => assertThrowawayHost());
afterEach(() => removeAllContainers());

const dir = mkdtempSync("/tmp/tsnet-tty-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// The shell in the container: its prompt from an rc file (bash does not take PS1 from the
// environment), no line editor (its escapes would only clutter the screen).
writeFileSync(`${dir}/rc`, `PS1='PROMPT$ '\n`);
const SHELL = `bash --rcfile ${dir}/rc --noediting -i`;

const PROMPT = "PROMPT$ ";
const CTRL_C = "\x03", CTRL_Z = "\x1a";
// termios c_lflag bits (asm-generic/termbits.h).
const ISIG = 0x1, ICANON = 0x2, ECHO = 0x8;

/** A person at a terminal: `script` runs in bash on a pty whose master the test holds. */
class Person {
  screen = "";
  readonly proc: Bun.Subprocess;
  private readonly dec = new TextDecoder();

  constructor(script: string) {
    this.proc = Bun.spawn(["bash", "--norc", "--noprofile", "-c", script], {
      env: { ...process.env, TERM: "xterm", TSNET },
      terminal: { cols: 100, rows: 40, data: (_t, d) => (this.screen += this.dec.decode(d, { stream: true })) },
    });
  }

  /** Where the screen is now: what comes after is what the next keys cause. */
  get mark(): number {
    return this.screen.length;
  }

  type(keys: string): void {
    this.proc.terminal!.write(keys);
  }

  /** Waits until `re` shows on the screen after `from`; returns the match. */
  async see(re: RegExp, from = 0, ms = 15000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.screen.slice(from).match(re);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${re} on the screen; it shows:\n${JSON.stringify(this.screen.slice(from))}`);
      await Bun.sleep(20);
    }
  }

  /** Types a line and waits for the shell's next prompt; returns what the line printed. */
  async run(line: string): Promise<string> {
    const from = this.mark;
    this.type(`${line}\r`);
    const m = await this.see(new RegExp(`\\r\\n([\\s\\S]*?)${PROMPT.replace("$", "\\$")}$`), from);
    return m[1]!;
  }

  async end(): Promise<void> {
    await this.proc.exited;
    this.proc.terminal?.close();
  }
}

/** The outer script: the terminal's settings before and after `cmd`, and cmd's status. */
function around(cmd: string, name: string): string {
  return `stty -g > ${dir}/${name}.before; ${cmd}; echo "TSNET-EXIT:$?"; stty -g > ${dir}/${name}.after; sleep 0.2`;
}

function settings(name: string): { before: string; after: string } {
  return { before: readFileSync(`${dir}/${name}.before`, "utf8"), after: readFileSync(`${dir}/${name}.after`, "utf8") };
}

/** The checks of a shell session, in `run -it` and in `exec -it` alike. */
async function shellSession(p: Person): Promise<void> {
  await p.see(new RegExp(PROMPT.replace("$", "\\$")));
  // Its own pseudo-terminal, with the person's window size.
  expect(await p.run("tty")).toMatch(/^\/dev\/pts\/\d+\r\n$/);
  expect(await p.run("stty size")).toBe("40 100\r\n");
  // Job control: no complaint, and `set -m` sticks.
  expect(p.screen).not.toContain("no job control");
  expect(await p.run("set -m; echo flags:$-")).toMatch(/flags:\S*m/);
  expect(await p.run("echo hi >/dev/tty")).toBe("hi\r\n");
  // Ctrl-C ends the foreground job, and the shell prompts again.
  let from = p.mark;
  p.type("sleep 30\r");
  await p.see(/sleep 30\r\n/, from);
  await Bun.sleep(300);
  from = p.mark;
  p.type(CTRL_C);
  await p.see(new RegExp(`${PROMPT.replace("$", "\\$")}$`), from, 5000);
  expect(await p.run("echo after-int")).toBe("after-int\r\n");
  // Ctrl-Z stops the foreground job (bash says so) and the session goes on.
  from = p.mark;
  p.type("sleep 31\r");
  await p.see(/sleep 31\r\n/, from);
  await Bun.sleep(300);
  from = p.mark;
  p.type(CTRL_Z);
  await p.see(/Stopped\s+sleep 31/, from, 5000);
  await p.see(new RegExp(`${PROMPT.replace("$", "\\$")}$`), from, 5000);
  expect(await p.run("jobs")).toMatch(/Stopped\s+sleep 31/);
  expect(await p.run("kill %1; echo killed")).toContain("killed");
  // bash learns of the job's end from SIGCHLD, after the prompt may already be back; until then
  // it counts the job as stopped, and `exit` would only warn "There are stopped jobs."
  for (let i = 0; /Stopped/.test(await p.run("jobs")); i++) {
    if (i === 50) throw new Error("bash still counts the killed job as stopped");
    await Bun.sleep(100);
  }
}

describe("run -it", () => {
  test("a shell with a terminal of its own: tty, window size, job control, Ctrl-C and Ctrl-Z for its jobs; exit ends the session with its status, terminal settings as they were", async () => {
    const p = new Person(around(`"$TSNET" run -it --rm --name tty1 -- ${SHELL}`, "run"));
    await shellSession(p);
    // tsnet is still there, running the session, with the person's terminal in raw mode (no
    // line editing, no echo: every key goes to the container's terminal as it is typed).
    expect(p.screen).not.toContain("TSNET-EXIT");
    expect(p.proc.terminal!.localFlags & (ICANON | ECHO | ISIG)).toBe(0);
    // A job left in the background does not keep the session: exit ends it at once, with bash's status.
    await p.run("sleep 1000 &");
    // The job has become sleep: until its exec, the forked shell still ignores SIGTERM, as
    // interactive bash does, and would outlive the TERM the session's end sends it.
    await waitFor("sleep 1000 to start", () => pidsByArgv(["sleep", "1000"]).length > 0, 5000);
    const from = p.mark;
    const t0 = Date.now();
    p.type("exit 7\r");
    await p.see(/TSNET-EXIT:7/, from, 8000);
    expect(Date.now() - t0).toBeLessThan(5000);
    await p.end();
    expect(pidsByArgv(["sleep", "1000"])).toEqual([]);
    const s = settings("run");
    expect(s.after).toBe(s.before);
    expect(records().filter((r) => r.name === "tty1")).toEqual([]);
  });

  test("kill -9 of the container's shell ends the session and gives the terminal its settings back", async () => {
    const p = new Person(around(`"$TSNET" run -it --name tty2 -- ${SHELL}`, "kill9"));
    await p.see(new RegExp(PROMPT.replace("$", "\\$")));
    expect(p.proc.terminal!.localFlags & (ICANON | ECHO | ISIG)).toBe(0);
    const rec = await waitFor("tty2 to run", () => records().find((r) => r.name === "tty2" && r.status === "running"));
    expect(sh(["kill", "-9", String(rec.pid)]).code).toBe(0);
    await p.see(/TSNET-EXIT:137/, 0, 8000);
    await p.end();
    const s = settings("kill9");
    expect(s.after).toBe(s.before);
  });

  test("a terminal even when the caller has none; output relayed", () => {
    const r = tsnet(["run", "--rm", "-t", "--", "sh", "-c", "tty; test -t 0 && test -t 1 && echo all-terminal"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\nall-terminal\r\n$/);
  });

  test("-it with stdin a pipe: the keys are its input, and its end ends the shell", () => {
    const r = sh([TSNET, "run", "--rm", "-it", "--", "sh", "-c", "test -t 0 || exit 9; read x; echo got:$x"], { stdin: "hello\n" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("got:hello");
  });

  test("run -d -t: the command has a terminal, its output in the log, and ends the container with its first process", async () => {
    runDetached(["-t", "--name", "dtty", "--", "sh", "-c", "tty; sleep 1000 & sleep 0.5; exit 3"]);
    const rec = await waitFor("dtty to end", () => records().find((r) => r.name === "dtty" && r.status === "exited"), 8000);
    expect(rec.exitCode).toBe(3);
    expect(tsnet(["logs", "dtty"]).stdout).toMatch(/^\/dev\/pts\/\d+\r?\n/);
  });
});

describe("exec -it", () => {
  test("the same shell session in a running container; Ctrl-Z stops the job, not tsnet", async () => {
    runDetached(["--name", "host1", "--", "sleep", "1000"]);
    const p = new Person(around(`"$TSNET" exec -it host1 ${SHELL}`, "exec"));
    await shellSession(p);
    expect(p.screen).not.toContain("TSNET-EXIT");
    const from = p.mark;
    p.type("exit 5\r");
    await p.see(/TSNET-EXIT:5/, from, 8000);
    await p.end();
    const s = settings("exec");
    expect(s.after).toBe(s.before);
    // The container itself runs on.
    expect(records().find((r) => r.name === "host1")?.status).toBe("running");
  });
});

describe("stdin only with -i", () => {
  test("without -i the command reads /dev/null; with -i the pipe", () => {
    expect(sh(["bash", "-c", `echo hi | "${TSNET}" run --rm -- cat`]).stdout).toBe("");
    expect(sh(["bash", "-c", `echo hi | "${TSNET}" run --rm -i -- cat`]).stdout).toBe("hi\n");
    expect(sh(["bash", "-c", `echo hi | "${TSNET}" run --rm -- readlink /proc/self/fd/0`]).stdout).toBe("/dev/null\n");
  });

  test("exec: the same", () => {
    runDetached(["--name", "host2", "--", "sleep", "1000"]);
    expect(sh(["bash", "-c", `echo hi | "${TSNET}" exec host2 cat`]).stdout).toBe("");
    expect(sh(["bash", "-c", `echo hi | "${TSNET}" exec -i host2 cat`]).stdout).toBe("hi\n");
  });

  test("a while-read loop that calls tsnet run keeps its lines", () => {
    const r = sh(["bash", "-c", `printf 'a\\nb\\nc\\n' | while read l; do "${TSNET}" run --rm -- sh -c 'cat >/dev/null'; echo "line:$l"; done`]);
    expect(r.stdout).toBe("line:a\nline:b\nline:c\n");
  });

  test("50 MB through -i, byte for byte", () => {
    const file = `${dir}/50m`;
    const data = new Uint8Array(50 * 1024 * 1024);
    for (let off = 0; off < data.length; off += 65536) crypto.getRandomValues(data.subarray(off, off + 65536));
    writeFileSync(file, data);
    const want = createHash("sha256").update(data).digest("hex");
    const r = sh(["bash", "-c", `"${TSNET}" run --rm -i -- sha256sum < ${file}`]);
    expect(r.code).toBe(0);
    expect(r.stdout.split(" ")[0]).toBe(want);
    // A pipe, not only a file.
    const p = sh(["bash", "-c", `cat ${file} | "${TSNET}" run --rm -i -- sha256sum`]);
    expect(p.stdout.split(" ")[0]).toBe(want);
  });
});
