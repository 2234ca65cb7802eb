/**
 * The backend seam. One call, `initEngine`, picks and prepares the TensorFlow.js
 * backend every other module computes on.
 *
 * - `native` (default when the addon is built and loads): the wasm backend's
 *   instance with its hot kernels (convolutions, matmuls, GroupNorm+SiLU, bias
 *   sums) run by oneDNN from C++ in place on the wasm heap (native.ts). Built
 *   by `npm run build:native`; when it is absent or fails to load, the default
 *   is the next one and `Engine.notice` says how to enable it.
 * - `wasm` (default when tfjs-node is absent): XNNPACK-backed WebAssembly. tfjs
 *   4.22's wasm backend lacks the kernels a U-Net's backward pass needs
 *   (Conv2DBackpropFilter) or has slow ones (Conv2DBackpropInput, transposed
 *   BatchMatMul); `registerWasmKernels` (kernels.ts) fills those gaps.
 * - `tensorflow`: @tensorflow/tfjs-node (libtensorflow). Picked automatically when
 *   the package can be imported; it registers its own complete kernel set.
 * - `webgpu`: npm `webgpu` (Dawn for Node) + @tensorflow/tfjs-backend-webgpu,
 *   imported only when asked for.
 * - `cpu`: tfjs's plain-JS reference backend; used only when asked for (it is
 *   far too slow to train on, so nothing ever falls back to it silently).
 */
import * as tf from './tf.js';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { DiffuseError } from '../errors.js';
import { registerWasmKernels } from './kernels.js';
import { registerFusedKernels } from './fused.js';
import { describeNative, loadNative, registerNativeBackend } from './native.js';

export type BackendName = 'native' | 'wasm' | 'webgpu' | 'tensorflow' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['native', 'wasm', 'webgpu', 'tensorflow', 'cpu'];

export interface Engine {
  backend: BackendName;
  tf: typeof import('./tf.js');
  /** One line for users: "native (oneDNN 2.6.3, avx512_core_amx, 2 threads)", "wasm (tfjs-wasm, XNNPACK)", ... */
  description: string;
  /** Set when the default engine was picked and the native accelerator is unavailable: why, and how to enable it. */
  notice?: string;
}

let wasmPathsSet = false;
let tfjsNodeProbe: Promise<boolean> | undefined;
let current: Promise<Engine> | undefined;
let currentName: BackendName | undefined;

/** Import a module whose name is only known at run time (optional dependency). */
async function importOptional(name: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(name)) as Record<string, unknown>;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** True when @tensorflow/tfjs-node can be imported (importing it registers the 'tensorflow' backend). */
export function tfjsNodeAvailable(): Promise<boolean> {
  tfjsNodeProbe ??= importOptional('@tensorflow/tfjs-node').then((m) => m !== undefined);
  return tfjsNodeProbe;
}

/** Directory holding the wasm binaries inside node_modules, as a path ending in '/'. */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkg), 'dist') + path.sep;
}

function prepareWasm(): void {
  if (!wasmPathsSet) {
    // Node: a plain file path, so it works offline and from any cwd.
    setWasmPaths(wasmBinaryDir());
    wasmPathsSet = true;
  }
  registerWasmKernels();
}

