/**
 * Training captions for text-conditioned models, two ways:
 * - From a labelled data set's class names (MNIST, Fashion-MNIST): each class
 *   has a few phrases (its name and simple synonyms, e.g. "ankle boot",
 *   "boot"), and each training image gets one of them inside a random
 *   template ("a photo of a boot"); the phrases are kept in data.captions.
 * - From a captioned data set's own captions (emoji, folders with
 *   metadata.jsonl): each image has its captions, one drawn per step;
 *   data.captions stays empty and the data set supplies them.
 * Either way the vocabulary is every word of every training caption, and the
 * prompts a model understands are exactly those words, in any order.
 */
import { DiffuseError } from '../errors.js';
import type { Rng } from '../rng.js';
import type { DiffuseConfig } from '../config.js';
import { MAX_TOKENS, type TextEncoderConfig } from '../model/config.js';
import { buildVocab, words } from './tokenizer.js';

/** Templates a phrase is put into ("{}" = the phrase). */
export const CAPTION_TEMPLATES: readonly string[] = ['{}', 'a {}', 'the {}', 'a photo of a {}', 'an image of a {}', 'a picture of the {}'];

const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** Phrases per Fashion-MNIST class (first = canonical). */
const FASHION: Record<string, string[]> = {
  't-shirt/top': ['t-shirt', 'top', 'tee', 'tee shirt'],
  trouser: ['trousers', 'trouser', 'pants', 'jeans'],
  pullover: ['pullover', 'sweater', 'jumper'],
  dress: ['dress', 'gown', 'frock'],
  coat: ['coat', 'jacket', 'overcoat'],
  sandal: ['sandal', 'sandals', 'flip flop'],
  shirt: ['shirt', 'blouse', 'button shirt'],
  sneaker: ['sneaker', 'sneakers', 'trainer', 'running shoe'],
  bag: ['bag', 'handbag', 'purse'],
  'ankle boot': ['ankle boot', 'boot', 'boots', 'ankle boots'],
};

/** Phrases for each label: built-in synonyms for MNIST digits and Fashion-MNIST, else the label name itself. */
export function defaultCaptions(labelNames: readonly string[]): string[][] {
  if (labelNames.length === 0) throw new DiffuseError('text conditioning needs a labelled data set (no label names)');
  return labelNames.map((name, i) => {
    const key = name.trim().toLowerCase();
    if (name === String(i) && i < DIGITS.length) return [DIGITS[i]!, name, `digit ${DIGITS[i]}`, `number ${DIGITS[i]}`];
    return FASHION[key] ? [...FASHION[key]] : [key];
  });
}

/** Every caption the templates can make from the phrases (for the vocabulary and its longest prompt). */
export function allCaptions(captions: readonly (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const row of captions) for (const p of row) for (const t of CAPTION_TEMPLATES) out.push(t.replace('{}', p));
  return out;
}

/** One random caption for class `label` (phrase and template drawn from `rng`). */
export function sampleCaption(label: number, captions: readonly (readonly string[])[], rng: Rng): string {
  const row = captions[label];
  if (row === undefined || row.length === 0) throw new DiffuseError(`no captions for label ${label} (captions cover ${captions.length} classes)`);
  const phrase = row[Math.min(row.length - 1, Math.floor(rng.uniform() * row.length))]!;
  const tpl = CAPTION_TEMPLATES[Math.min(CAPTION_TEMPLATES.length - 1, Math.floor(rng.uniform() * CAPTION_TEMPLATES.length))]!;
  return tpl.replace('{}', phrase);
}

/** Default width of the text encoder. */
export const DEFAULT_TEXT_DIM = 64;

/**
 * A config made text-conditioned for a labelled data set: captions per class
 * (defaultCaptions unless given), the vocabulary of every caption the
 * templates make, maxTokens = the longest caption, and the encoder width.
 */
export function withTextConditioning(config: DiffuseConfig, labelNames: readonly string[], opts: { dim?: number; captions?: string[][] } = {}): DiffuseConfig {
  const captions = opts.captions ?? defaultCaptions(labelNames);
  if (captions.length !== labelNames.length) throw new DiffuseError(`captions have ${captions.length} rows for ${labelNames.length} classes`);
  return {
    ...config,
    model: { ...config.model, numClasses: 0, text: textEncoderFor(allCaptions(captions), opts.dim) },
    data: { ...config.data, labelNames: [...labelNames], captions: captions.map((r) => [...r]) },
  };
}

/** The text encoder of a set of training captions: their vocabulary, maxTokens = the longest. */
export function textEncoderFor(captions: Iterable<string>, dim = DEFAULT_TEXT_DIM): TextEncoderConfig {
  const all = [...captions];
  if (all.length === 0) throw new DiffuseError('text conditioning needs at least one training caption');
  let longest = '';
  let maxTokens = 0;
  for (const c of all) {
    const n = words(c).length;
    if (n > maxTokens) { maxTokens = n; longest = c; }
  }
  if (maxTokens > MAX_TOKENS) throw new DiffuseError(`caption '${longest.slice(0, 80)}…' has ${maxTokens} words; captions may have at most ${MAX_TOKENS}`);
  return { vocab: buildVocab(all), maxTokens, dim };
}

/**
 * A config made text-conditioned on a captioned data set's own captions (per
 * image, as `datasetCaptions` or `Dataset.captions` give them): vocabulary
 * and maxTokens from every caption. data.captions stays unset: training
 * draws each image's caption from the data set.
 */
export function withCaptionConditioning(config: DiffuseConfig, captions: readonly (readonly string[])[], opts: { dim?: number } = {}): DiffuseConfig {
  const { captions: _classPhrases, ...data } = config.data;
  return { ...config, model: { ...config.model, numClasses: 0, text: textEncoderFor(captions.flat(), opts.dim) }, data };
}
