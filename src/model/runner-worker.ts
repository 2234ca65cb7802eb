/**
 * Worker thread of createParallelModelFn (parallel-runner.ts): one U-Net on its
 * own engine instance, evaluated on the images it is sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { BackendName } from '../engine/backend.js';
import type { Shape4 } from '../diffusion/types.js';
import type { UNetConfig } from './config.js';

export interface RunnerInit {
  config: UNetConfig;
  params: Record<string, { shape: number[]; data: Float32Array }>;
  backend: BackendName;
  /** Threads of the native engine's kernels in this worker. */
  nativeThreads: number;
  batchSize: number;
}

export interface RunnerRequest { id: number; x: Float32Array; t: number; shape: Shape4; cond?: Int32Array }

export type RunnerReply =
  | { kind: 'ready' }
  | { kind: 'out'; id: number; y: Float32Array }
  | { kind: 'error'; id: number; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('runner-worker must run in a worker thread');
  const init = workerData as RunnerInit;
  try {
    const { initEngine } = await import('../engine/backend.js');
    const { loadUNetFromState, modelFnFromUNet } = await import('./runner.js');
    const engine = await initEngine({ backend: init.backend });
    if (engine.backend === 'native') (await import('../engine/native.js')).setNativeThreads(init.nativeThreads);
    const unet = loadUNetFromState(init.config, init.params);
    const fn = modelFnFromUNet(unet, engine.tf as unknown as Parameters<typeof modelFnFromUNet>[1], { batchSize: init.batchSize });
    port.on('message', (req: RunnerRequest) => {
      Promise.resolve(fn(req.x, req.t, req.shape, req.cond)).then(
        (y) => port.postMessage({ kind: 'out', id: req.id, y } satisfies RunnerReply, [y.buffer as ArrayBuffer]),
        (err: unknown) => port.postMessage({ kind: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) } satisfies RunnerReply),
      );
    });
    port.postMessage({ kind: 'ready' } satisfies RunnerReply);
  } catch (err) {
    port.postMessage({ kind: 'error', id: 0, message: err instanceof Error ? err.message : String(err) } satisfies RunnerReply);
  }
}

if (parentPort !== null) void main();
