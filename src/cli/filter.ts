// `--filter KEY=VALUE` as Docker's ps and network ls read it: the key checked against the
// command's keys (with a "did you mean"), the same key given twice matching either value except
// label (every label filter must match: an object has many labels), different keys all matching.
import { UsageError } from "../errors/errors.ts";
import { nearest } from "../errors/suggest.ts";

/**
 * One spec split into its key (one of keys) and non-empty value. `example(key)` is an example of
 * that key for the message, `example()` one of any key.
 */
export function splitFilter<K extends string>(spec: string, keys: readonly K[], command: string, example: (key?: K) => string): { key: K; value: string } {
  const eq = spec.indexOf("=");
  const key = spec.slice(0, eq < 0 ? spec.length : eq);
  const value = spec.slice(eq + 1);
  if (!(keys as readonly string[]).includes(key)) {
    const guess = nearest(key, [...keys]);
    throw new UsageError(`invalid --filter "${spec}": ${guess ? `did you mean "${guess}"? ` : ""}${command} filters by ${keys.join(", ")} (e.g. --filter ${example()})`);
  }
  if (eq < 0 || value === "") throw new UsageError(`invalid --filter "${spec}": give KEY=VALUE, e.g. --filter ${example(key as K)}`);
  return { key: key as K, value };
}

/** A regular expression matched anywhere, as Docker's name and id filters are. */
export function filterRegexp(spec: string, value: string): RegExp {
  try {
    return new RegExp(value);
  } catch {
    throw new UsageError(`invalid --filter "${spec}": "${value}" is not a regular expression`);
  }
}

/** `label=KEY` or `label=KEY=VALUE` as a test of an object's labels. */
export function labelTest(value: string): (labels: Readonly<Record<string, string>>) => boolean {
  const i = value.indexOf("=");
  const key = i < 0 ? value : value.slice(0, i);
  return (labels) => Object.hasOwn(labels, key) && (i < 0 || labels[key] === value.slice(i + 1));
}

/** Every spec as one test, by Docker's rule (see above); each spec is read by `test` first. */
export function combineFilters<K extends string, A extends unknown[]>(specs: readonly string[], test: (spec: string) => [K, (...a: A) => boolean]): (...a: A) => boolean {
  const byKey = new Map<K, ((...a: A) => boolean)[]>();
  for (const spec of specs) {
    const [key, t] = test(spec);
    byKey.set(key, [...(byKey.get(key) ?? []), t]);
  }
  return (...a) => [...byKey].every(([key, tests]) => (key === "label" ? tests.every((t) => t(...a)) : tests.some((t) => t(...a))));
}
