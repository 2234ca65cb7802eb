/**
 * Worker thread of the data-parallel trainer (trainer.ts): holds one replica on
 * its own tfjs backend instance, reads parameters from the shared buffer and
 * writes its gradient into its slot of the shared gradient buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { BackendName } from '../engine/backend.js';
import type { LossSpec } from './objective.js';
import type { Shard } from './trainer-replica.js';

export interface WorkerInit {
  /** The network (a registered kind, model/networks.ts), its config and loss. */
  kind: string;
  config: unknown;
  loss: LossSpec;
  paramsShared: SharedArrayBuffer;
  gradShared: SharedArrayBuffer;
  slot: number;
  microBatch: number;
  backend: BackendName;
  /** Threads of the native engine's kernels in this worker (the cores are shared between the workers). */
  nativeThreads: number;
}

export type WorkerRequest =
  | { kind: 'ready'; id: number }
  | { kind: 'grads'; id: number; shard: Shard; version: number }
  | { kind: 'params'; id: number; version: number };

export type WorkerReply =
  | { kind: 'ready'; id: number; backend: BackendName }
  | { kind: 'grads'; id: number; loss: number }
  | { kind: 'params'; id: number; params: Float32Array }
  | { kind: 'error'; id: number; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('trainer-worker must run in a worker thread');
  const init = workerData as WorkerInit;
  const { initEngine } = await import('../engine/backend.js');
  const { Replica } = await import('./trainer-replica.js');
  const { trainGraph } = await import('./objective.js');
  const { registeredNetwork } = await import('../model/networks.js');
  const engine = await initEngine({ backend: init.backend });
  if (engine.backend === 'native') (await import('../engine/native.js')).setNativeThreads(init.nativeThreads);
  const params = new Float32Array(init.paramsShared);
  const total = params.length;
  const slot = new Float32Array(init.gradShared, 4 * total * init.slot, total);
  const replica = new Replica(trainGraph(registeredNetwork(init.kind), init.config, init.loss).graph, params.slice(), init.microBatch);
  let loaded = 0;
  const sync = (version: number): void => {
    if (version !== loaded) {
      replica.setParams(params);
      loaded = version;
    }
  };
  port.on('message', (req: WorkerRequest) => {
    try {
      switch (req.kind) {
        case 'ready':
          port.postMessage({ kind: 'ready', id: req.id, backend: engine.backend } satisfies WorkerReply);
          break;
        case 'grads': {
          sync(req.version);
          const loss = replica.computeGrads(req.shard, slot);
          port.postMessage({ kind: 'grads', id: req.id, loss } satisfies WorkerReply);
          break;
        }
        case 'params':
          sync(req.version);
          port.postMessage({ kind: 'params', id: req.id, params: replica.getParams() } satisfies WorkerReply);
          break;
      }
    } catch (err) {
      port.postMessage({ kind: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
    }
  });
}

if (parentPort !== null) {
  main().catch((err: unknown) => {
    // Surfaces as the worker's 'error' event in the trainer.
    throw err instanceof Error ? err : new Error(String(err));
  });
}
