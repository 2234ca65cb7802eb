/**
 * Checkpoints: one folder per checkpoint,
 *
 *   config.json            the typed config (rebuilds the model): a DiffuseConfig,
 *                          or another network's (an autoencoder's), read by its codec
 *   model.safetensors      raw weights
 *   ema.safetensors        EMA weights (what sampling uses)
 *   optimizer.safetensors  Adam moments "m.<param>" / "v.<param>"; metadata step
 *   state.json             step, rng state, data-sampler state, loss tail, wall time
 *   autoencoder.safetensors  latent models only: the autoencoder's weights (a
 *                          part: weights the model needs besides its own, so
 *                          the folder is self-contained)
 *
 * A run with K expert networks (config.experts) keeps the same files:
 * every tensor name carries its expert's prefix, `expert.<k>.<param>` (and
 * `m.expert.<k>.<param>` in the optimizer file). A single network (no experts
 * section) has no prefix, exactly as before.
 *
 * Saving is crash-safe and replaces only these files (io/folder-swap.ts):
 * everything is written and fsynced into a sibling `<dir>.tmp-<pid>`, the
 * folder's other entries (a README, notes, subfolders) are carried over, then
 * it is swapped in with renames (`<dir>` → `<dir>.old-…`, tmp → `<dir>`, then
 * the old one is removed). A crash at any moment leaves a complete checkpoint
 * in `<dir>`, or (between the two renames) none in `<dir>` but complete ones
 * in `<dir>.old-…` and `<dir>.tmp-…`; every loader then picks the newest
 * sibling that loads and renames it back into place.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type AutoencoderRunConfig, type DiffuseConfig, parseAutoencoderRunConfig, parseConfig, stringifyAutoencoderRunConfig, stringifyConfig } from '../config.js';
import { parseSamplerState, type SamplerState } from '../data/batches.js';
import { DiffuseError } from '../errors.js';
import { Rng, type RngState } from '../rng.js';
import { encodeSafetensors, readSafetensors } from '../io/safetensors.js';
import { readRegularFileSync } from '../io/files.js';
import { writeFileSynced } from '../io/atomic.js';
import { fsyncDir, replaceFolder, restoreFolder, siblingFolders } from '../io/folder-swap.js';
import type { TrainerState } from './trainer.js';
import type { Weights } from '../tensor.js';
import { unetParamSpecs } from '../model/unet-description.js';
import { autoencoderParamSpecs } from '../model/autoencoder-description.js';
import { expertPrefix } from '../diffusion/experts.js';

/** Weights a model needs besides its own, one `<part>.safetensors` file each. */
export type CheckpointPart = 'autoencoder';
export const CHECKPOINT_PARTS: readonly CheckpointPart[] = ['autoencoder'];
/** The files a checkpoint folder owns (saves replace exactly these; parts only when the model has them). */
export const CHECKPOINT_FILES = ['config.json', 'model.safetensors', 'ema.safetensors', 'optimizer.safetensors', 'state.json', 'autoencoder.safetensors'] as const;
const REQUIRED_FILES = CHECKPOINT_FILES.filter((f) => !CHECKPOINT_PARTS.some((p) => `${p}.safetensors` === f));

/**
 * How a checkpoint reads and writes its config, and which weights that
 * config's network has: one per kind of checkpoint (a diffusion model's,
 * an autoencoder's).
 */
export interface ConfigCodec<C> {
  /** The kind of model, in messages ('diffusion model', 'autoencoder'). */
  readonly what: string;
  parse(json: unknown, source: string): C;
  stringify(config: C): string;
  /** Parameter names -> shapes of the config's network (model, ema and optimizer hold exactly these). */
  paramShapes(config: C): Record<string, readonly number[]>;
  /** The parts the config's model needs (names -> their parameter shapes); none when absent. */
  parts?(config: C): Partial<Record<CheckpointPart, Record<string, readonly number[]>>>;
}

function shapesOf(specs: readonly { name: string; shape: readonly number[] }[]): Record<string, readonly number[]> {
  return Object.fromEntries(specs.map((s) => [s.name, s.shape]));
}

