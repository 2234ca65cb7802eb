/**
 * Emoji: colour 64×64 images with captions, from the npm packages
 * `emoji-datasource-twitter` and `emoji-datasource-google` (MIT; iamcal's
 * emoji-data: one 64×64 RGBA PNG per emoji and per skin tone under
 * img/<style>/64/, and emoji.json with each emoji's name, short names,
 * category, subcategory and skin variations). docs/emoji-data.md has the
 * counts and the held-out list.
 *
 * - Images: every emoji with an image in the style (the "Component" category,
 *   the five bare skin-tone swatches, is left out: a tone is an attribute of
 *   a person, not a picture of its own), its base image and each skin-tone
 *   variant. RGBA is composited over white (what folders do too, and how
 *   emoji are usually shown; see the docs for the numbers), RGB kept.
 *   Smaller sizes are area averages of the 64×64 pixels.
 * - Captions, all lower case, from the metadata: the phrases are the name and
 *   each short name that has a letter and says something else
 *   ("santa" for "father christmas"; underscores and hyphens become spaces),
 *   a skin-tone variant carrying its tones in words as Unicode's CLDR names do
 *   ("waving hand: medium-dark skin tone", "kiss: man, man, light skin tone,
 *   dark skin tone"), in the templates "{p}", "an emoji of a {p}" (the name
 *   only) and "{subcategory}: {p}" ("food fruit: red apple"). The first
 *   caption (the name, with tones) is the canonical prompt.
 * - Labels: each image's subcategory (`labels`, `labelNames`, e.g.
 *   food-fruit) and category (`categories`, `categoryNames`), over the whole
 *   set, so the train and held-out splits share indices.
 * - Held-out split: an emoji identity (one emoji.json record: all its skin
 *   tones, both art styles) is held out iff the FNV-1a 32-bit hash of its
 *   unified code (the upper-case hex in emoji.json, e.g. "1F34E") is 0 mod
 *   20, about 5%. Fixed by the code points alone: a new package version only
 *   adds or drops emoji, it never moves one between splits. One exception
 *   (EMOJI_ALWAYS_TRAINED): the red apple, which the rule would hold out, is
 *   the prompt the project promises a new user ("red apple"), so it trains.
 * - Groups: each image's emoji identity (`groups`), so training can draw
 *   every emoji equally often whatever its number of skin tones
 *   (data.balance 'groups').
 *
 * The decoded pixels are cached once per process (two styles, 7.5k images,
 * about 1.7 s to decode here); every load after the first only selects and
 * converts.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DiffuseError } from '../errors.js';
import { decodeImage } from '../io/image.js';
import { words } from '../text/tokenizer.js';
import { balancedIndices, type Dataset, firstAppearanceIds, resizeAreaFloat } from './dataset.js';

export const EMOJI_STYLES = ['twitter', 'google'] as const;
export type EmojiStyle = (typeof EMOJI_STYLES)[number];
export type EmojiSplit = 'train' | 'heldout';
/** Side length of the packages' images. */
export const EMOJI_SIZE = 64;
/** Held out iff fnv1a32(unified) % EMOJI_HELD_OUT_MODULUS === 0. */
export const EMOJI_HELD_OUT_MODULUS = 20;
/**
 * Identities the held-out rule would hold out that train anyway: "red apple"
 * (1F34E) is the prompt of the README's quick start and of the project's
 * stated goal (a new user asks for it and gets one), which a model can only
 * keep if it has seen the emoji. docs/emoji-data.md says so next to the list.
 */
export const EMOJI_ALWAYS_TRAINED: readonly string[] = ['1F34E'];
/** Categories left out of the data set. */
export const EMOJI_EXCLUDED_CATEGORIES: readonly string[] = ['Component'];

/** The skin-tone modifiers (Fitzpatrick types 1-2 .. 6) in CLDR's words. */
export const SKIN_TONES: Readonly<Record<string, string>> = {
  '1F3FB': 'light skin tone',
  '1F3FC': 'medium-light skin tone',
  '1F3FD': 'medium skin tone',
  '1F3FE': 'medium-dark skin tone',
  '1F3FF': 'dark skin tone',
};

/** The npm package of a style. */
export function emojiPackage(style: EmojiStyle): string {
  return `emoji-datasource-${style}`;
}

