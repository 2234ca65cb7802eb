/**
 * Adam, global-norm clipping and EMA on flat Float32Array buffers (plain JS, no
 * tfjs): the optimizer state is exactly what is exported, so export/import and
 * resumption are bit-exact, and the update is identical on every replica.
 */

export const ADAM_BETA1 = 0.9;
export const ADAM_BETA2 = 0.999;
export const ADAM_EPS = 1e-8;

export interface FlatAdamState {
  /** Number of updates applied so far. */
  step: number;
  m: Float32Array;
  v: Float32Array;
}

/** L2 norm of a flat gradient, accumulated in float64. */
export function globalNorm(g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) {
    const x = g[i] as number;
    s += x * x;
  }
  return Math.sqrt(s);
}

/**
 * Scale `g` in place so its global norm is at most `clipNorm` (clipNorm <= 0 or
 * non-finite: no clipping). Returns the norm before clipping.
 */
export function clipByGlobalNorm(g: Float32Array, clipNorm: number): number {
  const norm = globalNorm(g);
  if (clipNorm > 0 && Number.isFinite(clipNorm) && norm > clipNorm) {
    const scale = clipNorm / (norm + 1e-6);
    for (let i = 0; i < g.length; i++) g[i] = (g[i] as number) * scale;
  }
  return norm;
}

/** One Adam step (bias-corrected), in place on params and state. */
export function adamStep(params: Float32Array, grads: Float32Array, state: FlatAdamState, lr: number): void {
  state.step += 1;
  const b1 = ADAM_BETA1, b2 = ADAM_BETA2;
  const c1 = 1 - b1 ** state.step;
  const c2 = 1 - b2 ** state.step;
  const m = state.m, v = state.v;
  for (let i = 0; i < params.length; i++) {
    const g = grads[i] as number;
    const mi = b1 * (m[i] as number) + (1 - b1) * g;
    const vi = b2 * (v[i] as number) + (1 - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = (params[i] as number) - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + ADAM_EPS);
  }
}

/** ema <- decay * ema + (1 - decay) * params, in place. */
export function emaUpdate(ema: Float32Array, params: Float32Array, decay: number): void {
  const a = 1 - decay;
  for (let i = 0; i < ema.length; i++) ema[i] = (ema[i] as number) * decay + (params[i] as number) * a;
}

/**
 * Cosine decay from `peak` at step 1 to `floor`·peak at step `total` (the
 * classifier's schedule): peak · (floor + (1 − floor) · ½(1 + cos(π (step − 1) / total))).
 */
export function cosineLearningRate(step: number, total: number, peak: number, floor = 0.05): number {
  return peak * (floor + (1 - floor) * 0.5 * (1 + Math.cos((Math.PI * (step - 1)) / total)));
}