/** A diffusion model's checkpoint: the U-Net, or its K experts' (+ the autoencoder of a latent model). */
export const DIFFUSION_CODEC: ConfigCodec<DiffuseConfig> = {
  what: 'diffusion model',
  parse: (json, source) => parseConfig(json, source),
  stringify: stringifyConfig,
  paramShapes: (c) => {
    // K expert networks: each parameter once per expert, under its prefix
    const one = shapesOf(unetParamSpecs(c.model));
    const K = c.experts?.count ?? 1;
    return K === 1 ? one : Object.fromEntries(Array.from({ length: K }, (_, k) => Object.entries(one).map(([n, sh]) => [`${expertPrefix(k)}${n}`, sh] as const)).flat());
  },
  parts: (c) => (c.latent !== undefined ? { autoencoder: shapesOf(autoencoderParamSpecs(c.latent.autoencoder)) } : {}),
};

/** An autoencoder's checkpoint (diffuse train-autoencoder). */
export const AUTOENCODER_CODEC: ConfigCodec<AutoencoderRunConfig> = {
  what: 'autoencoder',
  parse: (json, source) => parseAutoencoderRunConfig(json, source),
  stringify: stringifyAutoencoderRunConfig,
  paramShapes: (c) => shapesOf(autoencoderParamSpecs(c.model)),
};
/** How many recent losses state.json keeps. */
export const LOSS_HISTORY_TAIL = 1000;

/** Everything besides weights needed to resume training exactly. */
export interface TrainingState {
  /** Optimizer steps done. */
  step: number;
  /** State of the training Rng (noise, timesteps, dropout). */
  rng: RngState;
  /** State of the data sampler (epoch, cursor, permutation seed). */
  sampler: SamplerState;
  /** Most recent per-step losses (at most LOSS_HISTORY_TAIL are saved). */
  lossHistory: number[];
  /** Seconds spent training so far, summed over resumed runs. */
  wallTimeSec: number;
}

export interface Checkpoint<C = DiffuseConfig> {
  config: C;
  state: TrainerState;
  trainingState: TrainingState;
  /** The parts the config's model needs (a latent model's autoencoder weights). */
  parts?: Partial<Record<CheckpointPart, Weights>>;
}


export interface LoadOptions<C = DiffuseConfig> {
  /**
   * Expected parameter names → shapes for the config's model. Default: the
   * codec's (a DiffuseConfig's: the U-Net's parameter specs for `config.model`,
   * model/unet-description.ts). Model/ema/optimizer tensors must match it exactly; they are
   * also always checked against each other.
   */
  expectedShapes?: (config: C) => Record<string, readonly number[]>;
  /** Set false to skip the check against the config's model (default true). */
  checkModel?: boolean;
  /** Rename a recovered `<dir>.old-*` / `<dir>.tmp-*` back to `<dir>` (default true). */
  repair?: boolean;
}

// ------------------------------------------------------------------ writing

/**
 * The checkpoint folder behind a path, for saving and loading alike: the path
 * itself when it is a checkpoint folder (it holds config.json, or it is gone
 * but an interrupted save left its siblings, which the loaders recover), else
 * the run folder's `checkpoint/`.
 */
export function checkpointDir(dir: string): string {
  if (existsSync(join(dir, 'config.json'))) return dir;
  const inner = join(dir, 'checkpoint');
  if (existsSync(inner)) return inner;
  if (!existsSync(dir) && siblingFolders(dir, 'tmp').length + siblingFolders(dir, 'old').length > 0) return dir;
  return inner;
}

function looksLikeCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) || existsSync(join(dir, 'state.json'));
}

function checkParams(params: Weights, what: string): void {
  for (const [name, t] of Object.entries(params)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (!(t.data instanceof Float32Array) || t.data.length !== n) {
      throw new DiffuseError(`saveCheckpoint: ${what} tensor "${name}" shape [${t.shape.join(',')}] does not match its ${t.data?.length} values`);
    }
  }
}

