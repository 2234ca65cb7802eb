/**
 * The tokenizer's word rule, its vocabulary, and what it says about prompts
 * it cannot read: the closest known words for an unknown one (edit distance,
 * checked against a brute-force definition), and one error for prompts with
 * no word at all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../../src/errors.js';
import { buildVocab, closestWords, editDistance, suggestionDistance, tokenize, words } from '../../src/text/tokenizer.js';
import { textEncoderFor } from '../../src/text/captions.js';
import { Rng } from '../../src/rng.js';

test('words: lower case, accents dropped, letters and digits of any script; punctuation separates', () => {
  assert.deepEqual(words('food: Red Apple'), ['food', 'red', 'apple']);
  assert.deepEqual(words('T-shirt'), ['t', 'shirt']);
  assert.deepEqual(words("o'clock"), words('o’clock'));
  assert.deepEqual(words("o'clock"), ['o', 'clock']);
  assert.deepEqual(words('Côte d’Ivoire, Curaçao & São Tomé'), ['cote', 'd', 'ivoire', 'curacao', 'sao', 'tome']);
  assert.deepEqual(words('Åland piñata'), ['aland', 'pinata']);
  assert.deepEqual(words('clock330 +1'), ['clock330', '1']);
  assert.deepEqual(words('日本 flag'), ['日本', 'flag']);
  assert.deepEqual(words(' ??? '), []);
  // the same words whichever way the caption and the prompt spell them
  assert.deepEqual(words('waving hand: medium-dark skin tone'), words('Waving hand medium dark skin tone'));
});

test('vocabulary: pad first, then every caption word once, sorted', () => {
  assert.deepEqual(buildVocab(['red apple', 'an emoji of a red apple', 'Food: Red Apple']), ['<pad>', 'a', 'an', 'apple', 'emoji', 'food', 'of', 'red']);
  const enc = textEncoderFor(['red apple', 'an emoji of a red apple'], 16);
  assert.equal(enc.maxTokens, 6);
  assert.equal(enc.dim, 16);
  assert.throws(() => textEncoderFor([]), /at least one/);
  assert.throws(() => textEncoderFor([new Array(300).fill('w').join(' ')]), /300 words; captions may have at most 256/);
});

/** Optimal string alignment distance, straight from its recurrence (no early exit, full table). */
function osaReference(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

test('editDistance equals the OSA recurrence, and its early exit only ever says "more than max"', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('aple', 'apple'), 1);
  assert.equal(editDistance('aple', 'maple'), 1);
  assert.equal(editDistance('paple', 'apple'), 1); // one swap
  assert.equal(editDistance('ca', 'abc'), 3); // OSA: a swapped pair is not edited again
  assert.equal(editDistance('teh', 'the'), 1); // one swap
  assert.equal(editDistance('', 'abc'), 3);
  const rng = new Rng(7);
  const word = (): string => Array.from({ length: Math.floor(rng.uniform() * 7) }, () => 'abcd'[Math.floor(rng.uniform() * 4)]).join('');
  for (let k = 0; k < 400; k++) {
    const a = word();
    const b = word();
    const ref = osaReference(a, b);
    assert.equal(editDistance(a, b), ref, `${a} / ${b}`);
    assert.equal(editDistance(b, a), ref, 'symmetric');
    const max = Math.floor(rng.uniform() * 4);
    const capped = editDistance(a, b, max);
    if (ref <= max) assert.equal(capped, ref, `${a} / ${b} within ${max}`);
    else assert.ok(capped > max, `${a} / ${b} beyond ${max}: ${capped}`);
  }
});

test('closestWords: nearest first within 40% of the longer word, ties by shared prefix, never the pad', () => {
  const vocab = ['<pad>', 'ae', 'apple', 'axe', 'eagle', 'maple', 'pad', 'table', 'zebra'];
  assert.deepEqual(closestWords('aple', vocab), ['apple', 'maple', 'eagle', 'table']);
  assert.equal(suggestionDistance('aple', 'ae'), 1); // 'ae' is 2 edits away: not suggested
  assert.deepEqual(closestWords('aple', vocab, 1), ['apple']);
  assert.deepEqual(closestWords('qqqqq', vocab), []);
});

test('tokenize: unknown words name the first one and its closest words; no words at all is an error; blank is no prompt', () => {
  const text = { vocab: buildVocab(['red apple', 'green apple', 'maple leaf', 'an emoji of a table']), maxTokens: 5, dim: 8 };
  assert.deepEqual([...tokenize('Red  APPLE!', text)], [text.vocab.indexOf('red'), text.vocab.indexOf('apple'), 0, 0, 0]);
  const fails = (prompt: string, re: RegExp): void => {
    assert.throws(() => tokenize(prompt, text), (e: unknown) => e instanceof DiffuseError && re.test(e.message) && !e.message.includes('\n'), prompt);
  };
  fails('a red aple', /^unknown word 'aple' in prompt 'a red aple'; closest known words: apple, maple, table$/);
  fails('a qqqqq', /^unknown word 'qqqqq' in prompt 'a qqqqq'; no known word is close \(this model knows 10 words\)$/);
  fails('日本', /unknown word '日本'.*no known word is close/);
  fails('???', /^prompt '\?\?\?' has no words/);
  fails('<pad>', /unknown word 'pad'/); // the pad token is not a word
  fails('red red red red red red', /has 6 words; this model reads at most 5/);
  assert.deepEqual([...tokenize('', text)], [0, 0, 0, 0, 0]);
  assert.deepEqual([...tokenize('   ', text)], [0, 0, 0, 0, 0]);
  assert.deepEqual([...tokenize('Máple LEAF', text)], [...tokenize('maple leaf', text)]);
});
