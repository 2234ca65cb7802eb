// Build step: tfjs-core's gradient and chained-op registrations as one ES module
// (dist/vendor/tfjs-gradients.js) that Node can import. tfjs-core ships them only
// as extensionless ES modules (not loadable by Node) and the 286 MB @tensorflow/tfjs
// bundle is the only other place they come from; this lets the project depend on
// tfjs-core + the cpu and wasm backends alone. '@tensorflow/tfjs-core' itself stays
// external (the registries live in its global engine, shared by every copy).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  stdin: {
    contents: "import '@tensorflow/tfjs-core/dist/register_all_gradients.js';\nimport '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';\n",
    resolveDir: root,
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outfile: `${root}/dist/vendor/tfjs-gradients.js`,
  legalComments: 'inline',
  logLevel: 'warning',
  plugins: [{
    name: 'tfjs-core-external',
    setup(b) {
      b.onResolve({ filter: /^(@tensorflow\/tfjs-core|seedrandom|long)$/ }, (a) => ({ path: a.path, external: true }));
    },
  }],
});
