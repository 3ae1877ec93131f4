// Floating-point numbers as Go's strconv formats them for fmt: %e, %f and %g (and %v, which is
// %g with the shortest digits). Rounding is to nearest with an exact half to even, on the
// double's exact decimal value ("%.1f" of 2.25 is 2.2; of 2.35, a little above in binary, 2.4),
// where toFixed and toExponential round a half up.

/** x >= 0 as decimal digits (no leading or trailing zeros) and point: x = 0.DIGITS x 10^point. */
interface Digits {
  d: string;
  point: number;
}

/** Every double is a finite decimal: mant x 2^e2 = mant x 5^-e2 / 10^-e2 when e2 < 0. */
function exactDigits(x: number): Digits {
  if (x === 0) return { d: "", point: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  const e2 = biased === 0 ? -1074 : biased - 1075;
  if (biased !== 0) mant |= 1n << 52n;
  const [int, places] = e2 >= 0 ? [mant << BigInt(e2), 0] : [mant * 5n ** BigInt(-e2), -e2];
  const all = int.toString();
  return { d: all.replace(/0+$/, ""), point: all.length - places };
}

/** The fewest digits that read back as x (JavaScript's and Go's shortest form agree). */
function shortestDigits(x: number): Digits {
  if (x === 0) return { d: "", point: 0 };
  const [m, e] = x.toExponential().split("e") as [string, string];
  return { d: m.replace(".", "").replace(/0+$/, ""), point: Number(e) + 1 };
}

/** Rounds to n digits (n + 1 when a carry runs out of the first: 99.96 to 3 is 100). */
function round(x: Digits, n: number): Digits {
  if (n < 0) return { d: "", point: x.point };
  if (x.d.length <= n) return x;
  const kept = x.d.slice(0, n);
  const rest = x.d.slice(n);
  const up = rest[0]! > "5" || (rest[0] === "5" && (/[1-9]/.test(rest.slice(1)) || Number(kept.at(-1) ?? "0") % 2 === 1));
  if (!up) return { d: kept.replace(/0+$/, ""), point: x.point };
  const bumped = (BigInt(kept || "0") + 1n).toString().padStart(n, "0");
  const carry = bumped.length > n;
  return { d: bumped.replace(/0+$/, ""), point: x.point + (carry ? 1 : 0) };
}

function digitAt(x: Digits, i: number): string {
  return i >= 0 && i < x.d.length ? x.d[i]! : "0";
}

/** d.ddde±XX with `prec` digits after the point. */
function fmtE(x: Digits, prec: number): string {
  const exp = x.d ? x.point - 1 : 0;
  let s = digitAt(x, 0);
  if (prec > 0) {
    s += ".";
    for (let i = 1; i <= prec; i++) s += digitAt(x, i);
  }
  return `${s}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

/** ddd.ddd with `prec` digits after the point. */
function fmtF(x: Digits, prec: number): string {
  let s = "";
  if (x.point > 0) for (let i = 0; i < x.point; i++) s += digitAt(x, i);
  else s = "0";
  if (prec > 0) {
    s += ".";
    for (let i = 0; i < prec; i++) s += digitAt(x, x.point + i);
  }
  return s;
}

/** %e, %f or %g of x >= 0; prec < 0 means the default (6 for e and f, shortest for g). */
export function formatFloat(x: number, verb: "e" | "f" | "g", prec: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "NaN" : "+Inf";
  if (verb === "e") {
    const p = prec < 0 ? 6 : prec;
    return fmtE(round(exactDigits(x), p + 1), p);
  }
  if (verb === "f") {
    const p = prec < 0 ? 6 : prec;
    const exact = exactDigits(x);
    return fmtF(round(exact, exact.point + p), p);
  }
  const shortest = prec < 0;
  let p = prec === 0 ? 1 : prec;
  const digs = shortest ? shortestDigits(x) : round(exactDigits(x), p);
  if (shortest) p = digs.d.length;
  // strconv: %e when the exponent is below -4 or at least the precision (6 for the shortest form).
  let eprec = p;
  if (eprec > digs.d.length && digs.d.length >= digs.point) eprec = digs.d.length;
  if (shortest) eprec = 6;
  const exp = digs.point - 1;
  if (exp < -4 || exp >= eprec) return fmtE(digs, Math.min(p, Math.max(digs.d.length, 1)) - 1);
  if (p > digs.point) p = digs.d.length;
  return fmtF(digs, Math.max(p - digs.point, 0));
}
