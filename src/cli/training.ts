/**
 * What the training commands (train, train-autoencoder) share: the option
 * rows of a run (folder, resume, budget, optimiser, workers), the rule that a
 * resumed run only takes its resumable flags, and Ctrl-C / SIGTERM handling
 * (finish the step, save, exit 130 / 143; a second signal quits at once).
 */
import { DiffuseError } from '../errors.js';
import type { TrainConfig } from '../config.js';
import type { ResumableSettings, RunOptions, RunResult } from '../train/run.js';
import type { BackendName } from '../engine/backend.js';
import { BACKEND, DATA_DIR, OVERWRITE, SEED, type OptionTable } from './options.js';

/** The option rows of any training run, with `d`'s defaults in the help. */
export function runOptions(d: TrainConfig, stepsNote: string) {
  return {
    'data-dir': { ...DATA_DIR, resumable: true },
    'skip-bad': { type: 'flag', resumable: true, help: 'skip unreadable images in a folder (counted) instead of stopping' },
    resume: { type: 'string', arg: 'DIR', resumable: true, help: 'continue the run in DIR exactly where it stopped (with its own config)' },
    overwrite: { ...OVERWRITE, help: 'start a new run in a --out folder that holds one (its checkpoint and log are replaced)' },
    'train-steps': { type: 'int', min: 1, max: 100_000_000, arg: 'N', aliases: ['steps'], resumable: true, help: 'total optimizer steps (with --resume: extend the run to N)', defaultText: `${d.steps}${stepsNote}` },
    'batch-size': { type: 'int', min: 1, max: 65536, arg: 'N', aliases: ['batch'], help: 'images per optimizer step', defaultText: String(d.batchSize) },
    lr: { type: 'number', min: 0, max: 10, exclusive: 'both', arg: 'X', help: 'peak Adam learning rate', defaultText: String(d.lr) },
    'warmup-steps': { type: 'int', min: 0, max: 100_000_000, arg: 'N', aliases: ['warmup'], help: 'linear learning-rate warm-up', defaultText: String(d.warmupSteps) },
    'lr-decay-steps': { type: 'int', min: 0, max: 100_000_000, arg: 'N', resumable: true, help: 'decay the learning rate linearly to 0 over the last N of --train-steps (0 = constant; with --resume, cool a run down)', defaultText: String(d.lrDecaySteps) },
    'ema-decay': { type: 'number', min: 0, max: 1, exclusive: 'max', arg: 'X', aliases: ['ema'], help: 'EMA decay of the sampling weights', defaultText: String(d.emaDecay) },
    'clip-norm': { type: 'number', min: 0, max: 1e6, arg: 'X', aliases: ['clip'], help: 'clip the gradient norm (0 = off)', defaultText: String(d.clipNorm) },
    workers: { type: 'int', min: 1, max: 2, default: 2, arg: 'N', resumable: true, help: 'data-parallel worker threads (2 = both cores)' },
    seed: SEED,
    'sample-every': { type: 'int', min: 0, max: 100_000_000, arg: 'N', resumable: true, help: 'write a picture of the progress every N steps (0 = never)', defaultText: String(d.sampleEvery) },
    'checkpoint-every': { type: 'int', min: 0, max: 100_000_000, arg: 'N', resumable: true, help: 'save a checkpoint every N steps (0 = only at the end)', defaultText: String(d.checkpointEvery) },
    'stop-after': { type: 'int', min: 1, max: 100_000_000, arg: 'N', resumable: true, help: 'stop after N steps in this call (resume later)' },
    backend: { ...BACKEND, resumable: true, help: 'tfjs backend of the trainer (webgpu needs the npm package webgpu and a GPU)' },
  } as const;
}

/** The flags of runOptions, as parsed. */
export interface RunFlags {
  readonly resume?: string | undefined;
  readonly overwrite: boolean;
  readonly 'stop-after'?: number | undefined;
  readonly 'data-dir'?: string | undefined;
  readonly backend?: BackendName | undefined;
  readonly 'skip-bad': boolean;
  readonly 'train-steps'?: number | undefined;
  readonly 'batch-size'?: number | undefined;
  readonly lr?: number | undefined;
  readonly 'warmup-steps'?: number | undefined;
  readonly 'lr-decay-steps'?: number | undefined;
  readonly 'ema-decay'?: number | undefined;
  readonly 'clip-norm'?: number | undefined;
  readonly 'sample-every'?: number | undefined;
  readonly 'checkpoint-every'?: number | undefined;
  readonly workers: number;
  readonly seed: number;
}