/** Serialize the state.json object. */
function stateJson(ts: TrainingState): string {
  const tail = ts.lossHistory.slice(-LOSS_HISTORY_TAIL).map((x) => (Number.isFinite(x) ? x : null));
  return JSON.stringify({
    format: 'diffuse-ts-checkpoint',
    version: 1,
    step: ts.step,
    rng: ts.rng,
    sampler: ts.sampler,
    lossHistory: tail,
    wallTimeSec: ts.wallTimeSec,
    savedAt: new Date().toISOString(),
  }, null, 1) + '\n';
}

/**
 * Write a checkpoint folder atomically (see the module comment). `dir` may
 * exist already (a previous checkpoint, replaced); an existing folder that
 * is not a checkpoint is refused rather than overwritten.
 */
export async function saveCheckpoint(dir: string, ckpt: Checkpoint): Promise<void> {
  return saveCheckpointWith(dir, ckpt, DIFFUSION_CODEC);
}

/** saveCheckpoint for any kind of checkpoint (its config codec). */
export async function saveCheckpointWith<C>(dir: string, ckpt: Checkpoint<C>, codec: ConfigCodec<C>): Promise<void> {
  const { config, state, trainingState } = ckpt;
  // validate before touching the disk
  codec.parse(JSON.parse(codec.stringify(config)), `saveCheckpoint(${dir}) config`);
  const parts = codec.parts?.(config) ?? {};
  for (const p of CHECKPOINT_PARTS) {
    const want = parts[p];
    const got = ckpt.parts?.[p];
    if ((want === undefined) !== (got === undefined)) {
      throw new DiffuseError(`saveCheckpoint: the ${codec.what}'s config ${want === undefined ? 'has no' : 'needs the'} ${p} part, ${got === undefined ? 'none was given' : 'but one was given'}`);
    }
    if (want !== undefined && got !== undefined) matchShapes(got, want, `saveCheckpoint: ${p} weights`, `the ${p} of the config`);
  }
  checkParams(state.params, 'model');
  checkParams(state.ema, 'ema');
  checkParams(state.adam.m, 'adam m');
  checkParams(state.adam.v, 'adam v');
  if (!Number.isSafeInteger(trainingState.step) || trainingState.step < 0) throw new DiffuseError(`saveCheckpoint: step must be an integer ≥ 0, got ${trainingState.step}`);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new DiffuseError(`saveCheckpoint: ${dir} exists and is not a folder`);
    if (readdirSync(dir).length > 0 && !looksLikeCheckpoint(dir)) {
      throw new DiffuseError(`saveCheckpoint: ${dir} exists and is not a checkpoint folder (no config.json/state.json); refusing to replace it`);
    }
  }
  const meta = { 'diffuse-ts': '1', step: String(trainingState.step) };
  const optTensors: Weights = {};
  for (const [k, t] of Object.entries(state.adam.m)) optTensors[`m.${k}`] = t;
  for (const [k, t] of Object.entries(state.adam.v)) optTensors[`v.${k}`] = t;
  await replaceFolder(dir, CHECKPOINT_FILES, (tmp) => {
    writeFileSynced(join(tmp, 'config.json'), codec.stringify(config));
    writeFileSynced(join(tmp, 'model.safetensors'), encodeSafetensors(state.params, { ...meta, kind: 'model' }, join(dir, 'model.safetensors')));
    writeFileSynced(join(tmp, 'ema.safetensors'), encodeSafetensors(state.ema, { ...meta, kind: 'ema' }, join(dir, 'ema.safetensors')));
    writeFileSynced(join(tmp, 'optimizer.safetensors'),
      encodeSafetensors(optTensors, { ...meta, kind: 'adam', adamStep: String(state.adam.step) }, join(dir, 'optimizer.safetensors')));
    for (const p of CHECKPOINT_PARTS) {
      const w = ckpt.parts?.[p];
      if (w !== undefined) writeFileSynced(join(tmp, `${p}.safetensors`), encodeSafetensors(w, { ...meta, kind: p }, join(dir, `${p}.safetensors`)));
    }
    // state.json last: its presence marks a complete folder
    writeFileSynced(join(tmp, 'state.json'), stateJson(trainingState));
    fsyncDir(tmp);
  }, 'saveCheckpoint');
}

