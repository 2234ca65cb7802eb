/**
 * Classifier-free guidance and generation, proven on closed-form denoisers:
 * a class-conditional Gaussian mixture whose exact conditional and
 * unconditional denoisers are known, so no training is needed.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { classifierFreeGuidance } from '../../src/guidance/cfg.js';
import { resolveClass } from '../../src/guidance/labels.js';
import { generate, frameSteps } from '../../src/generate.js';
import { gaussianMixtureOracle } from '../../src/diffusion/gaussian-oracle.js';
import { makeSchedule } from '../../src/schedule.js';
import type { ModelFn, Shape4 } from '../../src/diffusion/types.js';
import { DiffuseError } from '../../src/errors.js';
import { SAMPLER_NAMES } from '../../src/samplers/factory.js';

const schedule = makeSchedule('linear', 1000);
const MEANS = [-1, 1];
const STD = 0.3;

/** Class k -> N(MEANS[k], STD²); class 2 ("no class") -> the 50/50 mixture. One oracle per sample. */
function conditionalOracle(): ModelFn {
  const perClass = MEANS.map((m) => gaussianMixtureOracle({ schedule, prediction: 'epsilon', components: [{ weight: 1, mean: m, std: STD }] }));
  const uncond = gaussianMixtureOracle({ schedule, prediction: 'epsilon', components: MEANS.map((m) => ({ weight: 1, mean: m, std: STD })) });
  return async (x, t, shape, classes) => {
    const [n, h, w, c] = shape;
    const per = h * w * c;
    const out = new Float32Array(x.length);
    for (let i = 0; i < n; i++) {
      const k = classes?.[i] ?? 2;
      const f = k === 2 ? uncond : perClass[k]!;
      out.set(await f(x.subarray(i * per, (i + 1) * per), t, [1, h, w, c]), i * per);
    }
    return out;
  };
}

function stats(a: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of a) s += v;
  const mean = s / a.length;
  let q = 0;
  for (const v of a) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / (a.length - 1)) };
}

test('guidance mixes (1+w)·cond − w·uncond in one doubled batch', async () => {
  const calls: { n: number; classes: number[] }[] = [];
  const fake: ModelFn = (x, _t, shape, classes) => {
    calls.push({ n: shape[0], classes: [...(classes ?? [])] });
    // cond rows return 1 + class, uncond rows return 10
    const per = x.length / shape[0];
    const out = new Float32Array(x.length);
    for (let i = 0; i < shape[0]; i++) out.fill(classes![i] === 3 ? 10 : 1 + classes![i]!, i * per, (i + 1) * per);
    return out;
  };
  const g = classifierFreeGuidance(fake, { cond: Int32Array.of(0, 2), nullCond: Int32Array.of(3), weight: 2 });
  const shape: Shape4 = [2, 1, 2, 1];
  const out = await g(new Float32Array(4), 5, shape);
  assert.deepEqual(calls, [{ n: 4, classes: [0, 2, 3, 3] }]);
  // sample 0: 3·1 − 2·10 = −17; sample 1: 3·3 − 2·10 = −11
  assert.deepEqual([...out], [-17, -17, -11, -11]);
  // w = 0: one conditional pass, no doubling
  const g0 = classifierFreeGuidance(fake, { cond: Int32Array.of(1, 1), nullCond: Int32Array.of(3), weight: 0 });
  assert.deepEqual([...(await g0(new Float32Array(4), 5, shape))], [2, 2, 2, 2]);
  assert.equal(calls.length, 2);
  assert.equal(calls[1]!.n, 2);
});

test('guidance rejects bad weights and ragged condition rows', () => {
  const m: ModelFn = (x) => x;
  assert.throws(() => classifierFreeGuidance(m, { cond: Int32Array.of(0), nullCond: Int32Array.of(3), weight: -1 }), DiffuseError);
  assert.throws(() => classifierFreeGuidance(m, { cond: Int32Array.of(1, 2, 3), nullCond: Int32Array.of(0, 0), weight: 1 }), /rows of 2/);
});

