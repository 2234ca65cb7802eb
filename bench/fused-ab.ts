/**
 * Quick A/B of the fast paths (engine/fused.ts): one forward+backward of the
 * U-Net at micro-batch 16 on wasm, one thread, alternating the settings in one
 * process (ABAB..., reversed every other round) after a warm-up of each. Reports
 * the median process CPU time and wall time per forward+backward. CPU time is the
 * figure to trust on a shared machine (it excludes time the process waited for a
 * core). Takes tens of seconds, much less than bench/train-step.js.
 *
 *   node dist/bench/fused-ab.js [--big] [--rounds N] [--modes off,on] [--micro N]
 *   modes: off (DIFFUSE_FUSED=0), on (the defaults), all, or feature lists such as groupnorm+dwgemm
 */
import * as tf from '../src/engine/tf.js';
import { initEngine } from '../src/engine/backend.js';
import { DEFAULT_FUSED_FEATURES, FUSED_FEATURES, type FusedFeature, setFusedOps } from '../src/engine/fused.js';
import { defaultUNetConfig, type UNetConfig } from '../src/model/config.js';
import { createUNet } from '../src/model/unet.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? (argv[i + 1] as string) : dflt;
};
const big = argv.includes('--big');
const rounds = Number(opt('--rounds', '3'));
const modes = opt('--modes', 'off,on').split(',');
const micro = Number(opt('--micro', '16'));

const config: UNetConfig = big
  ? defaultUNetConfig({ imageSize: 32, baseChannels: 64, channelMults: [1, 2, 2], numResBlocks: 2, attentionResolutions: [8], groups: 32 })
  : defaultUNetConfig({ imageSize: 32, attentionResolutions: [8] });

function select(mode: string): void {
  if (mode === 'off') { setFusedOps(false); return; }
  if (mode === 'on') { setFusedOps(DEFAULT_FUSED_FEATURES); return; }
  if (mode === 'all') { setFusedOps(true); return; }
  const feats = mode.split('+');
  for (const f of feats) if (!(FUSED_FEATURES as readonly string[]).includes(f)) throw new Error(`unknown feature ${f}`);
  setFusedOps(feats as FusedFeature[]);
}

await initEngine({ backend: 'wasm' });
const net = createUNet(config, 0);
const s = config.imageSize;
const xs = Float32Array.from({ length: micro * s * s }, (_, i) => Math.sin(i));
const ys = Float32Array.from({ length: micro * s * s }, (_, i) => Math.cos(i));
const ts = Float32Array.from({ length: micro }, (_, i) => (i * 37) % 1000);

function fwdBwd(): void {
  tf.tidy(() => {
    const x = tf.tensor4d(xs, [micro, s, s, 1]), y = tf.tensor4d(ys, [micro, s, s, 1]), t = tf.tensor1d(ts);
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.squaredDifference(net.apply(x, t, { training: true }), y)) as tf.Scalar, [...net.params.values()]);
    value.dataSync();
    for (const g of Object.values(grads)) g.dataSync();
  });
}

const cpu = new Map<string, number[]>(modes.map((m) => [m, []]));
const wall = new Map<string, number[]>(modes.map((m) => [m, []]));
for (const m of modes) { select(m); fwdBwd(); }
for (let r = 0; r < rounds; r++) {
  for (const m of r % 2 === 0 ? modes : [...modes].reverse()) {
    select(m);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fwdBwd();
    const c = process.cpuUsage(c0);
    wall.get(m)?.push(performance.now() - t0);
    cpu.get(m)?.push((c.user + c.system) / 1000);
  }
}
setFusedOps(undefined);
net.dispose();

const median = (a: number[]): number => {
  const b = [...a].sort((p, q) => p - q);
  return b.length % 2 === 1 ? (b[(b.length - 1) / 2] as number) : ((b[b.length / 2 - 1] as number) + (b[b.length / 2] as number)) / 2;
};
const base = median(cpu.get(modes[0] as string) ?? []);
console.log(`${big ? 'issue 3.6M config' : 'default config'} at ${s}x${s}, one forward+backward at micro-batch ${micro}, wasm, ${rounds} rounds`);
const result: Record<string, { cpu_ms: number; wall_ms: number; speedup_cpu: number }> = {};
for (const m of modes) {
  const c = median(cpu.get(m) ?? []), w = median(wall.get(m) ?? []);
  result[m] = { cpu_ms: +c.toFixed(0), wall_ms: +w.toFixed(0), speedup_cpu: +(base / c).toFixed(3) };
  console.log(`${m.padEnd(24)} cpu ${c.toFixed(0).padStart(6)} ms  wall ${w.toFixed(0).padStart(6)} ms  x${(base / c).toFixed(2)} vs ${modes[0]}` +
    `   (cpu: ${(cpu.get(m) ?? []).map((v) => v.toFixed(0)).join(' ')})`);
}
console.log(`per image: ${modes.map((m) => `${m} ${(median(cpu.get(m) ?? []) / micro).toFixed(1)} ms`).join(', ')}`);
console.log(JSON.stringify({ config: big ? 'issue-3.6M' : 'default-32x32', micro_batch: micro, rounds, result }));
