/**
 * Training the autoencoder, and reading its checkpoint for latent diffusion.
 *
 * The autoencoder is a network like the U-Net (model/autoencoder-description.ts):
 * the same trainer core (createNetworkTrainer, its loss the 'vae' LossSpec),
 * the same run loop (train/run.ts: checkpoints, log.jsonl, resume, locks,
 * signals), the same checkpoint folder with its own typed config
 * (AutoencoderRunConfig, kind "autoencoder"). What this stage adds:
 *
 *   batch      the images (input and target) and the reparameterisation noise,
 *              drawn from the run's Rng (a step is a function of its batch)
 *   snapshot   every sampleEvery steps, samples/step-N.png: 16 held-out images
 *              (rows of originals, then their reconstructions) and the held-out
 *              PSNR on the progress bar
 *   checkpoint every save measures the EMA weights' latent statistics (scaling
 *              factor on 1,024 training images, held-out PSNR) into config.stats
 */
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DiffuseError } from '../errors.js';
import type { AutoencoderRunConfig, LatentConfig, LatentPosterior, LatentStats } from '../config.js';
import { type Dataset, evenlySpacedIndices, subsetDataset } from '../data/dataset.js';
import { gatherBatch } from '../data/batches.js';
import { latentShape } from '../model/autoencoder-config.js';
import { autoencoderNetwork, describeAutoencoder } from '../model/autoencoder-description.js';
import { AUTOENCODER_CODEC, checkpointDir, loadModelWeightsWith } from '../train/checkpoint.js';
import { createNetworkTrainer, DEFAULT_MICRO_BATCH, type NamedBatch } from '../train/trainer.js';
import { type RunOptions, type RunResult, runTraining, type Stage } from '../train/run.js';
import { datasetFor, runDataset } from '../train/train.js';
import { checkAutoencoderTrainingMemory } from '../limits.js';
import { imageGrid, writePng } from '../io/image.js';
import type { Weights } from '../tensor.js';
import type { AutoencoderEngine } from './runner.js';
import { latentStatistics, reconstruct } from './stats.js';

/** Held-out images the PSNR is measured on (at most; evenly spaced). */
export const HELDOUT_IMAGES = 512;
/** Images in a reconstruction grid (rows of 8 originals, then their reconstructions). */
const GRID_IMAGES = 16;

export interface AutoencoderTrainOptions extends RunOptions<AutoencoderRunConfig> {
  /** Held-out images for the PSNR and the grids (default: the data set's held-out or test split; a folder's: evenly spaced training images). */
  readonly heldout?: Dataset;
  /** Engine of the evaluations (default: onnx when it loads, else tfjs). */
  readonly evalEngine?: AutoencoderEngine;
}

/** The held-out images of a run: the data set's held-out (emoji) or test split, else evenly spaced training images. */
async function heldoutFor(config: AutoencoderRunConfig, train: Dataset, opts: AutoencoderTrainOptions): Promise<Dataset> {
  let d: Dataset | undefined = opts.heldout;
  const name = config.data.dataset;
  if (d === undefined && opts.dataset === undefined) {
    if (name === 'emoji') d = await datasetFor(config, { split: 'heldout', progress: null });
    else if (name === 'mnist' || name === 'fashion-mnist') d = await datasetFor(config, { split: 'test', progress: null, ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}) });
  }
  d ??= train;
  return d.shape[0] > HELDOUT_IMAGES ? subsetDataset(d, evenlySpacedIndices(d.shape[0], HELDOUT_IMAGES)) : d;
}

