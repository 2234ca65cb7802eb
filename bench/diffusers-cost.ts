/**
 * What sampling the public diffusers DDPM checkpoints costs here: seconds per
 * network evaluation (NFE) of their U-Nets on ONNX Runtime (2 threads), on
 * random weights of the same config (nothing is downloaded), next to
 * diffusers' own UNet2DModel on Debian's PyTorch (2 threads, "at its best")
 * on the same config where torch and a diffusers checkout are present
 * (bench/diffusers_cost_torch.py).
 *
 *   npx tsc -p tsconfig.json && flock -x /tmp/diffuse-bench.lock node dist/bench/diffusers-cost.js \
 *       [--only cifar10|256] [--diffusers /tmp/diffusers/src/diffusers] [--no-torch]
 *
 * The configs are the checkpoints' unet/config.json as published (diffusers
 * 0.x), written out below; they go through the same import as a downloaded
 * folder (unetConfigFromDiffusers).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unetConfigFromDiffusers } from '../src/interop/diffusers-unet.js';
import { unetGraph, unetParamSpecs } from '../src/model/unet-description.js';
import { paramCount } from '../src/net/params.js';
import { exportGraphToOnnx } from '../src/onnx/export-graph.js';
import { createOrtModelFn } from '../src/onnx/runner.js';
import { mulberry32 } from '../src/rng.js';
import { DEFAULT_DIFFUSERS_SRC, torchAvailable } from './diffusers-export.js';
import { randomParams } from './random-params.js';

/** google/ddpm-cifar10-32's unet/config.json (the DDPM paper's CIFAR-10 model, 35.7M parameters). */
export const DDPM_CIFAR10_32 = {
  _class_name: 'UNet2DModel', act_fn: 'silu', attention_head_dim: null, block_out_channels: [128, 256, 256, 256], center_input_sample: false,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'], downsample_padding: 0, flip_sin_to_cos: false, freq_shift: 1,
  in_channels: 3, layers_per_block: 2, mid_block_scale_factor: 1, norm_eps: 1e-6, norm_num_groups: 32, out_channels: 3, sample_size: 32,
  time_embedding_type: 'positional', up_block_types: ['UpBlock2D', 'UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
};

/** google/ddpm-church-256's (and ddpm-celebahq-256's, ddpm-bedroom-256's, ddpm-cat-256's, their -ema- variants': the DDPM paper's 256x256 model, 114M parameters). */
export const DDPM_256 = {
  ...DDPM_CIFAR10_32,
  block_out_channels: [128, 128, 256, 256, 512, 512], sample_size: 256,
  down_block_types: ['DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'],
};

interface Row { name: string; params: number; onnxMB: number; exportS: number; ortS: Record<number, number>; torchS?: Record<number, number> }

async function timeOrt(json: Record<string, unknown>, name: string, batches: readonly number[], runs: number): Promise<Row> {
  const { config } = unetConfigFromDiffusers(json, { source: name });
  const specs = unetParamSpecs(config);
  const w = randomParams(config, 1);
  const t0 = performance.now();
  const bytes = exportGraphToOnnx(unetGraph(config), w, { graphName: 'unet' });
  const exportS = (performance.now() - t0) / 1000;
  const fn = await createOrtModelFn(bytes, { threads: 2 });
  const ortS: Record<number, number> = {};
  try {
    const r = mulberry32(2);
    for (const n of batches) {
      const S = config.imageSize;
      const x = Float32Array.from({ length: n * S * S * 3 }, () => r() * 2 - 1);
      await fn(x, 500, [n, S, S, 3]);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const a = performance.now();
        await fn(x, 500, [n, S, S, 3]);
        times.push((performance.now() - a) / 1000);
      }
      times.sort((a, b) => a - b);
      ortS[n] = times[times.length >> 1]!;
    }
  } finally {
    await fn.dispose();
  }
  return { name, params: paramCount(specs), onnxMB: bytes.length / 1e6, exportS, ortS };
}

function timeTorch(src: string, json: Record<string, unknown>, batches: readonly number[], runs: number): Record<number, number> | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-cost-'));
  try {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify(json));
    const r = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('../../bench/diffusers_cost_torch.py', import.meta.url)), src, file, batches.join(','), String(runs)], {
      encoding: 'utf8', timeout: 600_000,
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', MALLOC_MMAP_THRESHOLD_: '1073741824', MALLOC_TRIM_THRESHOLD_: '17179869184' },
    });
    if (r.status !== 0) {
      process.stderr.write(`torch baseline failed: ${r.stderr}\n`);
      return undefined;
    }
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<number, number>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const src = args.includes('--diffusers') ? args[args.indexOf('--diffusers') + 1]! : process.env['DIFFUSERS_SRC'] ?? DEFAULT_DIFFUSERS_SRC;
  const why = args.includes('--no-torch') ? 'not asked (--no-torch)' : torchAvailable(src);
  const cases: Array<[string, Record<string, unknown>, number[], number]> = [
    ['google/ddpm-cifar10-32', DDPM_CIFAR10_32, [1, 16], 5],
    ['google/ddpm-church-256 (celebahq, bedroom, cat)', DDPM_256, [1], 3],
  ];
  const rows: Row[] = [];
  for (const [name, json, batches, runs] of cases) {
    if (only !== undefined && !name.includes(only)) continue;
    const row = await timeOrt(json, name, batches, runs);
    if (why === undefined) {
      const t = timeTorch(src, json, batches, runs);
      if (t !== undefined) row.torchS = t;
    }
    rows.push(row);
    const per = Object.entries(row.ortS).map(([n, s]) => `batch ${n}: ${s.toFixed(3)} s/NFE (${(s / Number(n)).toFixed(3)} s per image)` +
      (row.torchS?.[Number(n)] !== undefined ? `, PyTorch ${row.torchS[Number(n)]!.toFixed(3)} s (PyTorch/ORT ${(row.torchS[Number(n)]! / s).toFixed(2)})` : '')).join('; ');
    process.stdout.write(`${name}: ${(row.params / 1e6).toFixed(1)}M params, ONNX ${row.onnxMB.toFixed(0)} MB built in ${row.exportS.toFixed(1)} s; ORT 2 threads ${per}\n`);
  }
  if (why !== undefined) process.stdout.write(`(no PyTorch baseline: ${why})\n`);
  process.stdout.write(JSON.stringify(rows) + '\n');
}

await main();