/** One emoji.json record, checked. */
export interface EmojiEntry {
  readonly name: string;
  readonly unified: string;
  readonly shortNames: readonly string[];
  readonly category: string;
  readonly subcategory: string;
  readonly sortOrder: number;
  /** The base image and its skin-tone variants (tones: modifier codes, e.g. ['1F3FB'] or ['1F3FB', '1F3FF']). */
  readonly images: readonly { readonly unified: string; readonly file: string; readonly tones: readonly string[]; readonly has: Readonly<Record<EmojiStyle, boolean>> }[];
}

/** One image of the data set, with what the evaluation needs to know about it. */
export interface EmojiImage {
  readonly style: EmojiStyle;
  /** Code points of this image (a skin-tone variant has its own). */
  readonly unified: string;
  /** The emoji identity it belongs to (the base record's code points); the held-out rule hashes this. */
  readonly identity: string;
  /** Lower-case name ("red apple"). */
  readonly name: string;
  /** Skin tones in words ([] for the base image). */
  readonly tones: readonly string[];
  readonly category: string;
  readonly subcategory: string;
  readonly split: EmojiSplit;
  /** The PNG, relative to the style's package folder (img/<style>/64/<file>). */
  readonly file: string;
  /** Training captions; [0] is the canonical prompt. */
  readonly captions: readonly string[];
}

/** FNV-1a, 32 bits, over the UTF-16 code units of `s` (all ASCII here). */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The split of an emoji identity (its base record's unified code, e.g. "1F34E"). */
export function emojiSplit(identity: string): EmojiSplit {
  const id = identity.toUpperCase();
  if (EMOJI_ALWAYS_TRAINED.includes(id)) return 'train';
  return fnv1a32(id) % EMOJI_HELD_OUT_MODULUS === 0 ? 'heldout' : 'train';
}

function article(phrase: string): string {
  return /^[aeiou]/.test(phrase) ? 'an' : 'a';
}

/** The phrases of an emoji: its name, then the short names that have a letter and differ from it (in words). */
export function emojiPhrases(name: string, shortNames: readonly string[]): string[] {
  const out = [name.toLowerCase()];
  const key = (p: string): string => words(p).join(' ');
  const seen = new Set(out.map(key));
  for (const s of shortNames) {
    const p = s.toLowerCase().replace(/[_-]+/g, ' ').trim();
    if (!/[a-z]/.test(p) || seen.has(key(p))) continue;
    seen.add(key(p));
    out.push(p);
  }
  return out;
}

/** A phrase with its skin tones, in CLDR's style: "waving hand: light skin tone", "kiss: man, man, light skin tone, dark skin tone". */
export function withTones(phrase: string, tones: readonly string[]): string {
  if (tones.length === 0) return phrase;
  return `${phrase}${phrase.includes(':') ? ', ' : ': '}${tones.join(', ')}`;
}

/** The templates each phrase is put in ({p}: the phrase, {a}: its article, {sub}: the subcategory in words). */
export const EMOJI_CAPTION_TEMPLATES: readonly string[] = ['{p}', 'an emoji of {a} {p}', '{sub}: {p}'];

/**
 * Every caption of one image, canonical first: the name in each template,
 * then each other phrase in the templates without the article (short names
 * are often adjectives or verbs: "grinning", "joy", "sweat smile").
 */
export function emojiCaptions(e: { name: string; shortNames: readonly string[]; subcategory: string; tones: readonly string[] }): string[] {
  const sub = e.subcategory.toLowerCase().replace(/-/g, ' ');
  const out: string[] = [];
  emojiPhrases(e.name, e.shortNames).forEach((phrase, i) => {
    const p = withTones(phrase, e.tones);
    for (const t of EMOJI_CAPTION_TEMPLATES) {
      if (i > 0 && t.includes('{a}')) continue;
      out.push(t.replace('{p}', p).replace('{a}', article(p)).replace('{sub}', sub));
    }
  });
  return out;
}

// ------------------------------------------------------------------ metadata

const require = createRequire(import.meta.url);

/** Folder of an installed npm package; a one-line error saying what to install if it is not. */
export function resolvePackageDir(pkg: string): string {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch (e) {
    throw new DiffuseError(`data set emoji needs the npm package ${pkg}: npm install -D ${pkg}`, { cause: e });
  }
}

/** Folder of a style's installed package. */
export function emojiPackageDir(style: EmojiStyle): string {
  if (!EMOJI_STYLES.includes(style)) throw new DiffuseError(`emoji: unknown style '${String(style)}' (expected ${EMOJI_STYLES.join(' or ')})`);
  return resolvePackageDir(emojiPackage(style));
}

function str(v: unknown, what: string, file: string): string {
  if (typeof v !== 'string' || v === '') throw new DiffuseError(`${file}: ${what} is not a non-empty string`);
  return v;
}

function hasFlags(rec: Record<string, unknown>): Record<EmojiStyle, boolean> {
  return { twitter: rec['has_img_twitter'] === true, google: rec['has_img_google'] === true };
}

/** Parse emoji.json text (the same file in both packages) into checked entries, in the file's order. */
export function parseEmojiJson(text: string, file: string): EmojiEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DiffuseError(`${file}: not JSON (${(e as Error).message})`, { cause: e });
  }
  if (!Array.isArray(raw)) throw new DiffuseError(`${file}: expected a list of emoji`);
  return raw.map((r: unknown, i): EmojiEntry => {
    if (typeof r !== 'object' || r === null) throw new DiffuseError(`${file}: emoji #${i} is not an object`);
    const rec = r as Record<string, unknown>;
    const where = `emoji #${i}`;
    const unified = str(rec['unified'], `${where}.unified`, file);
    const shortNames = rec['short_names'];
    if (!Array.isArray(shortNames) || shortNames.some((s) => typeof s !== 'string')) throw new DiffuseError(`${file}: ${where}.short_names is not a list of strings`);
    const images: EmojiEntry['images'][number][] = [{ unified, file: str(rec['image'], `${where}.image`, file), tones: [], has: hasFlags(rec) }];
    const vars = rec['skin_variations'];
    if (vars !== undefined && vars !== null) {
      if (typeof vars !== 'object') throw new DiffuseError(`${file}: ${where}.skin_variations is not an object`);
      for (const [key, v] of Object.entries(vars as Record<string, unknown>)) {
        const tones = key.split('-');
        if (tones.some((t) => SKIN_TONES[t] === undefined)) throw new DiffuseError(`${file}: ${where}.skin_variations has an unknown tone '${key}'`);
        if (typeof v !== 'object' || v === null) throw new DiffuseError(`${file}: ${where}.skin_variations.${key} is not an object`);
        const vr = v as Record<string, unknown>;
        images.push({ unified: str(vr['unified'], `${where}.skin_variations.${key}.unified`, file), file: str(vr['image'], `${where}.skin_variations.${key}.image`, file), tones, has: hasFlags(vr) });
      }
    }
    const sortOrder = rec['sort_order'];
    return {
      name: str(rec['name'], `${where}.name`, file),
      unified,
      shortNames: shortNames as string[],
      category: str(rec['category'], `${where}.category`, file),
      subcategory: str(rec['subcategory'], `${where}.subcategory`, file),
      sortOrder: typeof sortOrder === 'number' ? sortOrder : i,
      images,
    };
  });
}

