/**
 * The trainer core: regression of a U-Net onto caller-computed targets.
 *
 * The caller does the diffusion math (x_t, t, target) in plain arrays; a step is
 *   loss = mean over all elements of (net(x_t, t) - target)^2
 *   g = dloss/dparams (micro-batched, optionally split over worker threads)
 *   g <- clip(g, clipNorm) (global norm); Adam(lr, 0.9, 0.999, 1e-8); EMA(emaDecay)
 *
 * Optimizer state lives in flat Float32Arrays here (adam.ts), so exportState /
 * importState are exact and a resumed run continues bit-identically.
 *
 * workers = 2: two worker threads, each holding a replica on its own wasm
 * instance, compute the gradients of their half of the batch into their slot of
 * a SharedArrayBuffer; this thread sums the slots in a fixed order, applies the
 * update to the shared parameter buffer, and both replicas load those same
 * parameters before their next step, so the replicas are bit-identical.
 * On the native engine each worker's oneDNN kernels run on one thread (the
 * cores are split between the workers); with one worker they use every core.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type BackendName, initEngine } from '../engine/backend.js';
import { describeNative } from '../engine/native.js';
import { DiffuseError } from '../errors.js';
import { conditionLength, type UNetConfig, validateUNetConfig } from '../model/config.js';
import { initParam, unetParamSpecs } from '../model/unet.js';
import { adamStep, clipByGlobalNorm, emaUpdate, type FlatAdamState } from './adam.js';
import { type ParamLayout, paramLayout, Replica, type Shard } from './trainer-replica.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './trainer-worker.js';

export interface TrainBatch {
  xt: Float32Array;
  /** Per-image step index. */
  t: Float32Array;
  target: Float32Array;
  /** [n, h, w, c] of xt (target has the model's outChannels). */
  shape: [number, number, number, number];
  /**
   * Condition rows, [n, conditionLength(config)] row-major: a class index per
   * image (class models; numClasses = no class) or token ids (text models).
   */
  cond?: Int32Array;
}

export interface StepHyper { lr: number; clipNorm: number; emaDecay: number }

export type NamedArrays = Record<string, { shape: number[]; data: Float32Array }>;

export interface TrainerState {
  params: NamedArrays;
  ema: NamedArrays;
  adam: { step: number; m: NamedArrays; v: NamedArrays };
}

export interface Trainer {
  step(batch: TrainBatch, hp: StepHyper): Promise<{ loss: number; gradNorm: number }>;
  exportState(): Promise<TrainerState>;
  importState(s: TrainerState): Promise<void>;
  dispose(): Promise<void>;
  readonly workers: number;
  /** What computes the gradients, for users: "native (oneDNN 2.6.3, avx512_core_amx, 1 thread) x 2 data-parallel workers". */
  readonly engine: string;
  /** Set when the default engine was picked without the native accelerator: why, and how to enable it (one line). */
  readonly notice?: string;
}

export interface TrainerOptions {
  seed: number;
  workers: 1 | 2 | 'auto';
  /** Images per forward/backward pass inside a replica (gradient accumulation). Default 32: with batch 64 on 2 workers, one pass each. */
  microBatch?: number;
  backend?: BackendName;
}

export const DEFAULT_MICRO_BATCH = 32;

/** Deterministic initial parameters, flat in layout order. */
export function initialFlatParams(config: UNetConfig, seed: number, layout: ParamLayout = paramLayout(config)): Float32Array {
  const out = new Float32Array(layout.total);
  unetParamSpecs(config).forEach((s, i) => out.set(initParam(s, seed), layout.offsets[i] as number));
  return out;
}

function toNamed(layout: ParamLayout, flat: Float32Array): NamedArrays {
  const r: NamedArrays = {};
  layout.names.forEach((n, i) => {
    const o = layout.offsets[i] as number;
    r[n] = { shape: [...(layout.shapes[i] as number[])], data: flat.slice(o, o + (layout.sizes[i] as number)) };
  });
  return r;
}

