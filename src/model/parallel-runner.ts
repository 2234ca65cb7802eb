/**
 * A described network (net/network.ts) with its weights, evaluated on worker
 * threads: each call's rows are split between the workers, each holding the
 * network on its own engine instance, with the native engine's kernels on one
 * thread per worker. Data parallelism over the cores instead of an OpenMP
 * team inside every kernel: on a machine where other jobs hold a core, a team
 * waits for its descheduled thread at every kernel, while independent workers
 * just run slower (bench/nfe.ts, docs/engine.md).
 *
 * `createParallelRunner` takes any registered network (model/networks.ts:
 * the workers rebuild it from its kind and config) and returns its named
 * outputs; `createParallelModelFn` is the U-Net's ModelFn on top of it.
 * Several weight sets of one network (expert networks, diffusion/experts.ts)
 * share the workers: each worker holds every set, each call names one
 * (`createParallelModelFns`: one ModelFn per set).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BackendName } from '../engine/backend.js';
import type { ModelFn } from '../diffusion/types.js';
import { DiffuseError } from '../errors.js';
import { type BatchArrays, sliceRows } from '../net/graph.js';
import { networkGraph, type NetworkDef } from '../net/network.js';
import type { Weights } from '../tensor.js';
import type { UNetConfig } from './config.js';
import { isRegisteredNetwork } from './networks.js';
import { unetModelFn } from './runner.js';
import { unetNetwork } from './unet-description.js';
import type { RunnerInit, RunnerReply, RunnerRequest } from './runner-worker.js';

/** What the workers hold: a network kind, its config and its weights (or several sets of them: run's `net` picks one). */
export interface NetworkWeights<C> {
  readonly network: NetworkDef<C>;
  readonly config: C;
  readonly params: Weights | readonly Weights[];
}

export interface ParallelOptions {
  readonly backend: BackendName;
  /** Worker threads (default: one per core, at most 2). */
  readonly workers?: number;
  /** Rows per network evaluation inside a worker (default 64). */
  readonly batchSize?: number;
}

export interface ParallelRunner {
  /** Every output of the network (weight set `net`, default 0) for the n rows of `inputs` (by input name; optional inputs may be absent). */
  run(n: number, inputs: BatchArrays, net?: number): Promise<Record<string, Float32Array>>;
  readonly workers: number;
  dispose(): Promise<void>;
}

export interface ParallelModelFn {
  readonly model: ModelFn;
  readonly workers: number;
  dispose(): Promise<void>;
}

export interface ParallelModelFns {
  /** One ModelFn per weight set, all on the same workers. */
  readonly models: readonly ModelFn[];
  readonly workers: number;
  dispose(): Promise<void>;
}

