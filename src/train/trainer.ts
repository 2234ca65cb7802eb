/**
 * The trainer core: any described network (net/network.ts) with a loss that
 * is part of its training graph (train/objective.ts), fed named input arrays.
 * The U-Net's regression onto caller-computed targets is one such task
 * (`createTrainer`): the caller does the diffusion math (x_t, t, target) in
 * plain arrays. A step is
 *   loss = (sum over the batch's rows of the loss) / (n x the loss's per-row count)
 *          (U-Net: mean over all elements of (net(x_t, t) - target)^2)
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
import { conditionLength, type UNetConfig } from '../model/config.js';
import { unetNetwork } from '../model/unet-description.js';
import { isRegisteredNetwork } from '../model/networks.js';
import { type BatchArrays, type Graph, rowSize, sliceRows } from '../net/graph.js';
import type { NetworkDef } from '../net/network.js';
import { initParam, type ParamLayout, paramLayout } from '../net/params.js';
import { adamStep, clipByGlobalNorm, emaUpdate, type FlatAdamState } from './adam.js';
import { type LossSpec, trainGraph } from './objective.js';
import { Replica, type Shard } from './trainer-replica.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './trainer-worker.js';
import type { Weights } from '../tensor.js';

/** What to train: a network kind, its config and the loss. */
export interface TrainTask<C> {
  network: NetworkDef<C>;
  config: C;
  loss: LossSpec;
}

/** A batch for any task: n rows of every input of its training graph (optional inputs may be absent). */
export interface NamedBatch {
  n: number;
  inputs: BatchArrays;
}

/** A U-Net batch (createTrainer). */
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

export interface TrainerState {
  params: Weights;
  ema: Weights;
  adam: { step: number; m: Weights; v: Weights };
}

/** What a training step reports. */
export interface StepResult {
  loss: number;
  gradNorm: number;
  /** Further figures of the step for log.jsonl (a trainer of several networks: each one's loss). */
  log?: Readonly<Record<string, number>>;
}