// ------------------------------------------------------------------ reading

/** Largest config.json / state.json we read. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

function readJson(file: string): unknown {
  const text = readRegularFileSync(file, 'checkpoint file', MAX_JSON_BYTES).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DiffuseError(`${file}: not valid JSON (${(e as Error).message}; truncated?)`, { cause: e });
  }
}

/**
 * Which kind of checkpoint a run or checkpoint folder holds, from its
 * config.json: 'autoencoder' (kind "autoencoder") or 'diffusion'. When it
 * cannot tell (no or damaged config.json) it says 'diffusion', and the
 * loader then names the problem.
 */
export function checkpointKind(dir: string): 'autoencoder' | 'diffusion' {
  try {
    const v = readJson(join(checkpointDir(dir), 'config.json'));
    return typeof v === 'object' && v !== null && (v as Record<string, unknown>)['kind'] === 'autoencoder' ? 'autoencoder' : 'diffusion';
  } catch {
    return 'diffusion';
  }
}

function parseTrainingState(v: unknown, file: string): TrainingState {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DiffuseError(`${file}: must be a JSON object`);
  const o = v as Record<string, unknown>;
  const step = o['step'];
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) throw new DiffuseError(`${file}: field step must be an integer ≥ 0, got ${String(step)}`);
  let rng: RngState;
  try {
    rng = Rng.fromState(o['rng'] as RngState).state();
  } catch (e) {
    throw new DiffuseError(`${file}: field rng: ${(e as Error).message}`, { cause: e });
  }
  let sampler: SamplerState;
  try {
    sampler = parseSamplerState(o['sampler']);
  } catch (e) {
    throw new DiffuseError(`${file}: field sampler: ${(e as Error).message}`, { cause: e });
  }
  const lh = o['lossHistory'];
  if (!Array.isArray(lh) || !lh.every((x) => x === null || typeof x === 'number')) throw new DiffuseError(`${file}: field lossHistory must be an array of numbers`);
  const wall = o['wallTimeSec'];
  if (typeof wall !== 'number' || !Number.isFinite(wall) || wall < 0) throw new DiffuseError(`${file}: field wallTimeSec must be a number ≥ 0, got ${String(wall)}`);
  return { step, rng, sampler, lossHistory: lh.map((x: number | null) => (x === null ? NaN : x)), wallTimeSec: wall };
}