/** Start the workers (each loads the weights into its own copy of the network) and return the runner. */
export async function createParallelRunner<C>(net: NetworkWeights<C>, opts: ParallelOptions): Promise<ParallelRunner> {
  const k = opts.workers ?? Math.max(1, Math.min(2, availableParallelism()));
  if (!Number.isInteger(k) || k < 1) throw new DiffuseError(`workers must be a positive integer, got ${String(k)}`);
  if (!isRegisteredNetwork(net.network)) {
    throw new DiffuseError(`network kind '${net.network.kind}' is not registered (model/networks.ts), so worker threads cannot rebuild it`);
  }
  const graph = networkGraph(net.network, net.config);
  const sets: readonly Weights[] = isWeightSets(net.params) ? net.params : [net.params];
  if (sets.length === 0) throw new DiffuseError('no weights for the model workers');
  const nativeThreads = Math.max(1, Math.floor(availableParallelism() / k));
  const url = new URL('./runner-worker.js', import.meta.url);
  const pending = new Map<number, { resolve: (y: Record<string, Float32Array>) => void; reject: (e: Error) => void }>();
  let failure: Error | undefined;
  const fail = (e: Error): void => {
    failure ??= e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const threads: Worker[] = [];
  const ready: Array<Promise<void>> = [];
  for (let i = 0; i < k; i++) {
    const init: RunnerInit = {
      kind: net.network.kind, config: net.config, params: [...sets], backend: opts.backend, nativeThreads, batchSize: opts.batchSize ?? 64,
    };
    const w = new Worker(url, { workerData: init });
    ready.push(new Promise((resolve, reject) => {
      w.once('message', (r: RunnerReply) => (r.kind === 'ready' ? resolve() : reject(new DiffuseError(`model worker: ${r.kind === 'error' ? r.message : 'bad reply'}`))));
      w.once('error', reject);
    }));
    w.on('error', (e: Error) => fail(e));
    w.on('exit', (code) => { if (code !== 0) fail(new Error(`model worker exited with code ${code}`)); });
    threads.push(w);
  }
  const dispose = async (): Promise<void> => { await Promise.all(threads.map((w) => w.terminate())); };
  try {
    await Promise.all(ready);
  } catch (e) {
    await dispose();
    throw e;
  }
  threads.forEach((w) => w.on('message', (r: RunnerReply) => {
    if (r.kind === 'ready') return;
    const p = pending.get(r.id);
    if (p === undefined) return;
    pending.delete(r.id);
    if (r.kind === 'error') p.reject(new DiffuseError(r.message));
    else p.resolve(r.outputs);
  }));
  let nextId = 1;
  const call = (i: number, req: Omit<RunnerRequest, 'id'>): Promise<Record<string, Float32Array>> => {
    if (failure !== undefined) return Promise.reject(failure);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      (threads[i] as Worker).postMessage({ ...req, id } satisfies RunnerRequest);
    });
  };
  const run = async (n: number, inputs: BatchArrays, netIndex = 0): Promise<Record<string, Float32Array>> => {
    if (!Number.isInteger(n) || n < 1) throw new DiffuseError(`row count must be a positive integer, got ${String(n)}`);
    if (!Number.isInteger(netIndex) || netIndex < 0 || netIndex >= sets.length) throw new DiffuseError(`weight set ${String(netIndex)} of ${sets.length}`);
    const chunk = Math.ceil(n / k);
    const parts: Array<Promise<Record<string, Float32Array>>> = [];
    for (let i = 0, s = 0; s < n; i++, s += chunk) {
      const e = Math.min(n, s + chunk);
      parts.push(call(i, { n: e - s, net: netIndex, inputs: sliceRows(graph, inputs, s, e, true) }));
    }
    const ys = await Promise.all(parts);
    const out: Record<string, Float32Array> = {};
    for (const o of graph.outputs) {
      const pieces = ys.map((y) => y[o.name] as Float32Array);
      const all = new Float32Array(pieces.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of pieces) { all.set(p, at); at += p.length; }
      out[o.name] = all;
    }
    return out;
  };
  return { run, workers: k, dispose };
}

function isWeightSets(p: Weights | readonly Weights[]): p is readonly Weights[] {
  return Array.isArray(p);
}

/** The U-Net's ModelFn with each call's images split between worker threads. */
export async function createParallelModelFn(config: UNetConfig, params: Weights, opts: ParallelOptions): Promise<ParallelModelFn> {
  const { models, workers, dispose } = await createParallelModelFns(config, [params], opts);
  return { model: models[0]!, workers, dispose };
}

/** The U-Net's ModelFn of each weight set (expert networks), all on the same workers, each call's images split between them. */
export async function createParallelModelFns(config: UNetConfig, params: readonly Weights[], opts: ParallelOptions): Promise<ParallelModelFns> {
  const runner = await createParallelRunner({ network: unetNetwork, config, params }, opts);
  const models = params.map((_, k) => unetModelFn(config, async (n, inputs) => (await runner.run(n, inputs, k))['out'] as Float32Array));
  return { models, workers: runner.workers, dispose: runner.dispose };
}
