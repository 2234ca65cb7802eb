/**
 * Expert denoisers, engine-free (src/diffusion/experts.ts): the timestep
 * ranges partition 0..T−1; every timestep any sampler asks for goes to exactly
 * one expert, the one whose range holds it; stratified training batches give
 * each expert its share with t in its own range; the experts' weights join
 * and split by prefix; and the config's experts section is validated.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, parseConfig, withExperts } from '../../src/config.js';
import {
  checkBoundaries, expertBatchSizes, expertBoundaries, expertIndex, expertWeights, joinExpertWeights, logSnr, routeByTimestep, stratifiedTimesteps,
  EXPERT_SPLITS, type ExpertSplit,
} from '../../src/diffusion/experts.js';
import type { ModelFn } from '../../src/diffusion/types.js';
import { DiffuseError } from '../../src/errors.js';
import { generate } from '../../src/generate.js';
import { Rng } from '../../src/rng.js';
import { SAMPLER_NAMES, type SamplerName, type SamplerSettings } from '../../src/samplers/factory.js';
import { TIMESTEP_SPACINGS } from '../../src/samplers/spacing.js';
import { makeSchedule } from '../../src/schedule.js';

const schedule = makeSchedule('linear', 1000);

test('ranges: equal widths in t, or in log-SNR; both partition 0..T−1', () => {
  assert.deepEqual(expertBoundaries(schedule, 1, 't'), [0, 1000]);
  assert.deepEqual(expertBoundaries(schedule, 2, 't'), [0, 500, 1000]);
  assert.deepEqual(expertBoundaries(schedule, 4, 't'), [0, 250, 500, 750, 1000]);
  assert.deepEqual(expertBoundaries(makeSchedule('linear', 10), 3, 't'), [0, 3, 7, 10]);
  const l = logSnr(schedule);
  for (const K of [2, 3, 4, 8]) {
    const b = expertBoundaries(schedule, K, 'snr');
    checkBoundaries(b, 1000);
    // each boundary is where log-SNR crosses its equal-width level (log-SNR falls with t)
    for (let k = 1; k < K; k++) {
      const level = l[0]! + (k / K) * (l[999]! - l[0]!);
      assert.ok(l[b[k]!]! <= level && l[b[k]! - 1]! > level, `K=${K} boundary ${k} at t=${b[k]}`);
    }
  }
  // the low-noise end gets few timesteps on the linear schedule
  assert.ok(expertBoundaries(schedule, 4, 'snr')[1]! < 100);
  // more experts than timesteps, or none: refused
  assert.throws(() => expertBoundaries(makeSchedule('linear', 10), 11, 't'), DiffuseError);
  assert.throws(() => expertBoundaries(schedule, 0, 't'), DiffuseError);
  // every t in exactly one range
  for (const split of EXPERT_SPLITS) {
    const b = expertBoundaries(schedule, 4, split);
    for (let t = 0; t < 1000; t++) {
      const owners = [0, 1, 2, 3].filter((k) => b[k]! <= t && t < b[k + 1]!);
      assert.deepEqual(owners, [expertIndex(b, t)], `${split} t=${t}`);
    }
  }
  assert.throws(() => checkBoundaries([0, 500, 500, 1000], 1000), /strictly increasing/);
  assert.throws(() => checkBoundaries([1, 500, 1000], 1000), /start at 0/);
  assert.throws(() => checkBoundaries([0, 500, 999], 1000), /end at T/);
});

/** Every combination of sampler, timestep spacing and Karras sigmas that the samplers accept. */
function samplerSettings(): { name: SamplerName; settings: SamplerSettings }[] {
  const out: { name: SamplerName; settings: SamplerSettings }[] = [];
  for (const name of SAMPLER_NAMES) {
    for (const timestepSpacing of TIMESTEP_SPACINGS) out.push({ name, settings: { timestepSpacing } });
    if (name !== 'ddpm' && name !== 'ddim') out.push({ name, settings: { karrasSigmas: true } });
  }
  return out;
}

