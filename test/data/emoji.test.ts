/**
 * The emoji data set: metadata -> captions (templates, short names, skin
 * tones in words), the held-out rule (FNV-1a against its published test
 * vectors; whole identities held out together), area-average downsampling,
 * and the installed packages end to end (counts, white background, 32 px =
 * 2×2 means of 64 px, labels, the in-process cache). Tests that read the
 * packages skip with a reason when they are not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { resizeAreaFloat } from '../../src/data/dataset.js';
import {
  EMOJI_ALWAYS_TRAINED, EMOJI_HELD_OUT_MODULUS, EMOJI_STYLES, emojiCaptions, emojiCatalog, emojiPhrases, emojiSplit, fnv1a32, loadEmoji,
  parseEmojiJson, resolvePackageDir, SKIN_TONES, withTones,
} from '../../src/data/emoji.js';
import { datasetCaptions, loadDataset } from '../../src/data/index.js';
import { emojiMissing } from './emoji-installed.js';
import { buildVocab, tokenize, words } from '../../src/text/tokenizer.js';
import { textEncoderFor } from '../../src/text/captions.js';
import { Rng } from '../../src/rng.js';

const installed = emojiMissing;

test('FNV-1a 32 matches its published test vectors; the split hashes the identity', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  for (const u of ['1F385', '0023-FE0F-20E3', '1F468-200D-1F469-200D-1F467', '1F34F']) {
    assert.equal(emojiSplit(u), fnv1a32(u) % EMOJI_HELD_OUT_MODULUS === 0 ? 'heldout' : 'train');
    assert.equal(emojiSplit(u.toLowerCase()), emojiSplit(u), 'case does not matter');
  }
  // the one exception: the red apple, which the hash would hold out, trains (the quick start's prompt)
  assert.equal(fnv1a32('1F34E') % EMOJI_HELD_OUT_MODULUS, 0);
  assert.deepEqual([...EMOJI_ALWAYS_TRAINED], ['1F34E']);
  assert.equal(emojiSplit('1F34E'), 'train');
  assert.equal(emojiSplit('1f34e'), 'train');
});

test('captions: name, short names, skin tones in words, three templates; canonical first', () => {
  assert.deepEqual(emojiCaptions({ name: 'RED APPLE', shortNames: ['apple'], subcategory: 'food-fruit', tones: [] }), [
    'red apple', 'an emoji of a red apple', 'food fruit: red apple',
    'apple', 'food fruit: apple',
  ]);
  assert.deepEqual(emojiCaptions({ name: 'FATHER CHRISTMAS', shortNames: ['santa'], subcategory: 'person-fantasy', tones: [SKIN_TONES['1F3FE']!] }), [
    'father christmas: medium-dark skin tone', 'an emoji of a father christmas: medium-dark skin tone', 'person fantasy: father christmas: medium-dark skin tone',
    'santa: medium-dark skin tone', 'person fantasy: santa: medium-dark skin tone',
  ]);
  assert.equal(withTones('kiss: man, man', ['light skin tone', 'dark skin tone']), 'kiss: man, man, light skin tone, dark skin tone');
  // short names: underscores become spaces; ones with no letter or the same words as the name are dropped
  assert.deepEqual(emojiPhrases('THUMBS UP SIGN', ['+1', 'thumbsup', 'thumbs_up_sign']), ['thumbs up sign', 'thumbsup']);
  assert.deepEqual(emojiPhrases('OK HAND SIGN', ['ok_hand']), ['ok hand sign', 'ok hand']);
  assert.equal(emojiCaptions({ name: 'ORANGE BOOK', shortNames: [], subcategory: 'book-paper', tones: [] })[1], 'an emoji of an orange book');
  // every caption reads as the words of its template
  for (const c of emojiCaptions({ name: 'T-SHIRT', shortNames: ['shirt', 'tshirt'], subcategory: 'clothing', tones: [] })) assert.ok(words(c).length > 0);
});

test('emoji.json parsing: base image and skin variations (one or two tones); bad records are one line', () => {
  const rec = {
    name: 'KISS: MAN, MAN', unified: '1F468-200D-2764-FE0F-200D-1F48B-200D-1F468', image: 'k.png', short_names: ['kiss'], category: 'People & Body', subcategory: 'family',
    sort_order: 5, has_img_twitter: true, has_img_google: false,
    skin_variations: { '1F3FB-1F3FF': { unified: 'X-1F3FB-1F3FF', image: 'k-1.png', has_img_twitter: true, has_img_google: true } },
  };
  const [e] = parseEmojiJson(JSON.stringify([rec]), 'emoji.json');
  assert.equal(e!.images.length, 2);
  assert.deepEqual(e!.images[1]!.tones, ['1F3FB', '1F3FF']);
  assert.deepEqual(e!.images[0]!.has, { twitter: true, google: false });
  const bad = (v: unknown, re: RegExp): void => assert.throws(() => parseEmojiJson(JSON.stringify(v), 'emoji.json'), (x: unknown) => x instanceof DiffuseError && re.test(x.message));
  bad([{ ...rec, name: 3 }], /emoji\.json: emoji #0\.name is not a non-empty string/);
  bad([{ ...rec, skin_variations: { '1F3FA': rec.skin_variations['1F3FB-1F3FF'] } }], /unknown tone '1F3FA'/);
  bad({}, /expected a list/);
  assert.throws(() => parseEmojiJson('{', 'emoji.json'), /emoji\.json: not JSON/);
});

test('a missing package is one line saying what to install', () => {
  assert.throws(() => resolvePackageDir('emoji-datasource-nonexistent'), (e: unknown) => e instanceof DiffuseError && /^data set emoji needs the npm package emoji-datasource-nonexistent: npm install -D emoji-datasource-nonexistent$/.test(e.message));
});

test('area averaging: 2× is the 2×2 block mean; any factor keeps constants and the image mean', () => {
  const rng = new Rng(3);
  const h = 8, w = 6, c = 2;
  const src = Float32Array.from({ length: h * w * c }, () => rng.normal());
  const half = resizeAreaFloat(src, h, w, c, 4, 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 3; x++) for (let k = 0; k < c; k++) {
    const at = (yy: number, xx: number): number => src[(yy * w + xx) * c + k]!;
    const mean = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4;
    assert.ok(Math.abs(half[(y * 3 + x) * c + k]! - mean) < 1e-6);
  }
  const mean = (a: Float32Array, ch: number): number => a.filter((_, i) => i % c === ch).reduce((s, v) => s + v, 0) / (a.length / c);
  for (const [oh, ow] of [[5, 4], [3, 5], [1, 1], [8, 6]] as const) {
    const out = resizeAreaFloat(src, h, w, c, oh, ow);
    for (let k = 0; k < c; k++) assert.ok(Math.abs(mean(out, k) - mean(src, k)) < 1e-5, `${oh}×${ow} keeps the mean`);
    const flat = resizeAreaFloat(new Float32Array(h * w * c).fill(0.25), h, w, c, oh, ow);
    assert.ok(flat.every((v) => Math.abs(v - 0.25) < 1e-6));
  }
  assert.deepEqual(resizeAreaFloat(src, h, w, c, h, w), src);
  assert.throws(() => resizeAreaFloat(src, h, w, c, 9, 6), /shrinks only/);
});

test('emoji catalog: identities held out whole, about 5%, captions fit a vocabulary from the train split', { skip: installed }, () => {
  const cat = emojiCatalog();
  const splits = new Map<string, Set<string>>();
  for (const e of cat) {
    if (!splits.has(e.identity)) splits.set(e.identity, new Set());
    splits.get(e.identity)!.add(e.split);
    assert.equal(e.split, emojiSplit(e.identity));
    assert.ok(e.captions.length >= 3 && e.captions[0] === (e.tones.length ? withTones(e.name, e.tones) : e.name));
    assert.equal(e.category === 'Component', false);
  }
  assert.ok([...splits.values()].every((s) => s.size === 1), 'every identity lies in one split');
  const held = [...splits.values()].filter((s) => s.has('heldout')).length;
  assert.ok(held / splits.size > 0.03 && held / splits.size < 0.07, `held out ${held} of ${splits.size}`);
  // both styles, and skin tones carried as words
  assert.deepEqual(new Set(cat.map((e) => e.style)), new Set(EMOJI_STYLES));
  const toned = cat.find((e) => e.tones.length === 1 && e.name === 'waving hand sign');
  assert.ok(toned && /^waving hand sign: (light|medium-light|medium|medium-dark|dark) skin tone$/.test(toned.captions[0]!));
  // the vocabulary of the train split reads every train caption
  const train = datasetCaptions({ name: 'emoji' });
  assert.equal(train.length, cat.filter((e) => e.split === 'train').length);
  const text = textEncoderFor(train.flat(), 8);
  assert.equal(text.vocab.length, buildVocab(train.flat()).length);
  for (const caps of train.slice(0, 500)) for (const c of caps) tokenize(c, text);
});

test('loading emoji: RGB over white, 32 px is the 2×2 mean of 64 px, labels and captions per image, cached per process', { skip: installed }, async () => {
  const calls: number[] = [];
  const full = await loadEmoji({ split: 'heldout', onProgress: (d) => calls.push(d) });
  const n = full.shape[0];
  assert.deepEqual(full.shape.slice(1), [64, 64, 3]);
  assert.equal(full.captions.length, n);
  assert.equal(full.emoji.length, n);
  assert.ok(full.emoji.every((e) => e.split === 'heldout'));
  // labels: subcategory and category indices, consistent with the per-image info
  for (let i = 0; i < n; i++) {
    assert.equal(full.labelNames[full.labels[i]!], full.emoji[i]!.subcategory);
    assert.equal(full.categoryNames[full.categories[i]!], full.emoji[i]!.category);
  }
  // groups: one id per emoji identity (all its skin tones, both styles), numbered 0..G-1
  const byGroup = new Map<number, Set<string>>();
  for (let i = 0; i < n; i++) {
    const g = full.groups[i]!;
    if (!byGroup.has(g)) byGroup.set(g, new Set());
    byGroup.get(g)!.add(full.emoji[i]!.identity);
  }
  assert.ok([...byGroup.values()].every((s) => s.size === 1), 'a group is one identity');
  assert.equal(byGroup.size, new Set(full.emoji.map((e) => e.identity)).size, 'an identity is one group');
  assert.deepEqual([...byGroup.keys()].sort((a, b) => a - b), Array.from({ length: byGroup.size }, (_, g) => g));
  // transparent corners composite to white (+1): true of almost every emoji
  const corner = (i: number): number[] => Array.from(full.images.subarray(i * 64 * 64 * 3, i * 64 * 64 * 3 + 3));
  const white = Array.from({ length: n }, (_, i) => corner(i).every((v) => v === 1)).filter(Boolean).length;
  assert.ok(white > 0.8 * n, `${white} of ${n} top-left pixels white`);
  assert.ok(full.images.every((v) => v >= -1 && v <= 1));
  // 32 px: exactly the 2×2 block means of the 64 px images (and no decoding the second time: cached)
  const progressBefore = calls.length;
  const small = await loadDataset({ name: 'emoji', split: 'heldout', imageSize: 32, channels: 3, onProgress: (d) => calls.push(d) });
  assert.equal(calls.length, progressBefore, 'second load decodes nothing');
  assert.deepEqual(small.shape, [n, 32, 32, 3]);
  for (const i of [0, Math.floor(n / 2), n - 1]) {
    for (const [y, x] of [[0, 0], [10, 17], [31, 31], [16, 5]] as const) {
      for (let k = 0; k < 3; k++) {
        const at = (yy: number, xx: number): number => full.images[i * 64 * 64 * 3 + (yy * 64 + xx) * 3 + k]!;
        const mean = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4;
        assert.ok(Math.abs(small.images[i * 32 * 32 * 3 + (y * 32 + x) * 3 + k]! - mean) < 1e-6);
      }
    }
  }
  assert.deepEqual(small.captions, full.captions);
  // one style, a limit balanced over subcategories, grayscale through the generic channel conversion
  const few = await loadDataset({ name: 'emoji', split: 'heldout', styles: ['google'], limit: 20, imageSize: 16, channels: 1 });
  assert.deepEqual(few.shape, [20, 16, 16, 1]);
  assert.equal(few.captions!.length, 20);
  await assert.rejects(loadEmoji({ imageSize: 65 }), /imageSize must be an integer in 1\.\.64/);
  await assert.rejects(loadDataset({ name: 'emoji', split: 'test' }), /split must be "train" or "heldout"/);
});
