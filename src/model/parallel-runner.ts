/**
 * A ModelFn that splits each call's images between worker threads, each
 * holding the U-Net on its own engine instance (modelFnFromUNet inside), with
 * the native engine's kernels on one thread per worker. Data parallelism over
 * the cores instead of an OpenMP team inside every kernel: on a machine where
 * other jobs hold a core, a team waits for its descheduled thread at every
 * kernel, while independent workers just run slower (bench/nfe.ts,
 * docs/engine.md).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { BackendName } from '../engine/backend.js';
import type { ModelFn, Shape4 } from '../diffusion/types.js';
import { DiffuseError } from '../errors.js';
import type { UNetConfig } from './config.js';
import type { RunnerInit, RunnerReply, RunnerRequest } from './runner-worker.js';

export interface ParallelModelFn {
  readonly model: ModelFn;
  readonly workers: number;
  dispose(): Promise<void>;
}

export interface ParallelModelOptions {
  readonly backend: BackendName;
  /** Worker threads (default: one per core, at most 2). */
  readonly workers?: number;
  /** Images per network evaluation inside a worker (default 64). */
  readonly batchSize?: number;
}

/** Start the workers (each loads `params` into its own U-Net) and return the ModelFn. */
export async function createParallelModelFn(config: UNetConfig, params: Record<string, { shape: number[]; data: Float32Array }>,
  opts: ParallelModelOptions): Promise<ParallelModelFn> {
  const k = opts.workers ?? Math.max(1, Math.min(2, availableParallelism()));
  if (!Number.isInteger(k) || k < 1) throw new DiffuseError(`workers must be a positive integer, got ${String(k)}`);
  const nativeThreads = Math.max(1, Math.floor(availableParallelism() / k));
  const url = new URL('./runner-worker.js', import.meta.url);
  const pending = new Map<number, { resolve: (y: Float32Array) => void; reject: (e: Error) => void }>();
  let failure: Error | undefined;
  const fail = (e: Error): void => {
    failure ??= e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const threads: Worker[] = [];
  const ready: Array<Promise<void>> = [];
  for (let i = 0; i < k; i++) {
    const init: RunnerInit = { config, params, backend: opts.backend, nativeThreads, batchSize: opts.batchSize ?? 64 };
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
    else p.resolve(r.y);
  }));
  let nextId = 1;
  const call = (i: number, req: Omit<RunnerRequest, 'id'>): Promise<Float32Array> => {
    if (failure !== undefined) return Promise.reject(failure);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      (threads[i] as Worker).postMessage({ ...req, id } satisfies RunnerRequest);
    });
  };
  const L = config.text !== undefined ? config.text.maxTokens : 1;
  const model: ModelFn = async (x: Float32Array, t: number, shape: Shape4, cond?: Int32Array): Promise<Float32Array> => {
    const [n, h, w, c] = shape;
    const per = h * w * c, perOut = h * w * config.outChannels;
    if (x.length !== n * per) throw new DiffuseError(`model input has ${x.length} values, shape [${shape.join(',')}] needs ${n * per}`);
    const chunk = Math.ceil(n / k);
    const parts: Array<Promise<Float32Array>> = [];
    for (let i = 0, s = 0; s < n; i++, s += chunk) {
      const e = Math.min(n, s + chunk);
      parts.push(call(i, {
        x: x.slice(s * per, e * per), t, shape: [e - s, h, w, c],
        ...(cond !== undefined ? { cond: cond.slice(s * L, e * L) } : {}),
      }));
    }
    const ys = await Promise.all(parts);
    const out = new Float32Array(n * perOut);
    let at = 0;
    for (const y of ys) { out.set(y, at); at += y.length; }
    return out;
  };
  return { model, workers: k, dispose };
}