const entryCache = new Map<string, EmojiEntry[]>();

/** The entries of a style's installed emoji.json (read once per process). */
export function emojiEntries(style: EmojiStyle): EmojiEntry[] {
  const file = join(emojiPackageDir(style), 'emoji.json');
  let entries = entryCache.get(file);
  if (entries === undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new DiffuseError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); reinstall ${emojiPackage(style)}`, { cause: e });
    }
    entries = parseEmojiJson(text, file);
    entryCache.set(file, entries);
  }
  return entries;
}

/** The images of one style, in data-set order (emoji.json's sort order; base image, then its tones). */
export function emojiImages(entries: readonly EmojiEntry[], style: EmojiStyle): EmojiImage[] {
  const out: EmojiImage[] = [];
  const sorted = [...entries].sort((a, b) => a.sortOrder - b.sortOrder);
  for (const e of sorted) {
    if (EMOJI_EXCLUDED_CATEGORIES.includes(e.category)) continue;
    const split = emojiSplit(e.unified);
    for (const img of e.images) {
      if (!img.has[style]) continue;
      const tones = img.tones.filter((t, i) => img.tones.indexOf(t) === i).map((t) => SKIN_TONES[t]!);
      out.push({
        style,
        unified: img.unified,
        identity: e.unified,
        name: e.name.toLowerCase(),
        tones,
        category: e.category,
        subcategory: e.subcategory,
        split,
        file: `img/${style}/${EMOJI_SIZE}/${img.file}`,
        captions: emojiCaptions({ name: e.name, shortNames: e.shortNames, subcategory: e.subcategory, tones }),
      });
    }
  }
  return out;
}

/** Every image of the given styles (default both), metadata only: no pixel is read. */
export function emojiCatalog(styles: readonly EmojiStyle[] = EMOJI_STYLES): EmojiImage[] {
  checkStyles(styles);
  return styles.flatMap((s) => emojiImages(emojiEntries(s), s));
}

function checkStyles(styles: readonly EmojiStyle[]): void {
  if (styles.length === 0) throw new DiffuseError(`emoji: styles must name at least one of ${EMOJI_STYLES.join(', ')}`);
  for (const s of styles) if (!EMOJI_STYLES.includes(s)) throw new DiffuseError(`emoji: unknown style '${String(s)}' (expected ${EMOJI_STYLES.join(' or ')})`);
  if (new Set(styles).size !== styles.length) throw new DiffuseError(`emoji: style listed twice in ${styles.join(', ')}`);
}

// -------------------------------------------------------------------- pixels

/** One style's decoded pixels: N×64×64×3 bytes over white, in emojiImages order; null = did not decode. */
interface StylePixels {
  readonly rgb: Uint8Array;
  readonly bad: (string | null)[];
}

const pixelCache = new Map<string, StylePixels>();

/** Composite straight-alpha RGBA (or RGB / gray) bytes over white into RGB bytes. */
export function compositeOverWhite(img: { data: Uint8Array; width: number; height: number; channels: number }, dst: Uint8Array, offset: number): void {
  const { data, channels: c } = img;
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const s = i * c;
    const o = offset + i * 3;
    if (c === 1) { dst[o] = dst[o + 1] = dst[o + 2] = data[s]!; continue; }
    const a = c === 4 ? data[s + 3]! : 255;
    if (a === 255) { dst[o] = data[s]!; dst[o + 1] = data[s + 1]!; dst[o + 2] = data[s + 2]!; continue; }
    const white = 255 * (255 - a) + 127; // + 127: round to nearest
    dst[o] = ((data[s]! * a + white) / 255) | 0;
    dst[o + 1] = ((data[s + 1]! * a + white) / 255) | 0;
    dst[o + 2] = ((data[s + 2]! * a + white) / 255) | 0;
  }
}

function stylePixels(style: EmojiStyle, images: readonly EmojiImage[], onProgress?: (done: number, total: number) => void): StylePixels {
  const dir = emojiPackageDir(style);
  const cached = pixelCache.get(dir);
  if (cached !== undefined && cached.bad.length === images.length) return cached;
  const per = EMOJI_SIZE * EMOJI_SIZE * 3;
  const rgb = new Uint8Array(images.length * per);
  const bad: (string | null)[] = [];
  images.forEach((im, i) => {
    const path = join(dir, im.file);
    try {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        throw new DiffuseError(`cannot read image '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
      }
      const img = decodeImage(bytes, path);
      if (img.width !== EMOJI_SIZE || img.height !== EMOJI_SIZE) throw new DiffuseError(`image '${path}' is ${img.width}×${img.height}, expected ${EMOJI_SIZE}×${EMOJI_SIZE}`);
      compositeOverWhite(img, rgb, i * per);
      bad.push(null);
    } catch (e) {
      if (!(e instanceof DiffuseError)) throw e;
      bad.push(e.message);
    }
    onProgress?.(i + 1, images.length);
  });
  const px = { rgb, bad };
  pixelCache.set(dir, px);
  return px;
}