export interface Trainer<B = TrainBatch> {
  step(batch: B, hp: StepHyper): Promise<StepResult>;
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

/** Deterministic initial parameters of a graph, flat in layout order. */
export function initialFlatParams(graph: Graph, seed: number, layout: ParamLayout = paramLayout(graph.params)): Float32Array {
  const out = new Float32Array(layout.total);
  graph.params.forEach((s, i) => out.set(initParam(s, seed), layout.offsets[i] as number));
  return out;
}

function toNamed(layout: ParamLayout, flat: Float32Array): Weights {
  const r: Weights = {};
  layout.names.forEach((n, i) => {
    const o = layout.offsets[i] as number;
    r[n] = { shape: [...(layout.shapes[i] as number[])], data: flat.slice(o, o + (layout.sizes[i] as number)) };
  });
  return r;
}

function fromNamed(layout: ParamLayout, named: Weights, what: string, into: Float32Array): void {
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

/** Checks a batch against the training graph's inputs: sizes, types, integer ranges, nothing unknown. */
function validateNamedBatch(b: NamedBatch, graph: Graph): void {
  if (typeof b !== 'object' || b === null || typeof b.inputs !== 'object' || b.inputs === null) throw new DiffuseError('train batch must be {n, inputs}');
  const n = b.n;
  if (!Number.isInteger(n) || n < 1) throw new DiffuseError(`train batch size must be a positive integer, got ${String(n)}`);
  for (const name of Object.keys(b.inputs)) {
    if (b.inputs[name] !== undefined && !graph.inputs.some((d) => d.name === name)) {
      throw new DiffuseError(`train batch has an input '${name}' the ${graph.name} does not take (inputs: ${graph.inputs.map((d) => d.name).join(', ')})`);
    }
  }
  for (const d of graph.inputs) {
    const a = b.inputs[d.name];
    if (a === undefined) {
      if (d.fill === undefined) throw new DiffuseError(`train batch lacks input '${d.name}' (${d.doc})`);
      continue;
    }
    const len = n * rowSize(d);
    const type = d.dtype === 'float32' ? Float32Array : Int32Array;
    if (!(a instanceof type) || a.length !== len) throw new DiffuseError(`train batch ${d.name} must be a ${type.name} of ${len} values (${d.doc})`);
    if (d.max !== undefined) {
      for (const k of a) if (k < 0 || k > d.max) throw new DiffuseError(`train batch ${d.name} value ${k} out of range 0..${d.max}`);
    }
  }
}

/** A U-Net batch as named inputs (x, t, target, classes or tokens), after the checks only it can make. */
function unetBatch(b: TrainBatch, config: UNetConfig): NamedBatch {
  if (typeof b !== 'object' || b === null) throw new DiffuseError('train batch must be an object');
  const sh = b.shape;
  if (!Array.isArray(sh) || sh.length !== 4 || sh.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new DiffuseError(`train batch shape must be [n,h,w,c] of positive integers, got ${JSON.stringify(sh)}`);
  }
  const [n, h, w, c] = sh;
  if (h !== config.imageSize || w !== config.imageSize || c !== config.inChannels) {
    throw new DiffuseError(`train batch shape [${sh.join(',')}] does not fit the model (${config.imageSize}x${config.imageSize}x${config.inChannels})`);
  }
  if (b.cond !== undefined && conditionLength(config) === 0) {
    throw new DiffuseError('train batch has a condition but the model is unconditional (no classes, no text)');
  }
  const cond = b.cond === undefined ? {} : config.text !== undefined ? { tokens: b.cond } : { classes: b.cond };
  return { n, inputs: { x: b.xt, t: b.t, target: b.target, ...cond } };
}

function validateHyper(hp: StepHyper): void {
  if (typeof hp !== 'object' || hp === null) throw new DiffuseError('step hyper-parameters missing');
  if (!(Number.isFinite(hp.lr) && hp.lr >= 0)) throw new DiffuseError(`lr must be a finite number >= 0, got ${String(hp.lr)}`);
  if (!(typeof hp.clipNorm === 'number' && !Number.isNaN(hp.clipNorm))) throw new DiffuseError(`clipNorm must be a number (<= 0: no clipping), got ${String(hp.clipNorm)}`);
  if (!(Number.isFinite(hp.emaDecay) && hp.emaDecay >= 0 && hp.emaDecay <= 1)) throw new DiffuseError(`emaDecay must be in [0, 1], got ${String(hp.emaDecay)}`);
}

/** Gradient back-ends: in-process or worker threads. */
interface GradSource {
  readonly workers: number;
  /** Computes the full-batch gradient into `grad`; returns the loss. */
  grads(batch: NamedBatch, denom: number, dropoutSeed: number, grad: Float32Array): Promise<number>;
  /** Parameters changed (they are in the shared/params buffer). */
  paramsChanged(): void;
  replicaParams(): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}

class InProcess implements GradSource {
  readonly workers = 1;
  constructor(private readonly replica: Replica, private readonly params: Float32Array) {}
  async grads(b: NamedBatch, denom: number, dropoutSeed: number, grad: Float32Array): Promise<number> {
    const shard: Shard = { n: b.n, inputs: b.inputs, denom, dropoutSeed };
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
    private readonly graph: Graph,
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

  static async start(task: TrainTask<unknown>, graph: Graph, layout: ParamLayout, paramsShared: SharedArrayBuffer, n: number,
    microBatch: number, backend: BackendName, nativeThreads: number): Promise<{ pool: WorkerPool }> {
    const gradShared = new SharedArrayBuffer(4 * layout.total * n);
    const slots = Array.from({ length: n }, (_, i) => new Float32Array(gradShared, 4 * layout.total * i, layout.total));
    const url = new URL('./trainer-worker.js', import.meta.url);
    const threads: Worker[] = [];
    for (let i = 0; i < n; i++) {
      const init: WorkerInit = {
        kind: task.network.kind, config: task.config, loss: task.loss, paramsShared, gradShared, slot: i, microBatch, backend, nativeThreads,
      };
      threads.push(new Worker(url, { workerData: init }));
    }
    const pool = new WorkerPool(threads, slots, graph);
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

  async grads(b: NamedBatch, denom: number, dropoutSeed: number, grad: Float32Array): Promise<number> {
    const n = b.n;
    const k = this.threads.length;
    const per = Math.ceil(n / k);
    const replies = await Promise.all(this.threads.map((_, i) => {
      const s = Math.min(n, i * per), e = Math.min(n, (i + 1) * per);
      const shard: Shard = { n: e - s, inputs: sliceRows(this.graph, b.inputs, s, e, true), denom, dropoutSeed: dropoutSeed + s };
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

/**
 * A trainer for any described network and loss. Same seed + same batches ->
 * same weights. With 2 workers the network must be a registered kind
 * (model/networks.ts): worker threads rebuild it from (kind, config).
 */
export async function createNetworkTrainer<C>(task: TrainTask<C>, opts: TrainerOptions): Promise<Trainer<NamedBatch>> {
  const { graph, perRow } = trainGraph(task.network, task.config, task.loss);
  if (!Number.isInteger(opts.seed)) throw new DiffuseError(`trainer seed must be an integer, got ${String(opts.seed)}`);
  const microBatch = opts.microBatch ?? DEFAULT_MICRO_BATCH;
  if (!Number.isInteger(microBatch) || microBatch < 1) throw new DiffuseError(`microBatch must be a positive integer, got ${String(microBatch)}`);
  // Decide the engine here (workers call initEngine with the same name themselves).
  const engine = await initEngine(opts.backend !== undefined ? { backend: opts.backend } : {});
  const backend = engine.backend;
  const workers = resolveWorkers(opts.workers, backend);
  const nativeThreads = Math.max(1, Math.floor(availableParallelism() / workers));
  if (workers > 1 && !isRegisteredNetwork(task.network)) {
    throw new DiffuseError(`network kind '${task.network.kind}' is not registered (model/networks.ts), so worker threads cannot rebuild it; use workers: 1`);
  }
  const layout = paramLayout(graph.params);
  const paramsShared = new SharedArrayBuffer(4 * layout.total);
  const params = new Float32Array(paramsShared);
  params.set(initialFlatParams(graph, opts.seed, layout));
  const ema = params.slice();
  const adam: FlatAdamState = { step: 0, m: new Float32Array(layout.total), v: new Float32Array(layout.total) };
  const grad = new Float32Array(layout.total);

  let source: GradSource;
  if (workers === 1) {
    source = new InProcess(new Replica(graph, params, microBatch), params);
  } else {
    source = (await WorkerPool.start(task as TrainTask<unknown>, graph, layout, paramsShared, workers, microBatch, backend, nativeThreads)).pool;
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

  const trainer: Trainer<NamedBatch> = {
    workers,
    engine: engineLine,
    ...(engine.notice !== undefined ? { notice: engine.notice } : {}),
    step: (batch, hp) => serial(async () => {
      validateNamedBatch(batch, graph);
      validateHyper(hp);
      const denom = batch.n * perRow;
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

/** A U-Net trainer: MSE of its output against the batch's target. */
export async function createTrainer(config: UNetConfig, opts: TrainerOptions): Promise<Trainer> {
  const inner = await createNetworkTrainer({ network: unetNetwork, config, loss: { kind: 'mse' } }, opts);
  const trainer: Trainer = {
    workers: inner.workers,
    engine: inner.engine,
    ...(inner.notice !== undefined ? { notice: inner.notice } : {}),
    step: async (batch, hp) => inner.step(unetBatch(batch, config), hp),
    exportState: () => inner.exportState(),
    importState: (s) => inner.importState(s),
    dispose: () => inner.dispose(),
  };
  const access = replicaAccess.get(inner);
  if (access !== undefined) replicaAccess.set(trainer, access);
  return trainer;
}

/** Parameters of every replica, flat (tests: replicas must be bit-identical). */
export async function replicaParams(trainer: Trainer<never>): Promise<Float32Array[]> {
  const f = replicaAccess.get(trainer);
  if (f === undefined) throw new DiffuseError('not a trainer created by createTrainer');
  return f();
}
const replicaAccess = new WeakMap<object, () => Promise<Float32Array[]>>();