test('guidance with token rows (text models): null rows are all pads, doubled batch keeps rows intact', async () => {
  const calls: number[][] = [];
  const fake: ModelFn = (x, _t, shape, cond) => {
    calls.push([...(cond ?? [])]);
    const per = x.length / shape[0];
    const out = new Float32Array(x.length);
    // output = sum of the row's tokens
    for (let i = 0; i < shape[0]; i++) out.fill(cond![2 * i]! + cond![2 * i + 1]!, i * per, (i + 1) * per);
    return out;
  };
  const g = classifierFreeGuidance(fake, { cond: Int32Array.of(3, 4, 5, 0), nullCond: Int32Array.of(0, 0), weight: 1 });
  const out = await g(new Float32Array(2), 9, [2, 1, 1, 1]);
  assert.deepEqual(calls[0], [3, 4, 5, 0, 0, 0, 0, 0]);
  assert.deepEqual([...out], [14, 10]); // 2·7 − 0, 2·5 − 0
  // all rows null: one unconditional pass
  const u = classifierFreeGuidance(fake, { cond: new Int32Array(4), nullCond: Int32Array.of(0, 0), weight: 3 });
  await u(new Float32Array(2), 9, [2, 1, 1, 1]);
  assert.equal(calls[1]!.length, 4);
});

test('generate() with a class condition samples that class; guidance pushes away from the unconditional', async () => {
  const model = conditionalOracle();
  const n = 400;
  const meanAt = async (k: number, guidance: number): Promise<{ mean: number; wrongSide: number }> => {
    const r = await generate(model, {
      schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: 1, channels: 1,
      sampler: 'ddim', steps: 50, n, seed: 7 + k, clip: false,
      condition: { cond: new Int32Array(n).fill(k), nullCond: Int32Array.of(2), guidance },
    });
    return { mean: stats(r.images).mean, wrongSide: r.images.filter((v) => Math.sign(v) !== Math.sign(MEANS[k]!)).length };
  };
  for (const k of [0, 1]) {
    // w = 0 is the exact conditional model: the class's own Gaussian.
    // SE of the mean is 0.3/sqrt(400) = 0.015; DDIM-50 adds a small discretisation bias.
    const plain = await meanAt(k, 0);
    assert.ok(Math.abs(plain.mean - MEANS[k]!) < 0.08, `class ${k}, w=0: mean ${plain.mean}`);
    assert.ok(plain.wrongSide <= n * 0.01, `class ${k}, w=0: ${plain.wrongSide} samples on the other mode`);
    // w = 2 extrapolates away from the unconditional mixture (mean 0): further out, never the other mode.
    const guided = await meanAt(k, 2);
    assert.ok(Math.sign(guided.mean) === Math.sign(MEANS[k]!) && Math.abs(guided.mean) > Math.abs(plain.mean) + 0.05,
      `class ${k}: guided mean ${guided.mean} should lie beyond the unguided ${plain.mean}`);
    assert.equal(guided.wrongSide, 0);
  }
  // Without a condition ("no class"), both modes appear.
  const r = await generate(model, {
    schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: 1, channels: 1,
    sampler: 'ddim', steps: 50, n, seed: 3, clip: false,
    condition: { cond: new Int32Array(n).fill(2), nullCond: Int32Array.of(2), guidance: 0 },
  });
  const pos = r.images.filter((v) => v > 0).length / n;
  assert.ok(pos > 0.4 && pos < 0.6, `unconditional: ${pos} of samples on the + mode`);
});

test('generate() is seeded, independent of batch size for deterministic samplers, and records frames', async () => {
  const model = conditionalOracle();
  const base = { schedule: 'linear' as const, timesteps: 1000, prediction: 'epsilon' as const, imageSize: 2, channels: 1, sampler: 'ddim' as const, steps: 20, n: 6, seed: 11 };
  const a = await generate(model, base);
  const b = await generate(model, { ...base, batchSize: 4, recordFrames: 5, recordSamples: 3 });
  assert.deepEqual(a.images, b.images);
  const c = await generate(model, { ...base, seed: 12 });
  assert.notDeepEqual(a.images, c.images);
  assert.equal(b.frames.length, 5);
  assert.deepEqual(b.frames.map((f) => f.i), [...frameSteps(20, 5)].sort((p, q) => p - q));
  assert.equal(b.frames[0]!.x.length, 3 * 4);
  // the last recorded frame is the final sample
  assert.deepEqual(b.frames[4]!.x, b.images.subarray(0, 12));
});

