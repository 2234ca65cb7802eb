/**
 * Pure helpers shared by the three study commands (bench/study-steps.ts,
 * bench/study-timesteps.ts, bench/study-prediction.ts): loss smoothing,
 * markdown tables, mean ± standard error, Pareto fronts, config comparison and
 * the report file's hand-written tail. No tfjs, no I/O beyond strings.
 */

/**
 * Bias-corrected exponential moving average of a series (as the training
 * progress bar smooths its loss): out[i] = Σ_k≤i β^(i−k) (1−β) v_k / (1 − β^(n_i)),
 * where n_i counts the finite values so far. Non-finite values are skipped
 * (their slot repeats the current average; NaN before the first finite value).
 */
export function smoothEma(values: readonly number[], beta: number): number[] {
  if (!(beta >= 0 && beta < 1)) throw new RangeError(`smoothEma: beta must be in [0, 1), got ${beta}`);
  let acc = 0;
  let n = 0;
  return values.map((v) => {
    if (Number.isFinite(v)) {
      acc = beta * acc + (1 - beta) * v;
      n++;
    }
    return n === 0 ? NaN : acc / (1 - beta ** n);
  });
}

/** Mean of the last `k` finite values (NaN if there are none). */
export function tailMean(values: readonly number[], k: number): number {
  const tail = values.filter((v) => Number.isFinite(v)).slice(-k);
  return tail.length === 0 ? NaN : tail.reduce((a, b) => a + b, 0) / tail.length;
}

/** Mean and standard error of the mean (sample std / sqrt n; SE is NaN for n < 2). */
export function meanSE(values: ArrayLike<number>): { mean: number; se: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: NaN, se: NaN, n };
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i]!;
  const mean = s / n;
  if (n < 2) return { mean, se: NaN, n };
  let q = 0;
  for (let i = 0; i < n; i++) q += (values[i]! - mean) ** 2;
  return { mean, se: Math.sqrt(q / (n - 1) / n), n };
}

/** Paired difference a − b (same items, e.g. the same images and noise): mean ± SE of the per-item differences. */
export function pairedDiff(a: ArrayLike<number>, b: ArrayLike<number>): { mean: number; se: number; n: number } {
  if (a.length !== b.length) throw new RangeError(`pairedDiff: ${a.length} vs ${b.length} items`);
  const d = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) d[i] = a[i]! - b[i]!;
  return meanSE(d);
}

/**
 * Indices of the Pareto-optimal points when both coordinates are costs (lower
 * is better): no other point is ≤ in both and < in one. Sorted by x.
 */
export function paretoFront(points: readonly { readonly x: number; readonly y: number }[]): number[] {
  const idx = points.map((_, i) => i).filter((i) => {
    const p = points[i]!;
    return !points.some((q, j) => j !== i && q.x <= p.x && q.y <= p.y && (q.x < p.x || q.y < p.y));
  });
  return idx.sort((i, j) => points[i]!.x - points[j]!.x || points[i]!.y - points[j]!.y);
}

export type Align = 'l' | 'r' | 'c';

/** A GitHub-flavoured markdown table; `|` in cells is escaped. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly Align[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  for (const [i, r] of rows.entries()) {
    if (r.length !== header.length) throw new RangeError(`markdownTable: row ${i} has ${r.length} cells, the header ${header.length}`);
  }
  const sep = header.map((_, i) => {
    const a = align?.[i] ?? 'l';
    return a === 'r' ? '---:' : a === 'c' ? ':---:' : '---';
  });
  const line = (cells: readonly string[]): string => `| ${cells.map(esc).join(' | ')} |`;
  return [line(header), `|${sep.join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

/** Fixed decimals, '—' for non-finite. */
export function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '—';
}

/** Significant digits for small or large values (MSEs, losses); '—' for non-finite. */
export function sig(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(digits - 1);
  return x.toPrecision(digits);
}

/** "12.3 ± 0.4" with a shared number of decimals. */
export function pm(mean: number, err: number, digits: number): string {
  return `${fixed(mean, digits)} ± ${fixed(err, digits)}`;
}

/**
 * Every leaf path where two JSON-like values differ ("model.baseChannels:
 * expected 16, found 32"). Object keys whose value is undefined count as absent.
 */
