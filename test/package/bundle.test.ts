/**
 * The package's entry points as a bundler meets them: the engine-free core
 * ('diffuse-ts/core') and the browser entry ('diffuse-ts/browser') bundle for
 * the browser with esbuild, with no Node built-in and no engine (tfjs, ONNX
 * Runtime) inside; the Node entry re-exports all of the core. Runs on the
 * compiled dist/src (what the package ships).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

interface Bundled {
  errors: string[];
  inputs: string[];
  nodeImports: string[];
  bytes: number;
}

/** Bundle one compiled entry for the browser; collect every Node built-in it imports (resolved or not). */
async function bundleForBrowser(entry: string): Promise<Bundled> {
  const nodeImports: string[] = [];
  const result = await build({
    entryPoints: [join(ROOT, 'dist', 'src', entry)],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [{
      name: 'find-node-builtins',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (args) => {
          if (BUILTINS.has(args.path)) {
            nodeImports.push(`${args.path} (from ${args.importer.replace(ROOT, '.')})`);
            return { path: args.path, external: true };
          }
          return undefined;
        });
      },
    }],
  }).catch((err: { errors?: { text: string }[] }) => ({ errors: err.errors ?? [{ text: String(err) }], metafile: undefined, outputFiles: undefined }));
  const metafile: Metafile | undefined = result.metafile;
  return {
    errors: result.errors.map((e) => e.text),
    inputs: metafile === undefined ? [] : Object.keys(metafile.inputs),
    nodeImports,
    bytes: result.outputFiles?.reduce((a, f) => a + f.contents.length, 0) ?? 0,
  };
}

for (const entry of ['core.js', 'browser.js']) {
  test(`${entry.replace('.js', '')} entry bundles for the browser with no Node built-in and no engine`, async () => {
    const r = await bundleForBrowser(entry);
    assert.deepEqual(r.errors, [], 'esbuild bundles it');
    assert.deepEqual(r.nodeImports, [], 'no node: import');
    const engines = r.inputs.filter((p) => /@tensorflow|onnxruntime|pngjs|jpeg-js|gifenc/.test(p));
    assert.deepEqual(engines, [], 'no engine or Node-only package inside');
    assert.ok(r.inputs.some((p) => p.endsWith('samplers/ddim.js')), 'the samplers are in it');
    console.log(`${entry}: ${r.inputs.length} modules, ${(r.bytes / 1024).toFixed(0)} KB unminified`);
  });
}

test('the check can fail: the Node entry does not bundle for the browser', async () => {
  const r = await bundleForBrowser('index.js');
  assert.ok(r.nodeImports.length > 0, 'the Node entry imports Node built-ins');
});

test('the Node entry exports everything the core does, and the browser entry adds the onnxruntime-web model', async () => {
  const core = await import('../../src/core.js');
  const node = await import('../../src/index.js');
  const browser = await import('../../src/browser.js');
  const missing = Object.keys(core).filter((k) => !(k in node));
  assert.deepEqual(missing, [], 'the Node entry re-exports the core');
  assert.deepEqual(Object.keys(core).filter((k) => !(k in browser)), [], 'the browser entry re-exports the core');
  assert.equal(typeof browser.createOrtWebModelFn, 'function');
  assert.equal(typeof node.loadPipeline, 'function');
  assert.ok(!('loadPipeline' in core), 'the core has no Node-only export');
});