function shapeKey(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** Check `got` has exactly the names/shapes of `want`; errors name `file`. */
function matchShapes(got: Weights, want: Record<string, readonly number[]>, file: string, wantFrom: string): void {
  for (const [name, shape] of Object.entries(want)) {
    const t = got[name];
    if (!t) throw new DiffuseError(`${file}: missing tensor "${name}" ${shapeKey(shape)} expected by ${wantFrom}`);
    if (shapeKey(t.shape) !== shapeKey(shape)) throw new DiffuseError(`${file}: tensor "${name}" has shape ${shapeKey(t.shape)}, ${wantFrom} expects ${shapeKey(shape)}`);
  }
  for (const name of Object.keys(got)) {
    if (!(name in want)) throw new DiffuseError(`${file}: unexpected tensor "${name}" (not in ${wantFrom})`);
  }
}

const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16', 'F64'];

/** The tensors of a weights file; weights stored as integers are refused (a damaged or relabelled file). */
function stripTensors(file: ReturnType<typeof readSafetensors>, source: string): Weights {
  const out: Weights = {};
  for (const [k, t] of Object.entries(file.tensors)) {
    if (!FLOAT_DTYPES.includes(t.dtype)) throw new DiffuseError(`${source}: tensor "${k}" is stored as ${t.dtype}; weights must be floating point (${FLOAT_DTYPES.join(', ')})`);
    out[k] = { shape: t.shape, data: t.data };
  }
  return out;
}

function readConfig<C>(dir: string, codec: ConfigCodec<C>): C {
  const f = join(dir, 'config.json');
  return codec.parse(readJson(f), f);
}

/**
 * The parts a config's model needs, read and checked (names and shapes); a
 * missing or damaged part file is a DiffuseError naming it.
 */
function readParts<C>(dir: string, config: C, codec: ConfigCodec<C>): Partial<Record<CheckpointPart, Weights>> {
  const out: Partial<Record<CheckpointPart, Weights>> = {};
  for (const [p, want] of Object.entries(codec.parts?.(config) ?? {}) as [CheckpointPart, Record<string, readonly number[]>][]) {
    const f = join(dir, `${p}.safetensors`);
    if (!existsSync(f)) {
      throw new DiffuseError(`checkpoint ${dir} is a latent ${codec.what} (config.json has a latent section) but its ${p} is missing: ${f} (copy the folder whole, or train again with --latent)`);
    }
    const w = stripTensors(readSafetensors(f), f);
    matchShapes(w, want, f, `the ${p} in ${join(dir, 'config.json')}`);
    out[p] = w;
  }
  return out;
}

function requireFiles(dir: string, files: readonly string[]): void {
  for (const f of files) {
    if (!existsSync(join(dir, f))) throw new DiffuseError(`checkpoint ${dir}: missing ${f} (incomplete or not a checkpoint)`);
  }
}

/** The U-Net's parameter names → shapes for a config (its description; engine-free), once per expert with their prefixes. */
export async function modelParamShapes(): Promise<(config: DiffuseConfig) => Record<string, readonly number[]>> {
  return DIFFUSION_CODEC.paramShapes;
}

function resolveOptions<C>(opts: LoadOptions<C>, codec: ConfigCodec<C>): LoadOptions<C> {
  if (opts.expectedShapes || opts.checkModel === false) return opts;
  return { ...opts, expectedShapes: codec.paramShapes };
}

function loadFolder<C>(dir: string, opts: LoadOptions<C>, codec: ConfigCodec<C>): Checkpoint<C> {
  requireFiles(dir, REQUIRED_FILES);
  const config = readConfig(dir, codec);
  const stateFile = join(dir, 'state.json');
  const trainingState = parseTrainingState(readJson(stateFile), stateFile);
  const modelFile = join(dir, 'model.safetensors');
  const emaFile = join(dir, 'ema.safetensors');
  const optFile = join(dir, 'optimizer.safetensors');
  const params = stripTensors(readSafetensors(modelFile), modelFile);
  const ema = stripTensors(readSafetensors(emaFile), emaFile);
  const opt = readSafetensors(optFile);
  const m: Weights = {};
  const v: Weights = {};
  for (const [k, t] of Object.entries(opt.tensors)) {
    if (!FLOAT_DTYPES.includes(t.dtype)) throw new DiffuseError(`${optFile}: tensor "${k}" is stored as ${t.dtype}; optimizer moments must be floating point`);
    if (k.startsWith('m.')) m[k.slice(2)] = { shape: t.shape, data: t.data };
    else if (k.startsWith('v.')) v[k.slice(2)] = { shape: t.shape, data: t.data };
    else throw new DiffuseError(`${optFile}: unexpected tensor "${k}" (expected m.<param> / v.<param>)`);
  }
  const adamStepText = opt.metadata['adamStep'] ?? opt.metadata['step'];
  const adamStep = Number(adamStepText);
  if (adamStepText === undefined || !Number.isSafeInteger(adamStep) || adamStep < 0) {
    throw new DiffuseError(`${optFile}: metadata adamStep must be an integer ≥ 0, got ${JSON.stringify(adamStepText)}`);
  }
  let want: Record<string, readonly number[]>;
  let wantFrom: string;
  if (opts.expectedShapes) {
    want = opts.expectedShapes(config);
    wantFrom = `the model of ${join(dir, 'config.json')}`;
    matchShapes(params, want, modelFile, wantFrom);
  } else {
    want = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, t.shape]));
    wantFrom = modelFile;
  }
  matchShapes(ema, want, emaFile, wantFrom);
  matchShapes(m, want, `${optFile} (m.*)`, wantFrom);
  matchShapes(v, want, `${optFile} (v.*)`, wantFrom);
  const parts = readParts(dir, config, codec);
  return { config, state: { params, ema, adam: { step: adamStep, m, v } }, trainingState, ...(Object.keys(parts).length > 0 ? { parts } : {}) };
}

