/**
 * JSON-lines training log: one JSON object per line, appended as training
 * goes (so `tail -f` and plotting tools can follow it, and a crash loses at
 * most the line being written). Non-finite numbers are written as null and
 * read back as NaN.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DiffuseError } from '../errors.js';

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
    const full: Record<string, number | string | null> = {};
    for (const [k, v] of Object.entries(rec)) full[k] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
    if (full['time'] === undefined) full['time'] = Date.now() / 1000;
    try {
      appendFileSync(this.file, JSON.stringify(full) + '\n');
    } catch (e) {
      throw new DiffuseError(`log ${this.file}: cannot append (${(e as Error).message})`, { cause: e });
    }
  }
}

/**
 * Read a JSON-lines log. Blank lines are ignored, and so is a last line
 * without its newline that does not parse (a write cut short by a crash).
 * Any other bad line is a DiffuseError naming file and line number.
 */
export function readLog(file: string): LogRecord[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DiffuseError(`log ${file}: cannot read (${code ?? (e as Error).message})`, { cause: e });
  }
  const lines = text.split('\n');
  const out: LogRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const isLastUnterminated = i === lines.length - 1;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      if (isLastUnterminated) break;
      throw new DiffuseError(`log ${file}:${i + 1}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DiffuseError(`log ${file}:${i + 1}: must be a JSON object`);
    const rec: Record<string, number | string> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === null) rec[k] = NaN;
      else if (typeof x === 'number' || typeof x === 'string') rec[k] = x;
      else throw new DiffuseError(`log ${file}:${i + 1}: field ${k} must be a number or string`);
    }
    for (const k of REQUIRED) {
      if (typeof rec[k] !== 'number') throw new DiffuseError(`log ${file}:${i + 1}: field ${k} is missing or not a number`);
    }
    out.push(rec as LogRecord);
  }
  return out;
}
