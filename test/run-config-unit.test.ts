// The pure parts behind issue 10's run options and object commands: Docker's env-file, -e, -u
// against fixture passwd/group files, labels, restart policies and their backoff, signals, and
// the times of logs (--since forms, RFC 3339 with nanoseconds).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { commandEnv, parseEnvFile, parseEnvOption, parseLabels, resolveUser } from "../src/container/config.ts";
import { Backoff, parseRestart, shouldRestart } from "../src/container/restart.ts";
import { UsageError } from "../src/errors/errors.ts";
import { formatTime, parseDuration, parseTime } from "../src/logs/time.ts";
import { parseSignal } from "../src/process/signals.ts";

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error("not refused");
};

describe("environment", () => {
  test("-e: NAME=VALUE as is, a bare NAME from the caller or left out", () => {
    expect(parseEnvOption("A=1=2", {})).toBe("A=1=2");
    expect(parseEnvOption("A=", {})).toBe("A=");
    expect(parseEnvOption("B", { B: "x" })).toBe("B=x");
    expect(parseEnvOption("B", {})).toBeUndefined();
    expect(refusal(() => parseEnvOption("=1", {}))).toContain('invalid -e "=1"');
  });

  test("env-file lines as Docker reads them", () => {
    const dir = mkdtempSync("/tmp/tsnet-envfile-");
    writeFileSync(`${dir}/good`, "\uFEFFA=1\n#B=2\n\n  C= 3 \nD\nNOPE\nE=\"q\" \r\n");
    expect(parseEnvFile(`${dir}/good`, { D: "d" })).toEqual(["A=1", "C= 3 ", "D=d", 'E="q" ']);
    writeFileSync(`${dir}/bad`, "A=1\n  C = 3\n");
    expect(refusal(() => parseEnvFile(`${dir}/bad`, {}))).toBe(`invalid --env-file ${dir}/bad, line 2: variable name "C " contains whitespace`);
    writeFileSync(`${dir}/binary`, Buffer.from([0x41, 0x3d, 0xff, 0x0a]));
    expect(refusal(() => parseEnvFile(`${dir}/binary`, {}))).toBe(`invalid --env-file ${dir}/binary: it is not UTF-8 text`);
  });

  test("commandEnv: the caller's, the user's HOME/USER/LOGNAME, then -e; undefined when unchanged", () => {
    expect(commandEnv({ A: "1" }, [])).toBeUndefined();
    expect(commandEnv({ A: "1", HOME: "/root", USER: "root" }, ["A=2", "B=3"], { uid: 1, gid: 1, name: "daemon", home: "/usr/sbin" })).toEqual({
      A: "2", B: "3", HOME: "/usr/sbin", USER: "daemon", LOGNAME: "daemon",
    });
    expect(commandEnv({ USER: "root", LOGNAME: "root" }, ["HOME=/x"], { uid: 7, gid: 7, home: "/" })).toEqual({ HOME: "/x" });
  });
});

describe("users", () => {
  const dir = mkdtempSync("/tmp/tsnet-passwd-");
  writeFileSync(`${dir}/passwd`, "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/srv/web:/bin/sh\nnohome:x:1002:1002::::\n");
  writeFileSync(`${dir}/group`, "root:x:0:\nweb:x:1001:\nadm:x:4:web\n");
  const user = (spec: string) => resolveUser(spec, `${dir}/passwd`, `${dir}/group`);

  test("names and numbers, the group from passwd unless given", () => {
    expect(user("web")).toEqual({ uid: 1000, gid: 1001, name: "web", home: "/srv/web" });
    expect(user("web:adm")).toEqual({ uid: 1000, gid: 4, name: "web", home: "/srv/web" });
    expect(user("1000:0")).toEqual({ uid: 1000, gid: 0, name: "web", home: "/srv/web" });
    expect(user("2000:2000")).toEqual({ uid: 2000, gid: 2000, name: undefined, home: "/" });
    expect(user("nohome")).toEqual({ uid: 1002, gid: 1002, name: "nohome", home: "/" });
  });

  test("what is refused", () => {
    expect(refusal(() => user("2000"))).toBe(`invalid -u "2000": uid 2000 has no entry in ${dir}/passwd, so its group is unknown: give one, e.g. -u 2000:2000`);
    expect(refusal(() => user("nobody"))).toBe(`invalid -u "nobody": no user "nobody" in ${dir}/passwd`);
    expect(refusal(() => user("web:wheel"))).toBe(`invalid -u "web:wheel": no group "wheel" in ${dir}/group`);
    expect(refusal(() => user("4294967295"))).toBe('invalid -u "4294967295": uid 4294967295 is out of range');
    expect(refusal(() => user("a:b:c"))).toContain("give USER[:GROUP]");
  });
});

