/**
 * What an emoji text model is asked for when it is measured
 * (docs/emoji-eval.md):
 *
 * - Prompt agreement: each emoji identity of a split asked for by its name
 *   (the canonical prompt of its base image: "red apple", "waving hand
 *   sign", no skin tone), the classifier's answer compared with its
 *   subcategory. A fixed subset, evenly spaced over the identities in
 *   emoji.json's order (so every category keeps its share), when a run
 *   must be short.
 * - FID: `floorPrompts` (prompts.ts), one sample per training image of the
 *   real-vs-real floor, asked for by that image's canonical prompt.
 */
import { DiffuseError } from '../errors.js';
import type { EmojiDataset, EmojiImage } from '../data/emoji.js';
import { evenlySpacedIndices } from '../data/dataset.js';
import type { Classifier } from './classifier.js';
import type { EvalSplits } from './splits.js';
import { floorPrompts, type PromptRequest } from './prompts.js';

/** One emoji identity asked for by name. */
export interface EmojiPromptRequest extends PromptRequest {
  /** The identity (base record's code points). */
  readonly identity: string;
  readonly subcategory: string;
  readonly category: string;
  /** Indices of this identity's images in the data set the requests were made from. */
  readonly images: readonly number[];
}

export interface EmojiPromptOptions {
  /** At most this many identities, evenly spaced in data-set order (default: all). */
  readonly count?: number;
  /** Keep only prompts the model can read (held-out names with unknown words). */
  readonly readable?: (prompt: string) => boolean;
}

/**
 * One request per emoji identity of `ds`, in data-set order: its name, the
 * index of its subcategory among `labelNames` (the classifier's classes).
 */
export function emojiPromptRequests(ds: Pick<EmojiDataset, 'emoji' | 'name'>, labelNames: readonly string[], opts: EmojiPromptOptions = {}): EmojiPromptRequest[] {
  const byId = new Map<string, { first: EmojiImage; base: EmojiImage | undefined; images: number[] }>();
  ds.emoji.forEach((e, i) => {
    let g = byId.get(e.identity);
    if (g === undefined) byId.set(e.identity, (g = { first: e, base: undefined, images: [] }));
    if (e.tones.length === 0 && g.base === undefined) g.base = e;
    g.images.push(i);
  });
  let all: EmojiPromptRequest[] = [];
  for (const [identity, g] of byId) {
    const e = g.base ?? g.first;
    const prompt = g.base !== undefined ? g.base.captions[0]! : e.name;
    if (opts.readable !== undefined && !opts.readable(prompt)) continue;
    const label = labelNames.indexOf(e.subcategory);
    if (label < 0) throw new DiffuseError(`emoji prompts: subcategory '${e.subcategory}' of '${e.name}' is not one of the classifier's ${labelNames.length} classes`);
    all.push({ prompt, label, identity, subcategory: e.subcategory, category: e.category, images: g.images });
  }
  if (opts.count !== undefined) {
    if (!Number.isInteger(opts.count) || opts.count < 1) throw new DiffuseError(`emoji prompts: count must be a positive integer, got ${opts.count}`);
    all = Array.from(evenlySpacedIndices(all.length, opts.count), (i) => all[i]!);
  }
  if (all.length === 0) throw new DiffuseError(`emoji prompts: no readable prompt in ${ds.name}`);
  return all;
}

/**
 * What `diffuse eval` asks a model trained on a data set's captions for: the
 * floor's prompts (FID), or with `agreement` one training emoji per sample by
 * name, n evenly spaced identities, with the class each should land in.
 */
export function evalPrompts(splits: EvalSplits, clf: Pick<Classifier, 'config'>, opts: { n: number; seed: number; agreement: boolean }): { prompts: string[]; requested?: Int32Array } {
  if (!opts.agreement) return { prompts: floorPrompts(splits.train, opts.n, opts.seed) };
  const train = splits.train as Partial<EmojiDataset>;
  const names = clf.config.labelNames;
  if (train.emoji === undefined) throw new DiffuseError(`asking by name needs the emoji data set, not ${splits.train.name}`);
  if (names === undefined) throw new DiffuseError('the classifier has no label names to match subcategories with');
  const requests = emojiPromptRequests({ emoji: train.emoji, name: splits.train.name }, names, { count: opts.n });
  if (requests.length < opts.n) throw new DiffuseError(`--n ${opts.n} but ${splits.train.name} has only ${requests.length} emoji to ask for`);
  return { prompts: requests.map((r) => r.prompt), requested: Int32Array.from(requests, (r) => r.label) };
}
