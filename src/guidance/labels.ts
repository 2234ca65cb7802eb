/** Resolving what the user asks for (a class index or a name) against a checkpoint's label vocabulary. */
import { DiffuseError } from '../errors.js';

const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

function normalise(s: string): string {
  return s.trim().toLowerCase().replace(/[\s_\-/]+/g, ' ');
}

/** A class index from "7", "seven", "Ankle boot", "ankle-boot" …; unknown words list the known ones. */
export function resolveClass(query: string, labelNames: readonly string[] | undefined, numClasses: number): number {
  const q = normalise(query);
  if (/^\d+$/.test(q)) {
    const i = Number(q);
    const names = labelNames ?? [];
    // A digit data set names its classes '0'..'9': the index and the name agree.
    if (i >= 0 && i < numClasses) return i;
    if (names.length === 0) throw new DiffuseError(`class ${i} out of range: this model knows classes 0..${numClasses - 1}`);
  }
  const names = labelNames ?? [];
  for (let i = 0; i < names.length; i++) {
    if (normalise(names[i]!) === q) return i;
    if (names[i] === String(i) && DIGIT_WORDS[i] === q) return i;
  }
  // Parts of a compound name ("t-shirt/top" answers to "t shirt" and "top").
  const partial = names.map((n, i) => ({ i, parts: normalise(n).split(' ') })).filter((e) => q.split(' ').every((w) => e.parts.includes(w)));
  if (partial.length === 1) return partial[0]!.i;
  const known = names.length > 0 ? names.join(', ') : `0..${numClasses - 1}`;
  throw new DiffuseError(`unknown class '${query}'; this model knows: ${known}`);
}