function fromNamed(layout: ParamLayout, named: NamedArrays, what: string, into: Float32Array): void {
  if (typeof named !== 'object' || named === null) throw new DiffuseError(`trainer state: ${what} is missing`);
  const extra = Object.keys(named).filter((k) => !layout.names.includes(k));
  if (extra.length > 0) throw new DiffuseError(`trainer state: ${what} has unknown parameter '${extra[0]}'`);
  layout.names.forEach((n, i) => {
    const e = named[n];
    if (e === undefined) throw new DiffuseError(`trainer state: ${what} lacks parameter '${n}'`);
    const shape = layout.shapes[i] as number[];
    if (!Array.isArray(e.shape) || e.shape.length !== shape.length || e.shape.some((d, j) => d !== shape[j])) {
      throw new DiffuseError(`trainer state: ${what}.${n} has shape [${String(e.shape)}], expected [${shape.join(',')}]`);
    }
    if (!(e.data instanceof Float32Array) || e.data.length !== layout.sizes[i]) {
      throw new DiffuseError(`trainer state: ${what}.${n} must be a Float32Array of ${layout.sizes[i]} values`);
    }
    into.set(e.data, layout.offsets[i] as number);
  });
}

function validateBatch(b: TrainBatch, config: UNetConfig): void {
  if (typeof b !== 'object' || b === null) throw new DiffuseError('train batch must be an object');
  const sh = b.shape;
  if (!Array.isArray(sh) || sh.length !== 4 || sh.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new DiffuseError(`train batch shape must be [n,h,w,c] of positive integers, got ${JSON.stringify(sh)}`);
  }
  const [n, h, w, c] = sh;
  if (h !== config.imageSize || w !== config.imageSize || c !== config.inChannels) {
    throw new DiffuseError(`train batch shape [${sh.join(',')}] does not fit the model (${config.imageSize}x${config.imageSize}x${config.inChannels})`);
  }
  if (!(b.xt instanceof Float32Array) || b.xt.length !== n * h * w * c) {
    throw new DiffuseError(`train batch xt must be a Float32Array of ${n * h * w * c} values`);
  }
  if (!(b.target instanceof Float32Array) || b.target.length !== n * h * w * config.outChannels) {
    throw new DiffuseError(`train batch target must be a Float32Array of ${n * h * w * config.outChannels} values`);
  }
  if (!(b.t instanceof Float32Array) || b.t.length !== n) throw new DiffuseError(`train batch t must be a Float32Array of ${n} step indices`);
  if (b.cond !== undefined) {
    const L = conditionLength(config);
    if (L === 0) throw new DiffuseError('train batch has a condition but the model is unconditional (no classes, no text)');
    if (!(b.cond instanceof Int32Array) || b.cond.length !== n * L) throw new DiffuseError(`train batch cond must be an Int32Array of ${n} x ${L} values`);
    const max = config.text !== undefined ? config.text.vocab.length - 1 : config.numClasses;
    for (const k of b.cond) {
      if (k < 0 || k > max) throw new DiffuseError(`train batch condition ${k} out of range 0..${max}`);
    }
  }
}

function validateHyper(hp: StepHyper): void {
  if (typeof hp !== 'object' || hp === null) throw new DiffuseError('step hyper-parameters missing');
  if (!(Number.isFinite(hp.lr) && hp.lr >= 0)) throw new DiffuseError(`lr must be a finite number >= 0, got ${String(hp.lr)}`);
  if (!(typeof hp.clipNorm === 'number' && !Number.isNaN(hp.clipNorm))) throw new DiffuseError(`clipNorm must be a number (<= 0: no clipping), got ${String(hp.clipNorm)}`);
  if (!(Number.isFinite(hp.emaDecay) && hp.emaDecay >= 0 && hp.emaDecay <= 1)) throw new DiffuseError(`emaDecay must be in [0, 1], got ${String(hp.emaDecay)}`);
}

function shardOf(b: TrainBatch, start: number, end: number, oc: number, denom: number, dropoutSeed: number): Shard {
  const [, h, w, c] = b.shape;
  return {
    xt: b.xt.slice(start * h * w * c, end * h * w * c),
    t: b.t.slice(start, end),
    target: b.target.slice(start * h * w * oc, end * h * w * oc),
    cond: b.cond?.slice(start * (b.cond.length / b.shape[0]), end * (b.cond.length / b.shape[0])),
    shape: [end - start, h, w, c],
    denom,
    dropoutSeed,
  };
}

/** Gradient back-ends: in-process or worker threads. */
interface GradSource {
  readonly workers: number;
  /** Computes the full-batch gradient into `grad`; returns the loss. */
  grads(batch: TrainBatch, denom: number, dropoutSeed: number, grad: Float32Array): Promise<number>;
  /** Parameters changed (they are in the shared/params buffer). */
  paramsChanged(): void;
  replicaParams(): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

class InProcess implements GradSource {
  readonly workers = 1;
  constructor(private readonly replica: Replica, private readonly params: Float32Array) {}
  async grads(b: TrainBatch, denom: number, dropoutSeed: number, grad: Float32Array): Promise<number> {
    const shard: Shard = { xt: b.xt, t: b.t, target: b.target, cond: b.cond, shape: b.shape, denom, dropoutSeed };
    return this.replica.computeGrads(shard, grad);
  }
  paramsChanged(): void { this.replica.setParams(this.params); }
  async replicaParams(): Promise<Float32Array[]> { return [this.replica.getParams()]; }
  async dispose(): Promise<void> { this.replica.dispose(); }
}

class WorkerPool implements GradSource {
  private readonly pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;
  private version = 0;

