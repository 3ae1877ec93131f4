// "Did you mean ...?" for mistyped commands, options and template fields.

/** Optimal string alignment distance: Levenshtein plus swapping two neighbours (`nmae`). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate nearest to `word`, if it is near enough to be a typo of it: at most two edits,
 * and fewer edits than the candidate has letters (so "x" does not suggest "ps", but "sl" does
 * suggest "ls"); or else the one candidate that starts with the word. Leading dashes are not
 * letters: "--x" is not two edits from "--rm".
 */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  const bare = (s: string) => s.replace(/^-+/, "").toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  const prefixed: string[] = [];
  const w = bare(word);
  for (const c of candidates) {
    const d = editDistance(w, bare(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
    if (w.length >= 2 && bare(c).startsWith(w)) prefixed.push(c);
  }
  if (best !== undefined && bestDistance <= 2 && bestDistance < bare(best).length) return best;
  return prefixed.length === 1 ? prefixed[0] : undefined;
}
