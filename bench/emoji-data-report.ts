/**
 * The numbers behind docs/emoji-data.md, from the installed packages:
 *
 *   npx tsc -p tsconfig.json && node dist/bench/emoji-data-report.js > /tmp/emoji-report.md
 *
 * Package sizes and image counts, identities and images per category and
 * split, the held-out list, caption lengths (maxTokens), the vocabulary and
 * how much of the held-out set it can prompt, the background statistics
 * behind compositing over white, identical images across the splits, and the
 * load times (first load decodes, later loads hit the in-process cache).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage } from '../src/io/image.js';
import { EMOJI_STYLES, emojiCatalog, emojiPackage, emojiPackageDir, loadEmoji, type EmojiImage } from '../src/data/emoji.js';
import { buildVocab, words } from '../src/text/tokenizer.js';

function bytesUnder(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const r = bytesUnder(p);
      bytes += r.bytes;
      files += r.files;
    } else {
      bytes += statSync(p).size;
      files++;
    }
  }
  return { bytes, files };
}

const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;
const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)}%`;
const out: string[] = [];
const say = (s = ''): void => { out.push(s); };

// ---------------------------------------------------------------- packages
say('## Packages');
say();
say('| package | version | installed | of which img/*/64 (PNGs) | sprite sheets (unused) |');
say('|---|---|---|---|---|');
for (const s of EMOJI_STYLES) {
  const dir = emojiPackageDir(s);
  const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  const all = bytesUnder(dir);
  const png = bytesUnder(join(dir, 'img', s, '64'));
  const sheets = readdirSync(join(dir, 'img', s)).filter((d) => d.startsWith('sheets')).reduce((a, d) => a + bytesUnder(join(dir, 'img', s, d)).bytes, 0);
  say(`| ${emojiPackage(s)} | ${version} | ${mb(all.bytes)} | ${mb(png.bytes)} (${png.files}) | ${mb(sheets)} |`);
}
say();

// ------------------------------------------------------------------ splits
const cat = emojiCatalog();
const identities = new Map<string, EmojiImage>();
for (const e of cat) if (!identities.has(e.identity)) identities.set(e.identity, e);
const ids = [...identities.values()];
say('## Splits per category');
say();
say('| category | identities (train / held out) | images (train / held out) |');
say('|---|---|---|');
const categories = [...new Set(cat.map((e) => e.category))].sort();
for (const c of [...categories, 'all']) {
  const inC = (e: EmojiImage): boolean => c === 'all' || e.category === c;
  const idT = ids.filter((e) => inC(e) && e.split === 'train').length;
  const idH = ids.filter((e) => inC(e) && e.split === 'heldout').length;
  const imT = cat.filter((e) => inC(e) && e.split === 'train').length;
  const imH = cat.filter((e) => inC(e) && e.split === 'heldout').length;
  const b = c === 'all' ? '**' : '';
  say(`| ${b}${c}${b} | ${idT} / ${idH} (${pct(idH, idT + idH)}) | ${imT} / ${imH} |`);
}
say();
for (const s of EMOJI_STYLES) {
  const mine = cat.filter((e) => e.style === s);
  say(`- ${s}: ${mine.length} images (${mine.filter((e) => e.tones.length === 0).length} base, ${mine.filter((e) => e.tones.length > 0).length} skin-tone variants)`);
}
say(`- ${new Set(cat.map((e) => e.subcategory)).size} subcategories in ${categories.length} categories`);
say();

// ---------------------------------------------------------------- captions
const train = cat.filter((e) => e.split === 'train');
const trainCaps = train.flatMap((e) => e.captions);
const vocab = buildVocab(trainCaps);
const known = new Set(vocab);
const lens = trainCaps.map((c) => words(c).length);
const maxTokens = Math.max(...lens);
say('## Captions and vocabulary (train split)');
say();
say(`- ${trainCaps.length} captions on ${train.length} images (${(trainCaps.length / train.length).toFixed(2)} per image, ${Math.min(...train.map((e) => e.captions.length))} to ${Math.max(...train.map((e) => e.captions.length))})`);
const hist = new Map<number, number>();
for (const l of lens) hist.set(l, (hist.get(l) ?? 0) + 1);
say(`- words per caption: ${[...hist.entries()].sort((a, b) => a[0] - b[0]).map(([l, n]) => `${l}: ${n}`).join(', ')}`);
const sorted = [...lens].sort((a, b) => a - b);
say(`- median ${sorted[Math.floor(sorted.length / 2)]}, 99th percentile ${sorted[Math.floor(sorted.length * 0.99)]}, longest ${maxTokens} = maxTokens: "${trainCaps[lens.indexOf(maxTokens)]}"`);
const perImage = new Map<string, number>();
for (const e of train) for (const w of new Set(e.captions.flatMap(words))) perImage.set(w, (perImage.get(w) ?? 0) + 1);
const counts = [...perImage.values()];
say(`- vocabulary: ${vocab.length - 1} words; ${counts.filter((n) => n <= 2).length} of them in at most 2 training images (one emoji in both styles), ${counts.filter((n) => n >= 20).length} in 20 or more`);
const held = ids.filter((e) => e.split === 'heldout');
const heldImgs = cat.filter((e) => e.split === 'heldout');
const canPrompt = (e: EmojiImage): boolean => words(e.captions[0]!).every((w) => known.has(w));
say(`- held out: ${held.filter(canPrompt).length} of ${held.length} identities have a name made only of training words (${heldImgs.filter(canPrompt).length} of ${heldImgs.length} images); ${held.filter((e) => e.captions.some((c) => words(c).every((w) => known.has(w)))).length} have at least one such caption`);
say();

