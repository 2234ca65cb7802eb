/**
 * Shared by the engine tests. The engines the kernel and training tests run on:
 * wasm always, native when the oneDNN addon is built and loads (`npm run
 * build:native`); otherwise the native variants are skipped with the reason
 * printed once.
 */
import assert from 'node:assert/strict';
import type { BackendName } from '../../src/engine/backend.js';
import { loadNative } from '../../src/engine/native.js';

export const NATIVE = loadNative();
/** false, or the reason the native tests are skipped (node:test's `skip` option). */
export const SKIP_NATIVE: false | string = NATIVE.ok ? false : `native engine unavailable: ${NATIVE.reason}`;
export const TRAIN_BACKENDS: readonly BackendName[] = NATIVE.ok ? ['wasm', 'native'] : ['wasm'];

if (!NATIVE.ok) console.log(`# ${SKIP_NATIVE}`);

/** max |a - b| over max |b| (at least 1e-6). */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let scale = 1e-6, e = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i] as number));
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs((a[i] as number) - (b[i] as number)));
  return e / scale;
}
