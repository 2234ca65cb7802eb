/**
 * A minimal SVG chart writer for the study reports (docs/study-*.md): line and
 * scatter series on linear or log axes, optional point labels, horizontal
 * reference lines (e.g. the real-vs-real FID floor) and a legend. Pure: text
 * in, text out, no dependencies.
 */

export interface PlotPoint {
  readonly x: number;
  readonly y: number;
  /** Text drawn next to the marker. */
  readonly label?: string;
}

export interface PlotSeries {
  readonly name: string;
  readonly points: readonly PlotPoint[];
  /** Join the points with a line (default true). */
  readonly line?: boolean;
  /** Draw a marker at every point (default true). */
  readonly markers?: boolean;
  readonly color?: string;
  readonly dashed?: boolean;
}

export interface PlotRefLine {
  readonly y: number;
  readonly label: string;
  readonly color?: string;
}

export interface PlotOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly PlotSeries[];
  readonly refLines?: readonly PlotRefLine[];
  readonly logX?: boolean;
  readonly logY?: boolean;
  /** Explicit tick positions on x (e.g. the T values of a study); default: automatic. */
  readonly xTicks?: readonly number[];
  readonly width?: number;
  readonly height?: number;
}

export const PALETTE: readonly string[] = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];

/** Escape text for an SVG/XML text node or attribute. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** 1, 2 or 5 times a power of ten, at least `x` (x > 0). */
function niceStep(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  const m = x / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Round away float noise (0.30000000000000004 -> 0.3). */
function clean(v: number): number {
  return Number(v.toPrecision(12));
}

/**
 * Evenly spaced "nice" ticks (steps of 1, 2 or 5 × 10^k) covering [min, max]:
 * the first tick ≤ min, the last ≥ max, about `target` intervals.
 */
export function niceTicks(min: number, max: number, target = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) throw new RangeError(`niceTicks: bad range [${min}, ${max}]`);
  if (min === max) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= d;
    max += d;
  }
  const step = niceStep((max - min) / Math.max(1, target));
  const lo = Math.floor(min / step + 1e-9);
  const hi = Math.ceil(max / step - 1e-9);
  const out: number[] = [];
  for (let k = lo; k <= hi; k++) out.push(clean(k * step));
  return out;
}

/**
 * Ticks of a log axis covering [min, max] (both > 0): the powers of ten from
 * the one ≤ min to the one ≥ max, plus 2× and 5× when that spans at most two decades.
 */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max) || min > max) throw new RangeError(`logTicks: bad range [${min}, ${max}] (log axes need positive values)`);
  const lo = Math.floor(Math.log10(min) + 1e-9);
  let hi = Math.ceil(Math.log10(max) - 1e-9);
  if (hi === lo) hi = lo + 1;
  const out: number[] = [];
  const fine = hi - lo <= 2;
  for (let e = lo; e <= hi; e++) {
    const p = 10 ** e;
    out.push(clean(p));
    if (fine && e < hi) out.push(clean(2 * p), clean(5 * p));
  }
  return out;
}

/** Short tick text: 1000 -> "1000", 0.0005 -> "5e-4", 20000 -> "2e+4". */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const [m, e] = v.toExponential().split('e');
    return `${Number(Number(m).toPrecision(3))}e${e}`;
  }
  return String(Number(v.toPrecision(6)));
}

function fmt(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}

interface Axis {
  map(v: number): number;
  ticks: number[];
}

function makeAxis(values: number[], log: boolean, p0: number, p1: number, explicit: readonly number[] | undefined, what: string): Axis {
  if (values.length === 0) throw new RangeError(`plot: no ${what} values`);
  if (values.some((v) => !Number.isFinite(v))) throw new RangeError(`plot: non-finite ${what} value`);
  if (log && values.some((v) => v <= 0)) throw new RangeError(`plot: ${what} axis is logarithmic but has a value ≤ 0`);
  let min = Math.min(...values);
  let max = Math.max(...values);
  let ticks: number[];
  if (explicit !== undefined && explicit.length > 0) {
    ticks = [...explicit].sort((a, b) => a - b);
    min = Math.min(min, ticks[0]!);
    max = Math.max(max, ticks[ticks.length - 1]!);
    if (log) {
      // A little room around the end ticks.
      const span = Math.log10(max) - Math.log10(min) || 1;
      min = 10 ** (Math.log10(min) - 0.04 * span);
      max = 10 ** (Math.log10(max) + 0.04 * span);
    } else {
      const span = max - min || 1;
      min -= 0.04 * span;
      max += 0.04 * span;
    }
  } else if (log) {
    const all = logTicks(min, max);
    // Keep only ticks within a decade-ish of the data so the axis is not mostly empty.
    const lo = all.filter((t) => t <= min).pop() ?? all[0]!;
    const hi = all.find((t) => t >= max) ?? all[all.length - 1]!;
    ticks = all.filter((t) => t >= lo && t <= hi);
    min = lo;
    max = hi;
  } else {
    ticks = niceTicks(min, max);
    min = ticks[0]!;
    max = ticks[ticks.length - 1]!;
  }
  const f = (v: number): number => (log ? Math.log10(v) : v);
  const a = f(min);
  const b = f(max);
  const map = (v: number): number => p0 + ((f(v) - a) / (b - a || 1)) * (p1 - p0);
  return { map, ticks: ticks.filter((t) => t >= min - 1e-12 * Math.abs(min) && t <= max + 1e-12 * Math.abs(max)) };
}