// ---------------------------------------------------------------- held out
say('## Held-out emoji');
say();
say(ids.filter((e) => e.split === 'heldout').map((e) => `${e.name} (${e.subcategory}${canPrompt(e) ? '' : ', unknown word'})`).join('; '));
say();

// ------------------------------------------------------------- background
say('## Background statistics (opaque pixels: alpha ≥ 128)');
say();
say('| style | mean opaque share | near-white share (all channels > 230) | near-black share (< 25) | images > 30% near-white | images > 30% near-black | fully opaque images |');
say('|---|---|---|---|---|---|---|');
const hashes = new Map<string, EmojiImage[]>();
for (const s of EMOJI_STYLES) {
  const dir = emojiPackageDir(s);
  let opaque = 0, white = 0, black = 0, mostlyWhite = 0, mostlyBlack = 0, full = 0;
  const mine = cat.filter((e) => e.style === s);
  for (const e of mine) {
    const bytes = readFileSync(join(dir, e.file));
    const h = createHash('sha1').update(bytes).digest('hex');
    hashes.set(h, [...(hashes.get(h) ?? []), e]);
    const img = decodeImage(bytes, e.file);
    let op = 0, w = 0, k = 0;
    for (let i = 0; i < img.width * img.height; i++) {
      const p = i * img.channels;
      const a = img.channels === 4 ? img.data[p + 3]! : 255;
      if (a < 128) continue;
      op++;
      const [r, g, b] = img.channels === 1 ? [img.data[p]!, img.data[p]!, img.data[p]!] : [img.data[p]!, img.data[p + 1]!, img.data[p + 2]!];
      if (r > 230 && g > 230 && b > 230) w++;
      if (r < 25 && g < 25 && b < 25) k++;
    }
    opaque += op / (img.width * img.height);
    white += w / Math.max(op, 1);
    black += k / Math.max(op, 1);
    if (w > 0.3 * op) mostlyWhite++;
    if (k > 0.3 * op) mostlyBlack++;
    if (op === img.width * img.height) full++;
  }
  const n = mine.length;
  say(`| ${s} | ${pct(opaque, n)} | ${pct(white, n)} | ${pct(black, n)} | ${mostlyWhite} | ${mostlyBlack} | ${full} |`);
}
say();
const cross = [...hashes.values()].filter((g) => new Set(g.map((e) => e.split)).size > 1);
say(`Identical PNG files: ${[...hashes.values()].filter((g) => g.length > 1).length} groups, ${cross.length} of them across the splits: ${cross.map((g) => g.map((e) => `${e.style} ${e.name} (${e.split})`).join(' = ')).join('; ')}.`);
say();

// ------------------------------------------------------------------- speed
say('## Load time');
say();
let t = performance.now();
const ds = await loadEmoji({ split: 'train' });
const first = (performance.now() - t) / 1000;
t = performance.now();
const again = await loadEmoji({ split: 'train', imageSize: 32 });
const second = (performance.now() - t) / 1000;
say(`- first load (decode ${cat.length} PNGs, composite, 64×64 floats of the ${ds.shape[0]} train images): ${first.toFixed(2)} s`);
say(`- next load in the same process (32×32 area averages of the same images, ${again.shape[0]}): ${second.toFixed(2)} s`);
say(`- memory: ${mb(ds.images.byteLength)} of float32 pixels at 64×64, ${mb(again.images.byteLength)} at 32×32, plus ${mb(cat.length * 64 * 64 * 3)} of cached bytes`);

process.stdout.write(out.join('\n') + '\n');