/** The autoencoder as a stage of the run loop. */
function autoencoderStage(opts: AutoencoderTrainOptions): Stage<AutoencoderRunConfig, NamedBatch> {
  return {
    codec: AUTOENCODER_CODEC,
    check: (config, source) => checkAutoencoderTrainingMemory(config.model, config.train.batchSize, DEFAULT_MICRO_BATCH, opts.backend === 'tensorflow' ? 'native' : 'wasm', source),
    loadData: (config) => runDataset(config, opts),
    async prepare(config, data, cx) {
      const heldout = await heldoutFor(config, data, opts);
      const grid = subsetDataset(heldout, evenlySpacedIndices(heldout.shape[0], GRID_IMAGES));
      const [s, , L] = latentShape(config.model);
      const lat = s * s * L;
      const tc = config.train;
      let last: { step: number; stats: LatentStats; grid: Float32Array } | undefined;
      /** Statistics and grid reconstructions of the EMA weights at `step` (once per step). */
      const evaluate = async (ema: Weights, step: number): Promise<NonNullable<typeof last>> => {
        if (last?.step === step) return last;
        const { createAutoencoderRunner } = await import('./runner.js');
        const runner = await createAutoencoderRunner(config.model, ema, {
          ...(opts.evalEngine !== undefined ? { engine: opts.evalEngine } : {}),
          ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
        });
        try {
          const stats = await latentStatistics(runner, data, step, { heldout });
          last = { step, stats, grid: await reconstruct(runner, grid.images, grid.shape[0]) };
          appendFileSync(join(cx.outDir, 'eval.jsonl'), JSON.stringify({ ...stats, time: Date.now() / 1000 }) + '\n');
          return last;
        } finally {
          await runner.dispose();
        }
      };
      return {
        config,
        createTrainer: () => createNetworkTrainer({ network: autoencoderNetwork, config: config.model, loss: { kind: 'vae', ...config.loss } }, {
          seed: tc.seed, workers: tc.workers === 2 ? 2 : 1, ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
        }),
        batch(idx, rng) {
          const { x } = gatherBatch(data, idx);
          return { n: idx.length, inputs: { x, target: x, noise: rng.normalArray(idx.length * lat) } };
        },
        batchImages: (b) => b.n,
        async snapshot(ema, step, file) {
          const r = await evaluate(ema, step);
          const [, h, w, c] = grid.shape;
          const per = h * w * c;
          const tiles = new Float32Array(2 * GRID_IMAGES * per);
          for (let row = 0; row < GRID_IMAGES / 8; row++) {
            tiles.set(grid.images.subarray(row * 8 * per, (row + 1) * 8 * per), 2 * row * 8 * per);
            tiles.set(r.grid.subarray(row * 8 * per, (row + 1) * 8 * per), (2 * row + 1) * 8 * per);
          }
          mkdirSync(dirname(file), { recursive: true });
          await writePng(file, imageGrid(tiles, [2 * GRID_IMAGES, h, w, c], { cols: 8 }));
        },
        status: () => (last?.stats.heldoutPsnr !== undefined ? `psnr ${last.stats.heldoutPsnr.toFixed(2)} dB` : undefined),
        async checkpoint(state, step) {
          const r = await evaluate(state.ema, step);
          return { config: { ...config, stats: r.stats } };
        },
      };
    },
  };
}

export type AutoencoderTrainResult = RunResult<AutoencoderRunConfig>;

/** Train (or resume training) an autoencoder; writes checkpoints (with latent statistics) to opts.outDir. */
export async function trainAutoencoder(opts: AutoencoderTrainOptions): Promise<AutoencoderTrainResult> {
  return runTraining(autoencoderStage(opts), opts);
}

export { describeAutoencoder };

/** An autoencoder checkpoint as latent diffusion reads it. */
export interface LoadedAutoencoder {
  readonly config: AutoencoderRunConfig;
  /** The EMA weights (what latent models embed). */
  readonly weights: Weights;
  readonly step: number;
  /** The checkpoint folder read. */
  readonly checkpoint: string;
  /** Its latent statistics, measured at `step`. */
  readonly stats: LatentStats;
}

/**
 * Read an autoencoder checkpoint (a run folder or its checkpoint/): its
 * config, EMA weights and latent statistics. A folder that is not an
 * autoencoder's, or whose statistics are missing, is a DiffuseError.
 */
export async function loadAutoencoder(dir: string): Promise<LoadedAutoencoder> {
  if (!existsSync(dir)) throw new DiffuseError(`autoencoder checkpoint ${dir}: no such folder`);
  const checkpoint = checkpointDir(dir);
  const { config, params, step } = await loadModelWeightsWith(checkpoint, AUTOENCODER_CODEC, 'ema');
  const stats = config.stats;
  if (stats === undefined || stats.step !== step) {
    throw new DiffuseError(`autoencoder checkpoint ${checkpoint} has no latent statistics for its step ${step} (config.json stats): resume it (diffuse train-autoencoder --resume ${dir} --train-steps ${step + 1}) to measure them`);
  }
  return { config, weights: params, step, checkpoint, stats };
}

/** The latent section of a diffusion model on this autoencoder. */
export function latentConfigOf(ae: LoadedAutoencoder, source: string, posterior: LatentPosterior = 'sample'): LatentConfig {
  return { autoencoder: ae.config.model, scalingFactor: ae.stats.scalingFactor, posterior, source: { checkpoint: source, step: ae.step } };
}
