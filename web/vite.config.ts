// Vite build of the explorer page: web/ -> dist/web/ (served by `diffuse serve`).
// The page imports the library as a user would, through its browser entry
// ('diffuse-ts/browser', aliased here to the source). onnxruntime-web is
// imported with its "extern wasm" condition, so its wasm is not inlined into the
// bundle: the plugin below copies the runtime files the bundle names (and only
// those) into dist/web/ort/, so the installed package needs no onnxruntime-web.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, defaultClientConditions, type Plugin } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/** Copy the ort-wasm-* runtime (.mjs and its .wasm) that the bundled onnxruntime-web loads into ort/. */
function ortRuntimeFiles(): Plugin {
  return {
    name: 'ort-runtime-files',
    generateBundle(_options, bundle) {
      const dir = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
      const names = new Set<string>();
      for (const chunk of Object.values(bundle)) {
        if (chunk.type !== 'chunk') continue;
        for (const m of chunk.code.matchAll(/ort-wasm-[\w.-]+?\.mjs/g)) names.add(m[0]);
      }
      if (names.size === 0) this.error('the bundle names no ort-wasm-*.mjs runtime: onnxruntime-web changed how it loads its wasm');
      for (const mjs of names) {
        for (const file of [mjs, mjs.replace(/\.mjs$/, '.wasm')]) {
          this.emitFile({ type: 'asset', fileName: `ort/${file}`, source: readFileSync(join(dir, file)) });
        }
      }
    },
  };
}

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  resolve: {
    conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
    alias: { 'diffuse-ts/browser': fileURLToPath(new URL('../src/browser.ts', import.meta.url)) },
  },
  plugins: [ortRuntimeFiles()],
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 2000,
  },
});