test('every timestep a sampler asks for goes to exactly one expert, the one whose range holds it', async () => {
  const x = [4, 4, 1] as const;
  for (const split of EXPERT_SPLITS satisfies readonly ExpertSplit[]) {
    for (const K of [2, 3, 4]) {
      const b = expertBoundaries(schedule, K, split);
      const calls: { t: number; expert: number }[] = [];
      // expert k answers with the constant k: the output says who ran
      const experts: ModelFn[] = Array.from({ length: K }, (_, k) => (xt, t) => {
        calls.push({ t, expert: k });
        return new Float32Array(xt.length).fill(0.01 * k);
      });
      const routed = routeByTimestep(experts, b);
      for (const { name, settings } of samplerSettings()) {
        for (const steps of name === 'ddpm' ? [1000] : [1, 7, 20, 50]) {
          calls.length = 0;
          const seen: number[] = [];
          await generate(async (xt, t, shape, cond) => {
            seen.push(t);
            const before = calls.length;
            const y = await routed(xt, t, shape, cond);
            assert.equal(calls.length, before + 1, `${name} t=${t}: one expert call per network call`);
            const k = calls[calls.length - 1]!.expert;
            // the expert that ran owns t: b_k <= t < b_{k+1} (fractional t included; t clamped to [0, T))
            const tc = Math.min(Math.max(t, 0), 999.999);
            assert.ok(b[k]! <= tc && tc < b[k + 1]!, `${split} K=${K} ${name} ${JSON.stringify(settings)} steps=${steps}: t=${t} went to expert ${k} (${b[k]}..${b[k + 1]! - 1})`);
            assert.equal(y[0], Math.fround(0.01 * k));
            return y;
          }, { schedule: 'linear', timesteps: 1000, prediction: 'epsilon', imageSize: x[0], channels: x[2], sampler: name, steps, n: 1, seed: 0, samplerOptions: settings });
          assert.equal(calls.length, seen.length);
          if (steps >= 20 && split === 't') {
            // long runs cross every range of the t split: every expert is used (the snr split's low-noise
            // expert, t < 31 at K = 4, is skipped by spacings whose last step is above it, e.g. trailing)
            assert.deepEqual([...new Set(calls.map((c) => c.expert))].sort(), Array.from({ length: K }, (_, k) => k), `${name} ${JSON.stringify(settings)} uses every expert`);
          }
        }
      }
    }
  }
  assert.throws(() => routeByTimestep([() => new Float32Array(1)], [0, 500, 1000]), /1 expert networks for 2/);
  assert.throws(() => expertIndex([0, 500, 1000], NaN), DiffuseError);
});

test('stratified batches: each expert its share (proportional to its width, at least one), t inside its range', () => {
  assert.deepEqual(expertBatchSizes([0, 500, 1000], 64), [32, 32]);
  assert.deepEqual(expertBatchSizes([0, 250, 500, 750, 1000], 64), [16, 16, 16, 16]);
  assert.deepEqual(expertBatchSizes([0, 3, 7, 10], 10), [3, 4, 3]);
  for (const b of [expertBoundaries(schedule, 4, 'snr'), expertBoundaries(schedule, 8, 'snr')]) {
    for (const B of [8, 9, 64, 100]) {
      const sizes = expertBatchSizes(b, B);
      assert.equal(sizes.reduce((a, c) => a + c, 0), B);
      sizes.forEach((n, k) => {
        assert.ok(n >= 1);
        // within one image of the exact proportional share of the images beyond the first K
        const exact = 1 + ((b[k + 1]! - b[k]!) * (B - b.length + 1)) / 1000;
        assert.ok(Math.abs(n - exact) < 1 + 1e-9, `B=${B} expert ${k}: ${n} vs ${exact}`);
      });
    }
  }
  assert.throws(() => expertBatchSizes([0, 250, 500, 750, 1000], 3), /at least 4/);
  const b = [0, 250, 500, 750, 1000];
  const sizes = [16, 16, 16, 16];
  const t = stratifiedTimesteps(b, sizes, new Rng(1));
  assert.deepEqual(t, stratifiedTimesteps(b, sizes, new Rng(1)), 'seeded');
  t.forEach((v, i) => {
    const k = Math.floor(i / 16);
    assert.ok(b[k]! <= v && v < b[k + 1]!, `row ${i}: t=${v} outside expert ${k}'s range`);
  });
  // over many draws each range is covered uniformly: both ends reached, mean near the middle
  const many = stratifiedTimesteps([0, 3, 7, 10], [3000, 4000, 3000], new Rng(2));
  const first = Array.from(many.subarray(0, 3000));
  assert.deepEqual([...new Set(first)].sort(), [0, 1, 2]);
  assert.ok(Math.abs(first.reduce((a, c) => a + c, 0) / 3000 - 1) < 0.05);
});