export function configDiff(expected: unknown, actual: unknown, path = ''): string[] {
  const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length !== actual.length) return [`${path || '(root)'}: expected ${show(expected)}, found ${show(actual)}`];
    return expected.flatMap((e, i) => configDiff(e, actual[i], `${path}[${i}]`));
  }
  if (isObj(expected) && isObj(actual)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
    return keys.flatMap((k) => configDiff(expected[k], actual[k], path ? `${path}.${k}` : k));
  }
  if (Object.is(expected, actual)) return [];
  return [`${path || '(root)'}: expected ${show(expected)}, found ${show(actual)}`];
}

/** An error meant for the user (bad flag, mismatching run folder): printed as one message, without a stack. */
export class StudyError extends Error {
  override readonly name = 'StudyError';
}

/** Print an error: the message alone for StudyError and DiffuseError, the stack for anything else (a bug). */
export function reportError(err: unknown): void {
  const plain = err instanceof Error && (err.name === 'StudyError' || err.name === 'DiffuseError');
  process.stderr.write(`${err instanceof Error ? (plain ? `error: ${err.message}` : (err.stack ?? err.message)) : String(err)}\n`);
  process.exitCode = 1;
}

/** Normalise a cell id for --only matching: lower case, no '-', '_' or spaces. */
export function normId(s: string): string {
  return s.toLowerCase().replace(/[-_\s]/g, '');
}

/**
 * Pick cells by a comma-separated --only list (ids compared with normId);
 * undefined = all. Unknown ids are an error naming the known ones.
 */
export function selectCells<T extends { readonly id: string }>(cells: readonly T[], only: string | undefined): T[] {
  if (only === undefined) return [...cells];
  const wanted = only.split(',').map((s) => normId(s.trim())).filter((s) => s !== '');
  const known = new Set(cells.map((c) => normId(c.id)));
  const bad = wanted.filter((w) => !known.has(w));
  if (bad.length > 0) throw new StudyError(`--only: unknown cell(s) ${bad.join(', ')}; known: ${cells.map((c) => c.id).join(', ')}`);
  return cells.filter((c) => wanted.includes(normId(c.id)));
}

/** The line that separates a generated report from the hand-written discussion kept on regeneration. */
export const DISCUSSION_MARKER = '<!-- Everything below this line is hand-written and kept when the report is regenerated. -->';

/**
 * The new report text: the generated part, then the marker, then whatever
 * followed the marker in the previous version of the file (if any).
 */
export function withDiscussion(generated: string, previous: string | undefined): { text: string; keptLines: number } {
  let tail = '';
  if (previous !== undefined) {
    const k = previous.indexOf(DISCUSSION_MARKER);
    if (k >= 0) tail = previous.slice(k + DISCUSSION_MARKER.length).replace(/^\n/, '');
  }
  const kept = tail.trim() === '' ? 0 : tail.trimEnd().split('\n').length;
  const body = generated.endsWith('\n') ? generated : generated + '\n';
  return { text: `${body}\n${DISCUSSION_MARKER}\n${tail}`, keptLines: kept };
}

/**
 * Mean squared error of each of `n` images (equal-length slices of a and b),
 * optionally clipping `a` to [lo, hi] first. Float64 accumulation.
 */
export function perImageMse(a: Float32Array, b: Float32Array, n: number, clip?: readonly [number, number]): Float64Array {
  if (a.length !== b.length) throw new RangeError(`perImageMse: ${a.length} vs ${b.length} values`);
  if (!Number.isInteger(n) || n < 1 || a.length % n !== 0) throw new RangeError(`perImageMse: ${a.length} values do not split into ${n} images`);
  const per = a.length / n;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (let i = k * per; i < (k + 1) * per; i++) {
      let x = a[i]!;
      if (clip !== undefined) x = Math.min(clip[1], Math.max(clip[0], x));
      const d = x - b[i]!;
      s += d * d;
    }
    out[k] = s / per;
  }
  return out;
}

/** One 3×3 box blur pass (edges clamped) of n s×s images with c channels, NHWC. */
export function boxBlur(images: Float32Array, n: number, s: number, c = 1): Float32Array {
  const dst = new Float32Array(images.length);
  for (let b = 0; b < n; b++) {
    const o = b * s * s * c;
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) for (let ch = 0; ch < c; ch++) {
      let acc = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        acc += images[o + (Math.min(s - 1, Math.max(0, y + dy)) * s + Math.min(s - 1, Math.max(0, x + dx))) * c + ch]!;
      }
      dst[o + (y * s + x) * c + ch] = acc / 9;
    }
  }
  return dst;
}
