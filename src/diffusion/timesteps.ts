/** Helpers for "one t for the whole batch, or one t per sample". */
import { DiffuseError } from '../errors.js';
import { checkTimestep, type Schedule } from '../schedule.js';

/** A single training index for the whole array, or one per sample of the batch. */
export type Timesteps = number | Int32Array | readonly number[];

/**
 * Call `fn(t, start, end)` for each sample's contiguous range [start, end) of an
 * array of `length` elements. With a single t the whole array is one range.
 */
export function forEachSample(
  schedule: Schedule,
  length: number,
  t: Timesteps,
  fn: (t: number, start: number, end: number) => void,
): void {
  if (typeof t === 'number') {
    checkTimestep(schedule, t);
    fn(t, 0, length);
    return;
  }
  const n = t.length;
  if (n === 0 || length % n !== 0) {
    throw new DiffuseError(`per-sample timesteps: ${n} values do not divide an array of ${length} elements`);
  }
  const per = length / n;
  for (let b = 0; b < n; b++) {
    const tb = t[b]!;
    checkTimestep(schedule, tb);
    fn(tb, b * per, (b + 1) * per);
  }
}

export function checkSameLength(what: Record<string, { length: number }>): number {
  const entries = Object.entries(what);
  const n = entries[0]![1].length;
  for (const [k, v] of entries) {
    if (v.length !== n) {
      throw new DiffuseError(`length mismatch: ${entries.map(([kk, vv]) => `${kk}=${vv.length}`).join(', ')} (${k} differs)`);
    }
  }
  return n;
}
