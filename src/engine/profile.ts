/**
 * Per-kernel wall-time profiler for synchronous backends (wasm, cpu): wraps
 * every kernel registered for the backend with a timer. For benchmarks and the
 * docs' profile table; not used in normal runs.
 */
import * as tf from './tf.js';

export interface KernelStat { name: string; calls: number; ms: number }

export interface KernelProfiler {
  /** Statistics so far, slowest first. */
  stats(): KernelStat[];
  reset(): void;
  /** Restore the original kernels. */
  stop(): void;
}

export function profileKernels(backendName: string = tf.getBackend(), opts: { byShape?: boolean } = {}): KernelProfiler {
  const table = new Map<string, { calls: number; ms: number }>();
  const originals = tf.getKernelsForBackend(backendName);
  let depth = 0;
  for (const k of originals) {
    const inner = k.kernelFunc;
    const name = k.kernelName;
    const wrapped: tf.KernelFunc = (args) => {
      // Only the outermost kernel is charged (ours call other kernels).
      if (depth > 0) return inner(args);
      depth++;
      const t0 = performance.now();
      const key = opts.byShape === true
        ? `${name} ${Object.values(args.inputs).map((t) => `[${(t?.shape ?? []).join(',')}]`).join(' ')}`
        : name;
      try {
        return inner(args);
      } finally {
        depth--;
        const e = table.get(key) ?? { calls: 0, ms: 0 };
        e.calls++;
        e.ms += performance.now() - t0;
        table.set(key, e);
      }
    };
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({ ...k, kernelFunc: wrapped });
  }
  return {
    stats: () => [...table].map(([name, v]) => ({ name, ...v })).sort((a, b) => b.ms - a.ms),
    reset: () => table.clear(),
    stop: () => {
      for (const k of originals) {
        tf.unregisterKernel(k.kernelName, backendName);
        tf.registerKernel(k);
      }
    },
  };
}

function opts_pad(name: string): number { return Math.max(24, Math.min(70, name.length + 1)); }

/** Format stats as an aligned text table with percentages. */
export function formatKernelStats(stats: KernelStat[], top = 20): string {
  const total = stats.reduce((s, k) => s + k.ms, 0);
  const rows = stats.slice(0, top).map((k) =>
    `${k.name.padEnd(opts_pad(k.name))} ${k.calls.toString().padStart(6)} calls ${k.ms.toFixed(1).padStart(9)} ms ${((100 * k.ms) / Math.max(total, 1e-9)).toFixed(1).padStart(5)}%`);
  return [...rows, `${'total'.padEnd(24)} ${''.padStart(12)} ${total.toFixed(1).padStart(9)} ms`].join('\n');
}
