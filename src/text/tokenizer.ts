/**
 * Prompts -> token ids, over a fixed word vocabulary (saved in the checkpoint's
 * model.text). Engine-free (runs in the browser page too).
 *
 * The word rule, used alike for training captions and for prompts:
 * - Unicode compatibility decomposition, then accents dropped ("Curaçao",
 *   "Åland", "piñata" -> curacao, aland, pinata) and lower case.
 * - A word is a maximal run of letters and digits (any script); everything
 *   else separates words. So "t-shirt" -> t, shirt; "o'clock" / "o’clock" ->
 *   o, clock; "food: red apple" -> food, red, apple; "clock330" stays one word.
 *   Punctuation carries no meaning, and a user's "t shirt" or "o clock" reads
 *   exactly as the caption's "t-shirt" or "o'clock". (For ASCII text this is
 *   the rule the shipped models were trained with.)
 * Token 0 is the pad token; the blank prompt (all pads) is "no condition".
 * Every word of a non-blank prompt must be in the vocabulary, and a
 * non-blank prompt must have at least one word ("???" has none): anything
 * else is an error, never a silently unconditional sample.
 */
import { DiffuseError } from '../errors.js';
import { PAD_TOKEN, type TextEncoderConfig } from '../model/config.js';

/** The words of a phrase (see the rule above). */
export function words(phrase: string): string[] {
  return phrase
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0);
}

/** Vocabulary of a set of phrases: the pad token, then every word once, sorted. */
export function buildVocab(phrases: Iterable<string>): string[] {
  const set = new Set<string>();
  for (const p of phrases) for (const w of words(p)) set.add(w);
  return [PAD_TOKEN, ...[...set].sort()];
}

/** Optimal-string-alignment edit distance (insert, delete, substitute, swap two neighbours), stopping early past `max`. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin > max) return max + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[b.length]!;
}

/** How many edits apart two words may be for one to be suggested for the other: 40% of the longer one's letters. */
export function suggestionDistance(a: string, b: string): number {
  return Math.floor(0.4 * Math.max(a.length, b.length));
}

/**
 * Up to `k` known words closest to `word` by edit distance, nearest first,
 * counting only words within suggestionDistance (so 'aple' gets apple and
 * maple, never 'ae'); ties go to the longer shared prefix, then alphabetical
 * order. The pad token is never suggested.
 */
export function closestWords(word: string, vocab: readonly string[], k = 5): string[] {
  const prefix = (w: string): number => {
    let i = 0;
    while (i < w.length && i < word.length && w[i] === word[i]) i++;
    return i;
  };
  const hits: { w: string; d: number; p: number }[] = [];
  for (const w of vocab) {
    if (w === PAD_TOKEN) continue;
    const max = suggestionDistance(word, w);
    const d = editDistance(word, w, max);
    if (d <= max) hits.push({ w, d, p: prefix(w) });
  }
  hits.sort((x, y) => x.d - y.d || y.p - x.p || (x.w < y.w ? -1 : x.w > y.w ? 1 : 0));
  return hits.slice(0, k).map((h) => h.w);
}

/** Word -> id maps, built once per vocabulary array. */
const indexCache = new WeakMap<readonly string[], Map<string, number>>();

function vocabIndex(vocab: readonly string[]): Map<string, number> {
  let index = indexCache.get(vocab);
  if (index === undefined) {
    index = new Map(vocab.map((w, i) => [w, i] as const));
    index.delete(PAD_TOKEN);
    indexCache.set(vocab, index);
  }
  return index;
}

function unknownWord(word: string, prompt: string, vocab: readonly string[]): string {
  const near = closestWords(word, vocab);
  const known = `this model knows ${vocab.length - 1} words`;
  return `unknown word '${word}' in prompt '${prompt}'; ${near.length > 0 ? `closest known words: ${near.join(', ')}` : `no known word is close (${known})`}`;
}

/**
 * Token ids of one prompt, padded to maxTokens. A blank prompt is all pads (no
 * condition). Unknown words (the first is named, with the closest known
 * words), prompts with no word at all, and prompts longer than maxTokens are
 * errors.
 */
export function tokenize(prompt: string, text: TextEncoderConfig): Int32Array {
  const out = new Int32Array(text.maxTokens);
  if (prompt.trim() === '') return out;
  const ws = words(prompt);
  if (ws.length === 0) throw new DiffuseError(`prompt '${prompt}' has no words (a word is a run of letters or digits); use '' for no prompt`);
  const index = vocabIndex(text.vocab);
  const unknown = ws.find((w) => !index.has(w));
  if (unknown !== undefined) throw new DiffuseError(unknownWord(unknown, prompt, text.vocab));
  if (ws.length > text.maxTokens) {
    throw new DiffuseError(`prompt '${prompt}' has ${ws.length} words; this model reads at most ${text.maxTokens}`);
  }
  ws.forEach((w, i) => { out[i] = index.get(w)!; });
  return out;
}

/** The words of token ids (pads dropped), for messages and file names. */
export function detokenize(ids: ArrayLike<number>, text: TextEncoderConfig): string {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id !== 0) out.push(text.vocab[id] ?? `<${id}>`);
  }
  return out.join(' ');
}