// ---------------------------------------------------------------------- load

export interface EmojiOptions {
  /** Art styles (default both). */
  styles?: readonly EmojiStyle[];
  /** 'train' (default), 'heldout', or 'all'. */
  split?: EmojiSplit | 'all';
  /** Side length, 1..64 (default 64); smaller sizes are area averages. */
  imageSize?: number;
  /** Skip images that do not decode (listed in `skipped`) instead of failing. */
  skipBad?: boolean;
  /** Keep at most this many images (balanced over subcategories). */
  limit?: number;
  /** Decoding progress (the first load in a process decodes; later loads are instant). */
  onProgress?: (done: number, total: number) => void;
}

export interface EmojiDataset extends Dataset {
  /** Subcategory index of each image (into labelNames, e.g. "food-fruit"). */
  labels: Int32Array;
  labelNames: string[];
  /** Category index of each image (into categoryNames, e.g. "Food & Drink"). */
  categories: Int32Array;
  categoryNames: string[];
  captions: string[][];
  /** Per image: style, code points, name, tones, category, subcategory, split, file. */
  emoji: EmojiImage[];
  /** Per image: its emoji identity, numbered 0..G-1 in order of first appearance. */
  groups: Int32Array;
  skipped: { file: string; reason: string }[];
}

/** Load the emoji images of a split as a data set (RGB, values in [-1, 1]). */
export async function loadEmoji(opts: EmojiOptions = {}): Promise<EmojiDataset> {
  const styles = opts.styles ?? EMOJI_STYLES;
  checkStyles(styles);
  const split = opts.split ?? 'train';
  if (split !== 'train' && split !== 'heldout' && split !== 'all') throw new DiffuseError(`data set emoji: split must be "train", "heldout" or "all", got "${String(split)}"`);
  const size = opts.imageSize ?? EMOJI_SIZE;
  if (!Number.isInteger(size) || size < 1 || size > EMOJI_SIZE) throw new DiffuseError(`data set emoji: imageSize must be an integer in 1..${EMOJI_SIZE} (the packages' images are ${EMOJI_SIZE}×${EMOJI_SIZE}), got ${size}`);
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1)) throw new DiffuseError(`data set emoji: limit must be a positive integer, got ${opts.limit}`);

  const perStyle = styles.map((s) => ({ style: s, images: emojiImages(emojiEntries(s), s) }));
  const everything = perStyle.flatMap((p) => p.images);
  const labelNames = [...new Set(everything.map((e) => e.subcategory))].sort();
  const categoryNames = [...new Set(everything.map((e) => e.category))].sort();
  const total = everything.length;
  let before = 0;
  const pixels = perStyle.map((p) => {
    const offset = before;
    before += p.images.length;
    return stylePixels(p.style, p.images, opts.onProgress ? (d) => opts.onProgress!(offset + d, total) : undefined);
  });

  // candidates: (style, index) of the split, bad ones skipped or fatal
  const skipped: { file: string; reason: string }[] = [];
  let picked: { s: number; i: number }[] = [];
  perStyle.forEach((p, s) => p.images.forEach((im, i) => {
    if (split !== 'all' && im.split !== split) return;
    const reason = pixels[s]!.bad[i];
    if (reason) {
      if (!opts.skipBad) throw new DiffuseError(`data set emoji: ${reason}`);
      skipped.push({ file: join(emojiPackageDir(p.style), im.file), reason });
      return;
    }
    picked.push({ s, i });
  }));
  if (picked.length === 0) throw new DiffuseError(`data set emoji: no images in split '${split}'`);
  const subOf = (q: { s: number; i: number }): number => labelNames.indexOf(perStyle[q.s]!.images[q.i]!.subcategory);
  if (opts.limit !== undefined && opts.limit < picked.length) {
    const idx = balancedIndices(picked.length, opts.limit, picked.map(subOf));
    picked = Array.from(idx, (k) => picked[k]!);
  }

  const n = picked.length;
  const src = EMOJI_SIZE * EMOJI_SIZE * 3;
  const per = size * size * 3;
  const images = new Float32Array(n * per);
  const full = new Float32Array(src);
  const toUnit = new Float32Array(256).map((_, v) => v / 127.5 - 1);
  const labels = new Int32Array(n);
  const categories = new Int32Array(n);
  const info: EmojiImage[] = [];
  picked.forEach((q, j) => {
    const im = perStyle[q.s]!.images[q.i]!;
    const rgb = pixels[q.s]!.rgb.subarray(q.i * src, (q.i + 1) * src);
    const dst = size === EMOJI_SIZE ? images.subarray(j * per, (j + 1) * per) : full;
    for (let k = 0; k < src; k++) dst[k] = toUnit[rgb[k]!]!;
    if (size !== EMOJI_SIZE) resizeAreaFloat(full, EMOJI_SIZE, EMOJI_SIZE, 3, size, size, images, j * per);
    labels[j] = subOf(q);
    categories[j] = categoryNames.indexOf(im.category);
    info.push(im);
  });
  return {
    name: split === 'train' ? 'emoji' : `emoji:${split}`,
    images,
    shape: [n, size, size, 3],
    labels,
    labelNames,
    categories,
    categoryNames,
    captions: info.map((e) => [...e.captions]),
    emoji: info,
    groups: firstAppearanceIds(info.map((e) => e.identity)),
    skipped,
  };
}
