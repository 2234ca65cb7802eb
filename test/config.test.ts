import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiffuseError } from '../src/errors.js';
import { defaultConfig, parseConfig, stringifyConfig } from '../src/config.js';

const named = (re: RegExp) => (e: unknown) => e instanceof DiffuseError && e.message.startsWith('run/config.json:') && re.test(e.message);

test('defaults: DDPM linear T=1000 epsilon, mnist 28x1, batch 64, lr 1e-3 warmup 200', () => {
  const c = defaultConfig();
  assert.equal(c.version, 1);
  assert.deepEqual(c.diffusion, { schedule: 'linear', timesteps: 1000, prediction: 'epsilon' });
  assert.deepEqual(c.data, { dataset: 'mnist', imageSize: 28, channels: 1 });
  assert.equal(c.train.batchSize, 64);
  assert.equal(c.train.lr, 1e-3);
  assert.equal(c.train.warmupSteps, 200);
  assert.equal(c.train.clipNorm, 1);
  assert.equal(c.train.emaDecay, 0.995);
  assert.equal(c.train.steps, 1500);
  assert.equal(c.train.condDropout, 0.1);
  assert.equal(c.model.imageSize, 28);
  assert.equal(c.model.inChannels, 1);
});

test('overrides deep-merge; model follows data size/channels', () => {
  const c = defaultConfig({ train: { lr: 2e-4 }, data: { imageSize: 32, channels: 3 }, diffusion: { schedule: 'cosine' } });
  assert.equal(c.train.lr, 2e-4);
  assert.equal(c.train.batchSize, 64);
  assert.equal(c.diffusion.schedule, 'cosine');
  assert.equal(c.diffusion.timesteps, 1000);
  assert.equal(c.model.imageSize, 32);
  assert.equal(c.model.inChannels, 3);
  assert.equal(c.model.outChannels, 3);
  assert.throws(() => defaultConfig({ train: { batchSize: 0 } }), (e: unknown) => e instanceof DiffuseError && /train\.batchSize/.test(e.message));
});

test('parseConfig round trip through JSON', () => {
  const c = defaultConfig({ data: { labelNames: ['a', 'b'] }, model: { numClasses: 2 } });
  assert.deepEqual(parseConfig(stringifyConfig(c), 'x.json'), c);
});

test('parseConfig names file and field path for unknown / missing / wrong-typed fields', () => {
  const good = JSON.parse(stringifyConfig(defaultConfig())) as Record<string, Record<string, unknown>>;
  const mut = (f: (o: Record<string, Record<string, unknown>>) => void): string => {
    const o = structuredClone(good);
    f(o);
    return JSON.stringify(o);
  };
  assert.throws(() => parseConfig('{oops', 'run/config.json'), named(/not valid JSON/));
  assert.throws(() => parseConfig(mut((o) => { o['train']!['lr'] = 'fast'; }), 'run/config.json'), named(/train\.lr must be a finite number, got "fast"/));
  assert.throws(() => parseConfig(mut((o) => { delete o['train']!['steps']; }), 'run/config.json'), named(/train\.steps is missing/));
  assert.throws(() => parseConfig(mut((o) => { o['train']!['bogus'] = 1; }), 'run/config.json'), named(/train\.bogus is unknown/));
  assert.throws(() => parseConfig(mut((o) => { o['extra'] = {}; }), 'run/config.json'), named(/config\.extra is unknown/));
  assert.throws(() => parseConfig(mut((o) => { o['diffusion']!['schedule'] = 'quadratic'; }), 'run/config.json'), named(/diffusion\.schedule must be one of/));
  assert.throws(() => parseConfig(mut((o) => { o['diffusion']!['timesteps'] = 10.5; }), 'run/config.json'), named(/diffusion\.timesteps must be an integer/));
  assert.throws(() => parseConfig(mut((o) => { o['data']!['channels'] = 2; }), 'run/config.json'), named(/data\.channels must be one of 1, 3/));
  assert.throws(() => parseConfig(mut((o) => { o['data']!['labelNames'] = ['a', 3]; }), 'run/config.json'), named(/data\.labelNames\[1\]/));
  assert.throws(() => parseConfig(mut((o) => { o['data']!['balance'] = 'tones'; }), 'run/config.json'), named(/data\.balance must be one of "images", "groups", got "tones"/));
  assert.equal(parseConfig(mut((o) => { o['data']!['balance'] = 'groups'; }), 'run/config.json').data.balance, 'groups');
  assert.throws(() => parseConfig(mut((o) => { o['model']!['channelMults'] = [1, 'x']; }), 'run/config.json'), named(/model\.channelMults\[1\] must be a finite number/));
  assert.throws(() => parseConfig(mut((o) => { o['model']!['depth'] = 3; }), 'run/config.json'), named(/model\.depth is unknown/));
  assert.throws(() => parseConfig(mut((o) => { o['model']!['imageSize'] = 30; }), 'run/config.json'), named(/model/));
  assert.throws(() => parseConfig(mut((o) => { o['train']!['emaDecay'] = 1; }), 'run/config.json'), named(/train\.emaDecay must be in \[0, 1\)/));
  assert.throws(() => parseConfig(mut((o) => { o['version'] = 2 as unknown as Record<string, unknown>; }), 'run/config.json'), named(/version must be 1/));
  assert.throws(() => parseConfig(mut((o) => { o['train']!['condDropout'] = 1.5; }), 'run/config.json'), named(/train\.condDropout must be in \[0, 1\)/));
  assert.throws(() => parseConfig('[]', 'run/config.json'), named(/config must be an object/));
});

test('diffusion: optional β range and zero terminal SNR round trip; ε with zero SNR is refused', () => {
  const c = defaultConfig({ diffusion: { schedule: 'scaled-linear', betaStart: 0.00085, betaEnd: 0.012, zeroTerminalSnr: true, prediction: 'v' } });
  assert.deepEqual(parseConfig(stringifyConfig(c), 'x.json'), c);
  const named = (re: RegExp) => (e: unknown) => e instanceof DiffuseError && re.test(e.message) && e.message.startsWith('x.json');
  const bad = (d: Record<string, unknown>): string => JSON.stringify({ ...JSON.parse(stringifyConfig(defaultConfig())) as Record<string, unknown>, diffusion: { schedule: 'linear', timesteps: 1000, prediction: 'epsilon', ...d } });
  assert.throws(() => parseConfig(bad({ zeroTerminalSnr: true }), 'x.json'), named(/zero terminal SNR: use a v, x0 or mean network/));
  assert.throws(() => parseConfig(bad({ zeroTerminalSnr: 'yes' }), 'x.json'), named(/diffusion\.zeroTerminalSnr must be true or false/));
  assert.throws(() => parseConfig(bad({ betaStart: 2 }), 'x.json'), named(/diffusion\.betaStart must be in \(0, 1\)/));
  assert.throws(() => parseConfig(bad({ schedule: 'cosine', betaEnd: 0.01 }), 'x.json'), named(/cosine schedule has no betaStart/));
});
