/**
 * The engines the kernel and training tests run on: wasm always, native when
 * the oneDNN addon is built and loads (`npm run build:native`); otherwise the
 * native variants are skipped with the reason printed once.
 */
import type { BackendName } from '../../src/engine/backend.js';
import { loadNative } from '../../src/engine/native.js';

export const NATIVE = loadNative();
/** false, or the reason the native tests are skipped (node:test's `skip` option). */
export const SKIP_NATIVE: false | string = NATIVE.ok ? false : `native engine unavailable: ${NATIVE.reason}`;
export const TRAIN_BACKENDS: readonly BackendName[] = NATIVE.ok ? ['wasm', 'native'] : ['wasm'];

if (!NATIVE.ok) console.log(`# ${SKIP_NATIVE}`);