  private constructor(
    private readonly threads: Worker[],
    private readonly gradSlots: Float32Array[],
    private readonly oc: number,
  ) {
    threads.forEach((w) => {
      w.on('message', (r: WorkerReply) => {
        const p = this.pending.get(r.id);
        if (p === undefined) return;
        this.pending.delete(r.id);
        if (r.kind === 'error') p.reject(new Error(`trainer worker: ${r.message}`));
        else p.resolve(r);
      });
      w.on('error', (e: Error) => this.fail(e));
      w.on('exit', (code) => { if (code !== 0) this.fail(new Error(`trainer worker exited with code ${code}`)); });
    });
  }

  get workers(): number { return this.threads.length; }

  static async start(config: UNetConfig, layout: ParamLayout, paramsShared: SharedArrayBuffer, n: number,
    microBatch: number, backend: BackendName, nativeThreads: number): Promise<{ pool: WorkerPool }> {
    const gradShared = new SharedArrayBuffer(4 * layout.total * n);
    const slots = Array.from({ length: n }, (_, i) => new Float32Array(gradShared, 4 * layout.total * i, layout.total));
    const url = new URL('./trainer-worker.js', import.meta.url);
    const threads: Worker[] = [];
    for (let i = 0; i < n; i++) {
      const init: WorkerInit = { config, paramsShared, gradShared, slot: i, microBatch, backend, nativeThreads };
      threads.push(new Worker(url, { workerData: init }));
    }
    const pool = new WorkerPool(threads, slots, config.outChannels);
    try {
      await Promise.all(threads.map((_, i) => pool.call(i, { kind: 'ready', id: 0 })));
    } catch (e) {
      await pool.dispose();
      throw e;
    }
    return { pool };
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private call(i: number, req: WorkerRequest): Promise<WorkerReply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      (this.threads[i] as Worker).postMessage({ ...req, id });
    });
  }

  async grads(b: TrainBatch, denom: number, dropoutSeed: number, grad: Float32Array): Promise<number> {
    const n = b.shape[0];
    const k = this.threads.length;
    const per = Math.ceil(n / k);
    const replies = await Promise.all(this.threads.map((_, i) => {
      const s = Math.min(n, i * per), e = Math.min(n, (i + 1) * per);
      const shard = shardOf(b, s, e, this.oc, denom, dropoutSeed + s);
      return this.call(i, { kind: 'grads', id: 0, shard, version: this.version });
    }));
    // Sum slots in a fixed order.
    grad.set(this.gradSlots[0] as Float32Array);
    for (let i = 1; i < k; i++) {
      const s = this.gradSlots[i] as Float32Array;
      for (let j = 0; j < grad.length; j++) grad[j] = (grad[j] as number) + (s[j] as number);
    }
    let loss = 0;
    for (const r of replies) if (r.kind === 'grads') loss += r.loss;
    return loss;
  }

  paramsChanged(): void { this.version++; }

  async replicaParams(): Promise<Float32Array[]> {
    const replies = await Promise.all(this.threads.map((_, i) => this.call(i, { kind: 'params', id: 0, version: this.version })));
    return replies.map((r) => (r.kind === 'params' ? r.params : new Float32Array(0)));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.threads.map((w) => w.terminate()));
  }
}

function resolveWorkers(w: TrainerOptions['workers'], backend: BackendName): 1 | 2 {
  if (w === 1 || w === 2) return w;
  if (w === 'auto') {
    // tfjs-node / webgpu parallelise internally; data parallelism is for wasm/cpu and
    // native (two workers on one thread each beat one process on two threads: docs/engine.md).
    if (backend === 'tensorflow' || backend === 'webgpu') return 1;
    return availableParallelism() >= 2 ? 2 : 1;
  }
  throw new DiffuseError(`workers must be 1, 2 or 'auto', got ${String(w)}`);
}