test('generate() onStep sees every step (i, t, x_t, predicted x_0, chunk); frames are taken after their step', async () => {
  const model = conditionalOracle();
  const base = { schedule: 'linear' as const, timesteps: 1000, prediction: 'epsilon' as const, imageSize: 2, channels: 1, sampler: 'ddim' as const, steps: 8, n: 5, seed: 2 };
  const seen: Array<{ done: number; total: number; i: number; t: number; first: number; count: number; x: Float32Array; predX0: Float32Array }> = [];
  const r = await generate(model, {
    ...base, batchSize: 3, recordFrames: 8, recordSamples: 5,
    onStep: (done, total, s) => seen.push({ done, total, i: s.i, t: s.t, first: s.first, count: s.count, x: s.x.slice(), predX0: s.predX0.slice() }),
  });
  assert.equal(seen.length, 16);
  assert.deepEqual(seen.map((s) => s.done), Array.from({ length: 16 }, (_, k) => k + 1));
  assert.ok(seen.every((s) => s.total === 16));
  assert.deepEqual(seen.map((s) => [s.first, s.count, s.i]), [0, 3].flatMap((first) => Array.from({ length: 8 }, (_, i) => [first, first === 0 ? 3 : 2, i])));
  assert.ok(seen.every((s, k) => k % 8 === 0 || s.t < seen[k - 1]!.t), 't decreases within a chunk');
  // The last step's x is the final sample of its chunk; each frame is the x right after its step.
  assert.deepEqual(seen[7]!.x, r.images.subarray(0, 12));
  assert.deepEqual(seen[15]!.x, r.images.subarray(12, 20));
  assert.equal(r.frames.length, 8);
  assert.deepEqual(r.frames[0]!.x.subarray(0, 12), seen[0]!.x);
  assert.deepEqual(r.frames[0]!.predX0.subarray(12, 20), seen[8]!.predX0);
  assert.equal(r.frames[0]!.t, seen[0]!.t);
});

test('generate() stops before the next network evaluation when its signal aborts', async () => {
  const inner = conditionalOracle();
  let calls = 0;
  const model: ModelFn = (x, t, shape, c) => { calls++; return inner(x, t, shape, c); };
  const base = { schedule: 'linear' as const, timesteps: 1000, prediction: 'epsilon' as const, imageSize: 2, channels: 1, sampler: 'ddim' as const, steps: 10, n: 2, seed: 2 };
  const stop = new AbortController();
  const reason = new Error('user stopped');
  await assert.rejects(generate(model, { ...base, signal: stop.signal, onStep: (done) => { if (done === 4) stop.abort(reason); } }), (e: unknown) => e === reason);
  assert.equal(calls, 4, 'no network evaluation after the abort');
  calls = 0;
  await assert.rejects(generate(model, { ...base, signal: stop.signal }), (e: unknown) => e === reason);
  assert.equal(calls, 0, 'an aborted signal runs nothing');
  const free = await generate(model, { ...base, signal: new AbortController().signal });
  assert.equal(calls, 10);
  assert.deepEqual(free.images, (await generate(inner, base)).images);
});

test('generate() guides every sampler (σ-space ones too); progress and frames count network calls (Heun: 2n − 1)', async () => {
  const model = conditionalOracle();
  const n = 200;
  for (const sampler of SAMPLER_NAMES) {
    const steps = sampler === 'ddpm' ? 100 : 20;
    const calls = sampler === 'heun' ? 2 * steps - 1 : steps;
    const totals = new Set<number>();
    let done = 0;
    const r = await generate(model, {
      schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: 1, channels: 1, sampler, steps, n, seed: 5, clip: false, batchSize: 100,
      samplerOptions: sampler === 'euler' || sampler === 'heun' || sampler === 'dpm-solver' ? { karrasSigmas: true } : { timestepSpacing: 'trailing' },
      recordFrames: 4, recordSamples: 2,
      condition: { cond: new Int32Array(n).fill(0), nullCond: Int32Array.of(2), guidance: 2 },
      onStep: (d, total) => { done = d; totals.add(total); },
    });
    assert.deepEqual([done, ...totals], [2 * calls, 2 * calls], `${sampler}: two batches of ${calls} calls`);
    assert.deepEqual(r.frames.map((f) => f.i), [...frameSteps(calls, 4)].sort((p, q) => p - q));
    const m = stats(r.images).mean;
    assert.ok(Math.sign(m) === Math.sign(MEANS[0]!) && Math.abs(m) > Math.abs(MEANS[0]!), `${sampler}: guided mean ${m}`);
    assert.equal(r.images.filter((v) => Math.sign(v) !== Math.sign(MEANS[0]!)).length, 0, sampler);
  }
});

test('resolveClass accepts indices, names and synonyms, and lists the known ones otherwise', () => {
  const digits = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  assert.equal(resolveClass('7', digits, 10), 7);
  assert.equal(resolveClass('Seven', digits, 10), 7);
  const fashion = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
  assert.equal(resolveClass('ankle boot', fashion, 10), 9);
  assert.equal(resolveClass('Ankle-Boot', fashion, 10), 9);
  assert.equal(resolveClass('t-shirt', fashion, 10), 0);
  assert.throws(() => resolveClass('giraffe', fashion, 10), /unknown class 'giraffe'; this model knows: T-shirt\/top, Trouser/);
  assert.throws(() => resolveClass('12', digits, 10), DiffuseError);
});
