/**
 * The layers import downward only. Read from the sources' import statements:
 * - the engine-free math (schedule, rng, diffusion/, samplers/, guidance/,
 *   generate, latent/scaled, text/, image/, interop/ except its folder reader,
 *   the network descriptions in net/ and model/, the ONNX writer) imports no
 *   engine (tfjs, ONNX Runtime), no Node built-in, and nothing from the layers
 *   above it (engine/, train/, data/, io/, eval/ except its metrics, cli/,
 *   web/, pipeline);
 * - io/ (files) imports no diffusion math: only io/, image/, errors, tensor;
 * - image/ (pixel arithmetic) imports only errors and tensor.
 * The explorer page (web/) imports the library only through its browser entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SRC = join(ROOT, 'src');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

/** Every module a file imports (static, dynamic, type-only and re-exports): package names as written, local ones as src-relative paths without extension. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)]
    .map((m) => m[1] ?? m[2] ?? m[3]!);
  return specs.map((s) => (s.startsWith('.') ? relative(SRC, normalize(join(dirname(file), s))).replace(/\.(js|ts)$/, '') : s));
}

const ENGINE_FREE = /^(schedule|rng|errors|tensor|generate|config|core|browser|diffusion\/.*|samplers\/.*|guidance\/.*|text\/.*|image\/.*|interop\/(diffusers-scheduler|diffusers-unet)|latent\/scaled|net\/(graph|blocks|network|params)|model\/(config|unet-description|networks|autoencoder-config|autoencoder-description)|onnx\/(export-graph|export-unet|graph|proto|feeds)|train\/objective|eval\/metrics|web\/(ort-web-model|explorer-handle))$/;
const ENGINE_OR_NODE = /^(node:|@tensorflow\/|onnxruntime-|pngjs$|jpeg-js$|gifenc$|mnist$)/;

const modules = tsFiles(SRC).map((f) => ({ name: relative(SRC, f).replace(/\.ts$/, ''), imports: importsOf(f) }));

test('the import scanner sees imports (the rules below can fail)', () => {
  const backend = modules.find((m) => m.name === 'engine/backend');
  assert.ok(backend?.imports.includes('engine/tf') && backend.imports.includes('node:path'), `engine/backend imports ${backend?.imports.join(', ')}`);
  assert.ok(ENGINE_FREE.test('samplers/ddim') && !ENGINE_FREE.test('io/image'));
});

test('the engine-free math imports no engine, no Node built-in and nothing above it', () => {
  const bad: string[] = [];
  for (const m of modules.filter((x) => ENGINE_FREE.test(x.name))) {
    for (const i of m.imports) {
      const local = modules.some((x) => x.name === i);
      if (ENGINE_OR_NODE.test(i) || (local && !ENGINE_FREE.test(i))) bad.push(`${m.name} -> ${i}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('io/ imports no diffusion math; image/ imports only errors and tensor', () => {
  const bad: string[] = [];
  for (const m of modules) {
    const local = m.imports.filter((i) => modules.some((x) => x.name === i));
    if (m.name.startsWith('io/')) for (const i of local) if (!/^(io\/|image\/|errors$|tensor$)/.test(i)) bad.push(`${m.name} -> ${i}`);
    if (m.name.startsWith('image/')) for (const i of local) if (!/^(image\/|errors$|tensor$)/.test(i)) bad.push(`${m.name} -> ${i}`);
  }
  assert.deepEqual(bad, []);
});

test('the explorer page imports the library only through its browser entry', () => {
  const bad: string[] = [];
  for (const f of tsFiles(join(ROOT, 'web')).filter((p) => !p.endsWith('vite.config.ts'))) {
    for (const i of importsOf(f)) {
      // importsOf names local modules relative to src/: the page's own files are ../web/*
      if (i.startsWith('..') && !i.startsWith('../web/')) bad.push(`${relative(ROOT, f)} -> ${i}`);
      if (!i.startsWith('.') && !i.startsWith('..') && modules.some((x) => x.name === i) && i !== 'web/explorer-handle') bad.push(`${relative(ROOT, f)} -> src/${i}`);
    }
  }
  assert.deepEqual(bad, []);
});
