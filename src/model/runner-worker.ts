/**
 * Worker thread of createParallelRunner (parallel-runner.ts): one registered
 * network (model/networks.ts) with its weights (one or more sets: expert
 * networks) on its own engine instance, evaluated on the rows it is sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { BackendName } from '../engine/backend.js';
import type { BatchArrays } from '../net/graph.js';
import type { Weights } from '../tensor.js';

export interface RunnerInit {
  /** The network kind (model/networks.ts) and its config, checked by the kind's own validate. */
  kind: string;
  config: unknown;
  /** One set of weights per network of this kind and config (several: expert networks); requests name one. */
  params: Weights[];
  backend: BackendName;
  /** Threads of the native engine's kernels in this worker. */
  nativeThreads: number;
  /** Rows per network evaluation. */
  batchSize: number;
}

export interface RunnerRequest { id: number; n: number; inputs: BatchArrays; /** Which weight set of RunnerInit.params. */ net: number }

export type RunnerReply =
  | { kind: 'ready' }
  | { kind: 'out'; id: number; outputs: Record<string, Float32Array> }
  | { kind: 'error'; id: number; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('runner-worker must run in a worker thread');
  const init = workerData as RunnerInit;
  try {
    const { initEngine } = await import('../engine/backend.js');
    const { registeredNetwork } = await import('./networks.js');
    const { networkGraph } = await import('../net/network.js');
    const { buildTfjsNetwork, runRows } = await import('../net/tfjs.js');
    const engine = await initEngine({ backend: init.backend });
    if (engine.backend === 'native') (await import('../engine/native.js')).setNativeThreads(init.nativeThreads);
    const def = registeredNetwork(init.kind);
    const graph = networkGraph(def, init.config);
    const nets = init.params.map((p) => buildTfjsNetwork(graph, p, def.title));
    port.on('message', (req: RunnerRequest) => {
      const net = nets[req.net];
      if (net === undefined) {
        port.postMessage({ kind: 'error', id: req.id, message: `no weight set ${req.net} (the worker holds ${nets.length})` } satisfies RunnerReply);
        return;
      }
      runRows(net, req.n, req.inputs, init.batchSize).then(
        (outputs) => port.postMessage({ kind: 'out', id: req.id, outputs } satisfies RunnerReply, Object.values(outputs).map((y) => y.buffer as ArrayBuffer)),
        (err: unknown) => port.postMessage({ kind: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) } satisfies RunnerReply),
      );
    });
    port.postMessage({ kind: 'ready' } satisfies RunnerReply);
  } catch (err) {
    port.postMessage({ kind: 'error', id: 0, message: err instanceof Error ? err.message : String(err) } satisfies RunnerReply);
  }
}

if (parentPort !== null) void main();