/** Render a chart as a standalone SVG document. */
export function svgPlot(opts: PlotOptions): string {
  const W = opts.width ?? 760;
  const H = opts.height ?? 460;
  const legendW = 190;
  const m = { left: 72, right: 16 + legendW, top: 40, bottom: 54 };
  const x0 = m.left;
  const x1 = W - m.right;
  const y0 = H - m.bottom;
  const y1 = m.top;
  const pts = opts.series.flatMap((s) => s.points);
  const refs = opts.refLines ?? [];
  const xAxis = makeAxis(pts.map((p) => p.x), opts.logX === true, x0, x1, opts.xTicks, 'x');
  const yAxis = makeAxis([...pts.map((p) => p.y), ...refs.map((r) => r.y)], opts.logY === true, y0, y1, undefined, 'y');
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${fmt((x0 + x1) / 2)}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(opts.title)}</text>`);
  // Grid and ticks.
  for (const t of xAxis.ticks) {
    const px = fmt(xAxis.map(t));
    out.push(`<line x1="${px}" y1="${fmt(y0)}" x2="${px}" y2="${fmt(y1)}" stroke="#e6e6e6"/>`);
    out.push(`<text x="${px}" y="${fmt(y0 + 16)}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  }
  for (const t of yAxis.ticks) {
    const py = fmt(yAxis.map(t));
    out.push(`<line x1="${fmt(x0)}" y1="${py}" x2="${fmt(x1)}" y2="${py}" stroke="#e6e6e6"/>`);
    out.push(`<text x="${fmt(x0 - 6)}" y="${py}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`<rect x="${fmt(x0)}" y="${fmt(y1)}" width="${fmt(x1 - x0)}" height="${fmt(y0 - y1)}" fill="none" stroke="#333333"/>`);
  out.push(`<text x="${fmt((x0 + x1) / 2)}" y="${fmt(H - 14)}" text-anchor="middle">${escapeXml(opts.xLabel + (opts.logX ? ' (log scale)' : ''))}</text>`);
  out.push(`<text x="16" y="${fmt((y0 + y1) / 2)}" text-anchor="middle" transform="rotate(-90 16 ${fmt((y0 + y1) / 2)})">${escapeXml(opts.yLabel + (opts.logY ? ' (log scale)' : ''))}</text>`);
  // Reference lines.
  refs.forEach((r, i) => {
    const py = fmt(yAxis.map(r.y));
    const c = r.color ?? '#555555';
    out.push(`<line class="ref" x1="${fmt(x0)}" y1="${py}" x2="${fmt(x1)}" y2="${py}" stroke="${escapeXml(c)}" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${fmt(x1 - 4)}" y="${fmt(yAxis.map(r.y) - 4 - 12 * (i % 2))}" text-anchor="end" fill="${escapeXml(c)}">${escapeXml(r.label)}</text>`);
  });
  // Series.
  opts.series.forEach((s, i) => {
    const c = s.color ?? PALETTE[i % PALETTE.length]!;
    const xy = s.points.map((p) => [xAxis.map(p.x), yAxis.map(p.y)] as const);
    if (s.line !== false && xy.length > 1) {
      out.push(`<polyline class="series" fill="none" stroke="${escapeXml(c)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${xy.map(([a, b]) => `${fmt(a)},${fmt(b)}`).join(' ')}"/>`);
    }
    if (s.markers !== false) {
      s.points.forEach((p, k) => {
        const [px, py] = xy[k]!;
        out.push(`<circle class="point" cx="${fmt(px)}" cy="${fmt(py)}" r="4" fill="${escapeXml(c)}"/>`);
        if (p.label !== undefined) {
          // Labels near the right edge go to the left of their marker, so they stay inside the plot.
          const left = px > x1 - 7 * p.label.length - 10;
          out.push(`<text x="${fmt(left ? px - 6 : px + 6)}" y="${fmt(py - 7)}" font-size="11" fill="#222222"${left ? ' text-anchor="end"' : ''}>${escapeXml(p.label)}</text>`);
        }
      });
    }
  });
  // Legend.
  const lx = x1 + 14;
  let ly = y1 + 8;
  for (const [i, s] of opts.series.entries()) {
    const c = s.color ?? PALETTE[i % PALETTE.length]!;
    if (s.line !== false) out.push(`<line x1="${fmt(lx)}" y1="${fmt(ly)}" x2="${fmt(lx + 22)}" y2="${fmt(ly)}" stroke="${escapeXml(c)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    if (s.markers !== false) out.push(`<circle cx="${fmt(lx + 11)}" cy="${fmt(ly)}" r="3" fill="${escapeXml(c)}"/>`);
    out.push(`<text x="${fmt(lx + 28)}" y="${fmt(ly)}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
    ly += 18;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
