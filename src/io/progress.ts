/**
 * Terminal progress bar for training, sampling and anything slow:
 *
 *   train  1200/5000 [███████░░░░░░░░░░░░░░░░░]  24.0% loss 0.0312 85.3 img/s 01:23<04:56
 *
 * On a TTY it redraws one line in place (\r, at most every `redrawMs`); on
 * anything else (CI logs, files) it prints a full line every `lineEverySec`
 * seconds. The loss shown is an exponential moving average with bias
 * correction (so the first values are not pulled towards 0). Speed and ETA
 * use the average rate since the bar started. The clock is injectable.
 */

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  /** Text before the counter, e.g. 'train' or 'sample'. */
  label?: string;
  /** Step the bar starts at (resumed runs); rates count from here. Default 0. */
  start?: number;
  /** Where to draw (default process.stderr). */
  stream?: ProgressStream;
  /** Clock in milliseconds (default performance.now). */
  now?: () => number;
  /** Force TTY / non-TTY behaviour (default: stream.isTTY). */
  tty?: boolean;
  /** Non-TTY: seconds between printed lines (default 10). */
  lineEverySec?: number;
  /** TTY: minimum milliseconds between redraws (default 100). */
  redrawMs?: number;
  /** EMA factor for the loss, in [0, 1) (default 0.98, ~50 steps). */
  smoothing?: number;
  /** Bar width in characters (default 24). */
  barWidth?: number;
  /** Unit of the throughput counter (default 'img'). */
  unit?: string;
  /** Draw nothing until this many milliseconds have passed (quick jobs stay silent; default 0). */
  quietForMs?: number;
}

/** 75 → "01:15", 3725 → "1:02:05"; non-finite → "--:--". */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return '--:--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const two = (x: number): string => String(x).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(ss)}` : `${two(m)}:${two(ss)}`;
}

/** Loss with 4 significant digits, switching to exponent form for tiny/huge values. */
export function formatLoss(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return x.toExponential(3);
  return x.toPrecision(4);
}

/** Bias-corrected exponential moving average. */
export class Ema {
  private acc = 0;
  private n = 0;
  constructor(readonly beta: number) {
    if (!(beta >= 0 && beta < 1)) throw new RangeError(`Ema beta must be in [0, 1), got ${beta}`);
  }
  push(x: number): number {
    if (!Number.isFinite(x)) return this.value;
    this.acc = this.beta * this.acc + (1 - this.beta) * x;
    this.n++;
    return this.value;
  }
  get value(): number {
    return this.n === 0 ? NaN : this.acc / (1 - this.beta ** this.n);
  }
  get count(): number {
    return this.n;
  }
}

/** What a step reports: its loss (smoothed on the bar), items done (the rate), a few words shown after the loss (kept until replaced). */
export interface ProgressInfo {
  loss?: number;
  items?: number;
  status?: string;
}

export class ProgressBar {
  readonly total: number;
  private readonly label: string;
  private readonly startStep: number;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly tty: boolean;
  private readonly lineEveryMs: number;
  private readonly redrawMs: number;
  private readonly barWidth: number;
  private readonly unit: string;
  private readonly quietForMs: number;
  private readonly loss: Ema;
  private readonly t0: number;
  private stepNo: number;
  private items = 0;
  private status: string | undefined;
  private lastDraw = -Infinity;
  private lastLen = 0;
  private done = false;

  constructor(opts: ProgressOptions) {
    if (!(Number.isFinite(opts.total) && opts.total >= 0)) throw new RangeError(`progress total must be a number ≥ 0, got ${opts.total}`);
    this.total = opts.total;
    this.label = opts.label ?? '';
    this.startStep = opts.start ?? 0;
    this.stepNo = this.startStep;
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? (() => performance.now());
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.lineEveryMs = (opts.lineEverySec ?? 10) * 1000;
    this.redrawMs = opts.redrawMs ?? 100;
    this.barWidth = opts.barWidth ?? 24;
    this.unit = opts.unit ?? 'img';
    this.quietForMs = opts.quietForMs ?? 0;
    this.loss = new Ema(opts.smoothing ?? 0.98);
    this.t0 = this.now();
  }

  get step(): number {
    return this.stepNo;
  }

  /** Smoothed loss so far (NaN before the first loss). */
  get smoothedLoss(): number {
    return this.loss.value;
  }

  /** Seconds since the bar was created. */
  elapsedSec(): number {
    return (this.now() - this.t0) / 1000;
  }

  /** Items (images) per second since the start. */
  rate(): number {
    const e = this.elapsedSec();
    return e > 0 ? this.items / e : NaN;
  }

  /** Seconds left at the average step rate since the start (NaN before any progress). */
  etaSec(): number {
    const done = this.stepNo - this.startStep;
    if (done <= 0) return NaN;
    return ((this.total - this.stepNo) * this.elapsedSec()) / done;
  }

  /** Advance by `n` steps; `loss` feeds the smoothed loss, `items` the img/s counter. */
  tick(n = 1, info: ProgressInfo = {}): void {
    this.update(this.stepNo + n, info);
  }

  /** Set the absolute step. */
  update(step: number, info: ProgressInfo = {}): void {
    if (this.done) return;
    this.stepNo = Math.min(step, this.total);
    if (info.loss !== undefined) this.loss.push(info.loss);
    if (info.items !== undefined) this.items += info.items;
    if (info.status !== undefined) this.status = info.status;
    const t = this.now();
    if (t - this.t0 < this.quietForMs) return;
    if (this.tty) {
      if (t - this.lastDraw >= this.redrawMs || this.stepNo >= this.total) this.draw(t);
    } else if (t - this.lastDraw >= this.lineEveryMs) {
      this.draw(t);
    }
  }

  /** The status line, without control characters. */
  render(): string {
    const frac = this.total > 0 ? Math.min(1, this.stepNo / this.total) : 1;
    const w = this.barWidth;
    const filled = Math.round(frac * w);
    const parts: string[] = [];
    if (this.label) parts.push(this.label);
    const tw = String(this.total).length;
    parts.push(`${String(this.stepNo).padStart(tw)}/${this.total}`);
    if (w > 0) parts.push(`[${'█'.repeat(filled)}${'░'.repeat(w - filled)}]`);
    parts.push(`${(frac * 100).toFixed(1).padStart(5)}%`);
    if (this.loss.count > 0) parts.push(`loss ${formatLoss(this.loss.value)}`);
    if (this.status !== undefined) parts.push(this.status);
    const r = this.rate();
    if (this.items > 0 && Number.isFinite(r)) parts.push(`${r >= 100 ? r.toFixed(0) : r.toFixed(1)} ${this.unit}/s`);
    parts.push(`${formatDuration(this.elapsedSec())}<${formatDuration(this.etaSec())}`);
    return parts.join(' ');
  }

  private draw(t: number): void {
    this.lastDraw = t;
    let line = this.render();
    if (this.tty) {
      const cols = this.stream.columns;
      if (cols && line.length > cols - 1) line = line.slice(0, cols - 1);
      const pad = this.lastLen > line.length ? ' '.repeat(this.lastLen - line.length) : '';
      this.stream.write(`\r${line}${pad}`);
      this.lastLen = line.length;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Draw the final state and end the line. Idempotent. */
  finish(message?: string): void {
    if (this.done) return;
    this.done = true;
    const t = this.now();
    if (t - this.t0 < this.quietForMs) return; // never shown: stay silent
    this.draw(t);
    if (this.tty) this.stream.write('\n');
    if (message) this.stream.write(`${message}\n`);
  }
}