/** The train section a new run's flags give (only what was given overrides the defaults). */
export function trainFlags(o: RunFlags): Partial<TrainConfig> {
  const opt = <K extends keyof TrainConfig>(key: K, v: TrainConfig[K] | undefined): Partial<TrainConfig> => (v !== undefined ? { [key]: v } : {});
  return {
    ...opt('steps', o['train-steps']),
    ...opt('batchSize', o['batch-size']),
    ...opt('lr', o.lr),
    ...opt('warmupSteps', o['warmup-steps']),
    ...opt('lrDecaySteps', o['lr-decay-steps']),
    ...opt('emaDecay', o['ema-decay']),
    ...opt('clipNorm', o['clip-norm']),
    ...opt('sampleEvery', o['sample-every']),
    ...opt('checkpointEvery', o['checkpoint-every']),
    workers: o.workers,
    seed: o.seed,
  };
}

/** `--resume DIR`: only resumable flags may be given (the config is the checkpoint's); the settings they change. */
export function resumeOverrides(table: OptionTable, given: ReadonlySet<string>, o: RunFlags): ResumableSettings {
  const fixed = [...given].filter((n) => table[n]?.resumable !== true);
  if (fixed.length > 0) {
    const ok = Object.keys(table).filter((n) => table[n]!.resumable === true && n !== 'resume').map((n) => `--${n}`);
    throw new DiffuseError(`--resume continues a run with the config in its checkpoint: ${fixed.map((n) => `--${n}`).join(', ')} cannot change (a resumed run takes ${ok.join(', ')})`);
  }
  return {
    ...(o['train-steps'] !== undefined ? { steps: o['train-steps'] } : {}),
    ...(o['lr-decay-steps'] !== undefined ? { lrDecaySteps: o['lr-decay-steps'] } : {}),
    ...(given.has('workers') ? { workers: o.workers } : {}),
    ...(o['sample-every'] !== undefined ? { sampleEvery: o['sample-every'] } : {}),
    ...(o['checkpoint-every'] !== undefined ? { checkpointEvery: o['checkpoint-every'] } : {}),
  };
}

/** The part of a run's options its flags give (folder, resume, budget, data, backend), printing messages on stderr. */
export function runFlagOptions(o: RunFlags, outDir: string, overrides: ResumableSettings, signal: AbortSignal): Omit<RunOptions<never>, 'config'> {
  return {
    outDir,
    ...(o.resume !== undefined ? { resume: true, overrides } : {}),
    overwrite: o.overwrite,
    ...(o['stop-after'] !== undefined ? { stopAfter: o['stop-after'] } : {}),
    ...(o['data-dir'] !== undefined ? { dataDir: o['data-dir'] } : {}),
    ...(o.backend !== undefined ? { backend: o.backend } : {}),
    skipBad: o['skip-bad'],
    signal,
    log: (m) => process.stderr.write(`${m}\n`),
  };
}

const EXIT_ON: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Run a training call with Ctrl-C / SIGTERM wired to its abort signal: the
 * first finishes the current step and saves, a second quits at once. Resolves
 * to the run's result and the exit code (0, or 130 / 143 after a signal).
 */
export async function withStopSignals<R>(run: (signal: AbortSignal) => Promise<R>): Promise<{ result: R; code: number }> {
  const ac = new AbortController();
  let signalled: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (sig: 'SIGINT' | 'SIGTERM'): void => {
    if (signalled !== undefined) {
      process.stderr.write(`\n${sig} again: quitting now; the last saved checkpoint is intact\n`);
      process.exit(EXIT_ON[sig]);
    }
    signalled = sig;
    process.stderr.write(`\n${sig === 'SIGINT' ? 'Ctrl-C' : sig}: finishing this step, then saving a checkpoint (Ctrl-C again quits at once)\n`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await run(ac.signal);
    return { result, code: signalled !== undefined ? EXIT_ON[signalled] : 0 };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The lines a training command ends with: where it stopped, the speed, the checkpoint and what to do next. */
export function runSummary(result: RunResult<{ train: TrainConfig }>, command: string, outDir: string, next: string): string {
  return (result.interrupted ? `stopped at step ${result.step} of ${result.config.train.steps}` : `trained to step ${result.step}`) +
    ` in ${result.seconds.toFixed(0)} s (${result.imgPerSec.toFixed(1)} img/s), last loss ${result.lastLoss.toFixed(4)}\n` +
    `checkpoint: ${result.checkpoint}  ·  ${result.step < result.config.train.steps ? `continue: diffuse ${command} --resume ${outDir}  ·  ` : ''}${next}\n`;
}
