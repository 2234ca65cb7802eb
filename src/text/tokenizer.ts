/**
 * Prompts -> token ids, over a fixed word vocabulary (saved in the checkpoint's
 * model.text). Engine-free. Words are lower-case runs of letters and digits;
 * everything else separates words ("T-shirt/top" -> t, shirt, top).
 * Token 0 is the pad token; the empty prompt (all pads) is "no condition".
 */
import { DiffuseError } from '../errors.js';
import { PAD_TOKEN, type TextEncoderConfig } from '../model/config.js';

/** The words of a phrase, lower-cased. */
export function words(phrase: string): string[] {
  return phrase.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0);
}

/** Vocabulary of a set of phrases: the pad token, then every word once, sorted. */
export function buildVocab(phrases: Iterable<string>): string[] {
  const set = new Set<string>();
  for (const p of phrases) for (const w of words(p)) set.add(w);
  return [PAD_TOKEN, ...[...set].sort()];
}

/** Token ids of one prompt, padded to maxTokens. Unknown words and too-long prompts are errors that say what is known. */
export function tokenize(prompt: string, text: TextEncoderConfig): Int32Array {
  const ws = words(prompt);
  if (ws.length > text.maxTokens) {
    throw new DiffuseError(`prompt '${prompt}' has ${ws.length} words; this model reads at most ${text.maxTokens}`);
  }
  const index = new Map(text.vocab.map((w, i) => [w, i] as const));
  const out = new Int32Array(text.maxTokens);
  const unknown = ws.filter((w) => !index.has(w) || w === PAD_TOKEN);
  if (unknown.length > 0) {
    throw new DiffuseError(`unknown word${unknown.length > 1 ? 's' : ''} ${unknown.map((w) => `'${w}'`).join(', ')} in prompt '${prompt}'; this model knows: ${text.vocab.slice(1).join(', ')}`);
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