async function activate(name: BackendName): Promise<void> {
  switch (name) {
    case 'native': {
      const l = loadNative();
      if (!l.ok) throw new DiffuseError(`backend 'native' (oneDNN accelerator) is unavailable: ${l.reason}`);
      prepareWasm();
      registerFusedKernels();
      // The native backend is the wasm backend's instance: initialise that first.
      if (tf.findBackend('wasm') === null) {
        const prev = tf.getBackend() as string | null | undefined;
        if (!(await tf.setBackend('wasm'))) throw new DiffuseError("backend 'native': the wasm backend it builds on failed to initialize");
        if (typeof prev === 'string' && prev !== '' && prev !== 'wasm') await tf.setBackend(prev);
      }
      const wasm = tf.findBackend('wasm');
      if (wasm === null) throw new DiffuseError("backend 'native': the wasm backend it builds on failed to initialize");
      registerNativeBackend(wasm);
      break;
    }
    case 'wasm': {
      prepareWasm();
      break;
    }
    case 'tensorflow': {
      if (!(await tfjsNodeAvailable())) {
        throw new DiffuseError("backend 'tensorflow' needs @tensorflow/tfjs-node: npm install @tensorflow/tfjs-node");
      }
      break;
    }
    case 'webgpu': {
      if (typeof (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu === 'undefined') {
        const dawn = await importOptional('webgpu');
        if (dawn === undefined) throw new DiffuseError("backend 'webgpu' needs the npm package 'webgpu': npm install webgpu");
        const create = dawn['create'];
        const globals = dawn['globals'];
        if (typeof create !== 'function' || typeof globals !== 'object' || globals === null) {
          throw new DiffuseError("backend 'webgpu': the 'webgpu' package does not export create/globals");
        }
        Object.assign(globalThis, globals);
        const gpu: unknown = (create as (flags: string[]) => unknown)([]);
        const g = globalThis as { navigator?: object };
        if (g.navigator === undefined) g.navigator = {};
        Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
      }
      if ((await importOptional('@tensorflow/tfjs-backend-webgpu')) === undefined) {
        throw new DiffuseError("backend 'webgpu' needs @tensorflow/tfjs-backend-webgpu: npm install @tensorflow/tfjs-backend-webgpu");
      }
      break;
    }
    case 'cpu':
      break;
  }
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) {
    throw new DiffuseError(`backend '${name}' failed to initialize`);
  }
  await tf.ready();
}

/**
 * Register our kernels and select the backend. Default: 'native' when the
 * oneDNN addon loads, else 'tensorflow' when @tensorflow/tfjs-node is
 * importable, else 'wasm'. Idempotent: calling again
 * with the same (or no) backend returns the same engine; asking for a different
 * backend switches to it.
 */
export async function initEngine(opts: { backend?: BackendName } = {}): Promise<Engine> {
  const wanted = opts.backend;
  if (wanted !== undefined && !BACKEND_NAMES.includes(wanted)) {
    throw new DiffuseError(`unknown backend '${String(wanted)}' (expected one of ${BACKEND_NAMES.join(', ')})`);
  }
  if (current !== undefined && (wanted === undefined || wanted === currentName)) {
    const engine = await current;
    // Someone switched tf's backend behind our back (tests do): switch back.
    if (tf.getBackend() !== engine.backend) await activate(engine.backend);
    return engine;
  }
  const run = async (): Promise<Engine> => {
    const native = loadNative();
    const name: BackendName = wanted ?? (native.ok ? 'native' : (await tfjsNodeAvailable()) ? 'tensorflow' : 'wasm');
    await activate(name);
    currentName = name;
    const engine: Engine = { backend: name, tf, description: describeEngine(name) };
    if (wanted === undefined && !native.ok) engine.notice = `native accelerator (oneDNN) ${native.reason}`;
    return engine;
  };
  const p = run();
  current = p;
  try {
    return await p;
  } catch (err) {
    if (current === p) {
      current = undefined;
      currentName = undefined;
    }
    throw err;
  }
}

/** One line naming what a backend runs on. */
export function describeEngine(name: BackendName): string {
  switch (name) {
    case 'native': return describeNative();
    case 'wasm': return 'wasm (tfjs-wasm, XNNPACK, 1 thread per instance)';
    case 'tensorflow': return 'tensorflow (@tensorflow/tfjs-node)';
    case 'webgpu': return 'webgpu (@tensorflow/tfjs-backend-webgpu)';
    case 'cpu': return 'cpu (tfjs reference backend)';
  }
}

/** Parse a user-supplied backend name (CLI flags, configs). */
export function parseBackendName(s: string): BackendName {
  const found = BACKEND_NAMES.find((b) => b === s);
  if (found === undefined) throw new DiffuseError(`unknown backend '${s}' (expected one of ${BACKEND_NAMES.join(', ')})`);
  return found;
}