/** Create a trainer. Same seed + same batches -> same weights. */
export async function createTrainer(config: UNetConfig, opts: TrainerOptions): Promise<Trainer> {
  validateUNetConfig(config);
  if (!Number.isInteger(opts.seed)) throw new DiffuseError(`trainer seed must be an integer, got ${String(opts.seed)}`);
  const microBatch = opts.microBatch ?? DEFAULT_MICRO_BATCH;
  if (!Number.isInteger(microBatch) || microBatch < 1) throw new DiffuseError(`microBatch must be a positive integer, got ${String(microBatch)}`);
  // Decide the engine here (workers call initEngine with the same name themselves).
  const engine = await initEngine(opts.backend !== undefined ? { backend: opts.backend } : {});
  const backend = engine.backend;
  const workers = resolveWorkers(opts.workers, backend);
  const nativeThreads = Math.max(1, Math.floor(availableParallelism() / workers));
  const layout = paramLayout(config);
  const paramsShared = new SharedArrayBuffer(4 * layout.total);
  const params = new Float32Array(paramsShared);
  params.set(initialFlatParams(config, opts.seed, layout));
  const ema = params.slice();
  const adam: FlatAdamState = { step: 0, m: new Float32Array(layout.total), v: new Float32Array(layout.total) };
  const grad = new Float32Array(layout.total);

  let source: GradSource;
  if (workers === 1) {
    source = new InProcess(new Replica(config, params, microBatch), params);
  } else {
    source = (await WorkerPool.start(config, layout, paramsShared, workers, microBatch, backend, nativeThreads)).pool;
  }
  const engineLine = workers === 1
    ? engine.description
    : `${backend === 'native' ? describeNative(nativeThreads) : engine.description} x ${workers} data-parallel workers`;
  let disposed = false;
  let busy: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    if (disposed) return Promise.reject(new DiffuseError('trainer was disposed'));
    const r = busy.then(f, f);
    busy = r.catch(() => undefined);
    return r;
  };

  const trainer: Trainer = {
    workers,
    engine: engineLine,
    ...(engine.notice !== undefined ? { notice: engine.notice } : {}),
    step: (batch, hp) => serial(async () => {
      validateBatch(batch, config);
      validateHyper(hp);
      const [n, h, w] = batch.shape;
      const denom = n * h * w * config.outChannels;
      // Distinct dropout seeds per step and image offset.
      const loss = await source.grads(batch, denom, (adam.step + 1) * 100_003 + opts.seed * 7919, grad);
      if (!Number.isFinite(loss)) throw new DiffuseError(`training loss is not finite (${loss}) at step ${adam.step + 1}`);
      const gradNorm = clipByGlobalNorm(grad, hp.clipNorm);
      adamStep(params, grad, adam, hp.lr);
      emaUpdate(ema, params, hp.emaDecay);
      source.paramsChanged();
      return { loss, gradNorm };
    }),
    exportState: () => serial(async () => ({
      params: toNamed(layout, params),
      ema: toNamed(layout, ema),
      adam: { step: adam.step, m: toNamed(layout, adam.m), v: toNamed(layout, adam.v) },
    })),
    importState: (s) => serial(async () => {
      if (typeof s !== 'object' || s === null || typeof s.adam !== 'object' || s.adam === null) throw new DiffuseError('trainer state must have params, ema and adam');
      if (!Number.isInteger(s.adam.step) || s.adam.step < 0) throw new DiffuseError(`trainer state: adam.step must be an integer >= 0, got ${String(s.adam.step)}`);
      const p = new Float32Array(layout.total), e = new Float32Array(layout.total);
      const m = new Float32Array(layout.total), v = new Float32Array(layout.total);
      fromNamed(layout, s.params, 'params', p);
      fromNamed(layout, s.ema, 'ema', e);
      fromNamed(layout, s.adam.m, 'adam.m', m);
      fromNamed(layout, s.adam.v, 'adam.v', v);
      params.set(p); ema.set(e); adam.m.set(m); adam.v.set(v); adam.step = s.adam.step;
      source.paramsChanged();
    }),
    dispose: async () => {
      if (disposed) return;
      await busy;
      disposed = true;
      await source.dispose();
    },
  };
  replicaAccess.set(trainer, () => serial(() => source.replicaParams()));
  return trainer;
}

/** Parameters of every replica, flat (tests: replicas must be bit-identical). */
export async function replicaParams(trainer: Trainer): Promise<Float32Array[]> {
  const f = replicaAccess.get(trainer);
  if (f === undefined) throw new DiffuseError('not a trainer created by createTrainer');
  return f();
}
const replicaAccess = new WeakMap<Trainer, () => Promise<Float32Array[]>>();
