// Vite build of the explorer page: web/ -> dist/web/ (served by `diffuse serve`).
// onnxruntime-web is imported with its "extern wasm" condition, so its wasm
// files are not bundled: the server hands them out from node_modules at /ort/.
import { fileURLToPath } from 'node:url';
import { defineConfig, defaultClientConditions } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  resolve: { conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions] },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 2000,
  },
});