test("labels: KEY=VALUE or KEY, sorted by key", () => {
  expect(parseLabels(["b=2", "a", "c=x=y"])).toEqual({ a: "", b: "2", c: "x=y" });
  expect(Object.keys(parseLabels(["z=1", "a=1"]))).toEqual(["a", "z"]);
  expect(refusal(() => parseLabels(["a b=1"]))).toContain('invalid --label "a b=1"');
});

describe("restart policies", () => {
  test("parsing", () => {
    expect(parseRestart("no")).toEqual({ name: "no", max: 0 });
    expect(parseRestart("on-failure")).toEqual({ name: "on-failure", max: 0 });
    expect(parseRestart("on-failure:3")).toEqual({ name: "on-failure", max: 3 });
    expect(parseRestart("unless-stopped")).toEqual({ name: "unless-stopped", max: 0 });
    expect(refusal(() => parseRestart("always:1"))).toContain("a maximum retry count is for on-failure only");
    expect(refusal(() => parseRestart("on-failure:1:2"))).toContain('"on-failure" is not a restart policy');
  });

  test("which exits start the command again", () => {
    expect(shouldRestart({ name: "always", max: 0 }, 0, 100)).toBe(true);
    expect(shouldRestart({ name: "unless-stopped", max: 0 }, 0, 0)).toBe(true);
    expect(shouldRestart({ name: "on-failure", max: 0 }, 0, 0)).toBe(false);
    expect(shouldRestart({ name: "on-failure", max: 0 }, 1, 1000)).toBe(true);
    expect(shouldRestart({ name: "on-failure", max: 2 }, 1, 1)).toBe(true);
    expect(shouldRestart({ name: "on-failure", max: 2 }, 1, 2)).toBe(false);
    expect(shouldRestart({ name: "no", max: 0 }, 1, 0)).toBe(false);
    expect(shouldRestart(undefined, 1, 0)).toBe(false);
  });

  test("Docker's backoff: 100 ms doubling to a minute, from the start again after a 10 s run", () => {
    const b = new Backoff();
    expect([0, 0, 0, 0].map(() => b.next(50))).toEqual([100, 200, 400, 800]);
    for (let i = 0; i < 10; i++) b.next(0);
    expect(b.next(9_999)).toBe(60_000);
    expect(b.next(10_000)).toBe(100);
    expect(b.next(0)).toBe(200);
  });
});

test("signals by name, SIG name, any case, or number", () => {
  expect([parseSignal("KILL"), parseSignal("sigterm"), parseSignal("Hup"), parseSignal("10"), parseSignal("64")]).toEqual([9, 15, 1, 10, 64]);
  for (const bad of ["0", "65", "FOO", "SIG", ""]) expect(refusal(() => parseSignal(bad))).toContain(`invalid --signal "${bad}"`);
});

describe("times", () => {
  const now = 1_700_000_000_000_000_000n;
  test("Go durations", () => {
    expect(parseDuration("10m")).toBe(600_000_000_000n);
    expect(parseDuration("1h30m")).toBe(5_400_000_000_000n);
    expect(parseDuration("1.5s")).toBe(1_500_000_000n);
    expect(parseDuration("300ms")).toBe(300_000_000n);
    expect(parseDuration("2us")).toBe(2000n);
    expect(parseDuration("10")).toBeUndefined();
    expect(parseDuration("m")).toBeUndefined();
  });

  test("--since forms", () => {
    expect(parseTime("10m", "--since", now)).toBe(now - 600_000_000_000n);
    expect(parseTime("1136214245", "--since", now)).toBe(1_136_214_245_000_000_000n);
    expect(parseTime("1136214245.5", "--since", now)).toBe(1_136_214_245_500_000_000n);
    expect(parseTime("2006-01-02T15:04:05Z", "--since", now)).toBe(1_136_214_245_000_000_000n);
    expect(parseTime("2006-01-02T15:04:05.123456789Z", "--since", now)).toBe(1_136_214_245_123_456_789n);
    expect(parseTime("2006-01-02T16:04:05+01:00", "--since", now)).toBe(1_136_214_245_000_000_000n);
    expect(parseTime("2006-01-02T14:04:05-01:00", "--since", now)).toBe(1_136_214_245_000_000_000n);
    // without a zone: the local time, as Docker reads it
    expect(parseTime("2006-01-02", "--since", now)).toBe(BigInt(new Date(2006, 0, 2).getTime()) * 1_000_000n);
    expect(refusal(() => parseTime("2006-13-02", "--since", now))).toContain('invalid --since "2006-13-02"');
    expect(refusal(() => parseTime("soon", "--since", now))).toContain('invalid --since "soon"');
  });

  test("RFC 3339 with nine digits, UTC", () => {
    expect(formatTime(1_136_214_245_000_000_001n)).toBe("2006-01-02T15:04:05.000000001Z");
    expect(formatTime(1_136_214_245_120_000_000n)).toBe("2006-01-02T15:04:05.120000000Z");
  });
});
