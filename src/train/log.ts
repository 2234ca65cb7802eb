/**
 * JSON-lines training log: one JSON object per line, appended as training
 * goes (so `tail -f` and plotting tools can follow it, and a crash loses at
 * most the line being written). Non-finite numbers are written as null and
 * read back as NaN.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DiffuseError } from '../errors.js';
import { writeFileAtomicSync } from '../io/atomic.js';
import { readRegularFileSync } from '../io/files.js';

export interface LogRecord {
  step: number;
  loss: number;
  lr: number;
  imgPerSec: number;
  /** Unix time in seconds. */
  time: number;
  /** Any further numeric or string fields (e.g. gradNorm, split). */
  [key: string]: number | string;
}

const REQUIRED = ['step', 'loss', 'lr', 'imgPerSec', 'time'] as const;

export class JsonlLog {
  constructor(readonly file: string) {
    try {
      mkdirSync(dirname(file), { recursive: true });
    } catch (e) {
      throw new DiffuseError(`log ${file}: cannot create its folder (${(e as Error).message})`, { cause: e });
    }
  }

  /** Append one record (`time` defaults to now). */
  append(rec: Omit<LogRecord, 'time'> & { time?: number }): void {
    try {
      appendFileSync(this.file, lineOf(rec));
    } catch (e) {
      throw new DiffuseError(`log ${this.file}: cannot append (${(e as Error).message})`, { cause: e });
    }
  }
}

export interface ReadLogOptions {
  /**
   * Called for each damaged line (not JSON, not an object, missing fields),
   * which is then skipped, instead of throwing: a resumed run keeps what can
   * be read. `line` is 1-based.
   */
  readonly onBadLine?: (line: number, why: string) => void;
}

/**
 * Read a JSON-lines log. Blank lines are ignored, and so is a last line
 * without its newline that does not parse (a write cut short by a crash).
 * Any other bad line is a DiffuseError naming file and line number, unless
 * `onBadLine` is given (then it is reported there and skipped).
 */
export function readLog(file: string, opts: ReadLogOptions = {}): LogRecord[] {
  const text = readRegularFileSync(file, 'log').toString('utf8');
  const lines = text.split('\n');
  const out: LogRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const isLastUnterminated = i === lines.length - 1;
    let rec: LogRecord;
    try {
      rec = parseLine(line);
    } catch (e) {
      if (isLastUnterminated && e instanceof SyntaxError) break;
      const why = e instanceof SyntaxError ? `not valid JSON (${e.message})` : (e as Error).message;
      if (opts.onBadLine !== undefined) {
        opts.onBadLine(i + 1, why);
        continue;
      }
      throw new DiffuseError(`log ${file}:${i + 1}: ${why}`, { cause: e });
    }
    out.push(rec);
  }
  return out;
}

function parseLine(line: string): LogRecord {
  const v: unknown = JSON.parse(line);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('must be a JSON object');
  const rec: Record<string, number | string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === null) rec[k] = NaN;
    else if (typeof x === 'number' || typeof x === 'string') rec[k] = x;
    else throw new Error(`field ${k} must be a number or string`);
  }
  for (const k of REQUIRED) {
    if (typeof rec[k] !== 'number') throw new Error(`field ${k} is missing or not a number`);
  }
  return rec as LogRecord;
}

function lineOf(rec: Omit<LogRecord, 'time'> & { time?: number }): string {
  const full: Record<string, number | string | null> = {};
  for (const [k, v] of Object.entries(rec)) full[k] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
  if (full['time'] === undefined) full['time'] = Date.now() / 1000;
  return JSON.stringify(full) + '\n';
}

/** Replace the whole log with `records`, atomically (a crash leaves the old log or the new one, never an empty one). */
export function rewriteLog(file: string, records: readonly LogRecord[]): void {
  writeFileAtomicSync(file, records.map(lineOf).join(''));
}