test('experts\' weights: joined under expert.<k>. prefixes and split back; K = 1 keeps the names', () => {
  const w = (v: number) => ({ 'conv.kernel': { shape: [2], data: Float32Array.of(v, v) }, 'conv.bias': { shape: [1], data: Float32Array.of(v) } });
  const joined = joinExpertWeights([w(1), w(2)]);
  assert.deepEqual(Object.keys(joined).sort(), ['expert.0.conv.bias', 'expert.0.conv.kernel', 'expert.1.conv.bias', 'expert.1.conv.kernel']);
  const [a, b] = expertWeights(2, joined);
  assert.deepEqual(a, w(1));
  assert.deepEqual(b, w(2));
  assert.deepEqual(joinExpertWeights([w(3)]), w(3));
  assert.deepEqual(expertWeights(1, w(3)), [w(3)]);
  assert.throws(() => expertWeights(2, { ...joined, 'conv.extra': { shape: [1], data: Float32Array.of(0) } }), /"conv.extra" belongs to none of the 2 experts/);
  assert.throws(() => expertWeights(3, joined), /no tensors for expert 2 of 3/);
  assert.throws(() => expertWeights(2, { ...joined, 'expert.2.x': { shape: [1], data: Float32Array.of(0) } }), /"expert.2.x" belongs to none/);
});

test('config: withExperts adds the section (K = 1 removes it); bad sections are one-line errors naming the field', () => {
  const base = defaultConfig();
  assert.equal(withExperts(base, 1, 't').experts, undefined);
  const two = withExperts(base, 2, 'snr');
  assert.deepEqual(two.experts, { count: 2, split: 'snr', boundaries: [0, 303, 1000], init: { kind: 'scratch' } });
  assert.deepEqual(parseConfig(JSON.stringify(two), 'x.json'), two, 'round trip through JSON');
  assert.equal(withExperts(two, 1, 't').experts, undefined);
  const bad = (experts: unknown, re: RegExp): void => {
    assert.throws(() => parseConfig({ ...base, experts }, 'c.json'), (e: unknown) => e instanceof DiffuseError && re.test(e.message) && !e.message.includes('\n'), `${JSON.stringify(experts)}`);
  };
  bad({ count: 1, split: 't', boundaries: [0, 1000], init: { kind: 'scratch' } }, /c\.json: config field experts\.count must be in 2\.\./);
  bad({ count: 2, split: 'x', boundaries: [0, 500, 1000], init: { kind: 'scratch' } }, /experts\.split must be one of "t", "snr"/);
  bad({ count: 2, split: 't', boundaries: [0, 1000], init: { kind: 'scratch' } }, /experts\.boundaries must be a list of 3 timesteps/);
  bad({ count: 2, split: 't', boundaries: [0, 600, 999], init: { kind: 'scratch' } }, /experts\.boundaries must start at 0 and end at T = 1000/);
  bad({ count: 2, split: 't', boundaries: [0, 500, 1000], init: { kind: 'split', sharedSteps: 5 } }, /experts\.init\.optimizer must be one of "copy", "fresh", got nothing/);
  bad({ count: 2, split: 't', boundaries: [0, 500, 1000], init: { kind: 'scratch', sharedSteps: 5 } }, /takes no sharedSteps/);
  bad({ count: 2, split: 't', boundaries: [0, 500, 1000] }, /experts\.init is missing/);
  assert.throws(() => parseConfig({ ...withExperts(base, 4, 't'), train: { ...base.train, batchSize: 3 } }, 'c.json'), /train\.batchSize \(3\) must be at least experts\.count \(4\)/);
});