/**
 * The folder to read for checkpoint `dir`: `dir` itself, or if it is missing
 * (crash between the two renames of a save) the newest complete sibling.
 */
function resolveDir(dir: string, repair: boolean, check: (d: string) => number): string {
  if (existsSync(dir)) return dir;
  const candidates: { d: string; step: number }[] = [];
  const errors: string[] = [];
  for (const d of [...siblingFolders(dir, 'tmp'), ...siblingFolders(dir, 'old')]) {
    try {
      candidates.push({ d, step: check(d) });
    } catch (e) {
      errors.push(`${basename(d)}: ${(e as Error).message}`);
    }
  }
  if (candidates.length === 0) {
    throw new DiffuseError(`checkpoint ${dir} does not exist` + (errors.length ? ` (and no usable backup: ${errors.join('; ')})` : ''));
  }
  candidates.sort((a, b) => b.step - a.step);
  const best = candidates[0]!.d;
  return repair ? restoreFolder(dir, best, CHECKPOINT_FILES) : best;
}

/** Load and validate a whole checkpoint (for resuming training). */
export async function loadCheckpoint(dir: string, options: LoadOptions = {}): Promise<Checkpoint> {
  return loadCheckpointWith(dir, DIFFUSION_CODEC, options);
}

/** loadCheckpoint for any kind of checkpoint (its config codec). */
export async function loadCheckpointWith<C>(dir: string, codec: ConfigCodec<C>, options: LoadOptions<C> = {}): Promise<Checkpoint<C>> {
  const opts = resolveOptions(options, codec);
  const d = resolveDir(dir, opts.repair !== false, (c) => loadFolder(c, opts, codec).trainingState.step);
  return loadFolder(d, opts, codec);
}

/**
 * Just the config and one set of weights (for sampling): 'ema' (default,
 * what you want for samples) or 'model' (the raw trained weights).
 */
export async function loadModelWeights(
  dir: string,
  which: 'ema' | 'model' = 'ema',
  options: LoadOptions = {},
): Promise<ModelWeights<DiffuseConfig>> {
  return loadModelWeightsWith(dir, DIFFUSION_CODEC, which, options);
}

/** A model's config, one set of its weights, their step and the parts it needs. */
export interface ModelWeights<C> {
  config: C;
  params: Weights;
  step: number;
  /** A latent model's autoencoder weights (absent for other models). */
  parts: Partial<Record<CheckpointPart, Weights>>;
}

/** loadModelWeights for any kind of checkpoint (its config codec). */
export async function loadModelWeightsWith<C>(
  dir: string,
  codec: ConfigCodec<C>,
  which: 'ema' | 'model' = 'ema',
  options: LoadOptions<C> = {},
): Promise<ModelWeights<C>> {
  const opts = resolveOptions(options, codec);
  const file = which === 'ema' ? 'ema.safetensors' : 'model.safetensors';
  const needed = ['config.json', file, 'state.json'];
  const check = (c: string): number => {
    requireFiles(c, needed);
    readConfig(c, codec);
    const sf = join(c, 'state.json');
    return parseTrainingState(readJson(sf), sf).step;
  };
  const d = resolveDir(dir, opts.repair !== false, check);
  requireFiles(d, needed);
  const config = readConfig(d, codec);
  const sf = join(d, 'state.json');
  const step = parseTrainingState(readJson(sf), sf).step;
  const wf = join(d, file);
  const params = stripTensors(readSafetensors(wf), wf);
  if (opts.expectedShapes) matchShapes(params, opts.expectedShapes(config), wf, `the model of ${join(d, 'config.json')}`);
  return { config, params, step, parts: readParts(d, config, codec) };
}
