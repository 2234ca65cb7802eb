#!/usr/bin/env node
// Builds the native accelerator (oneDNN kernels for the 'native' engine):
//   npm run build:native
// Offline: node-gyp (bundled with npm) with this Node's own headers, g++,
// and Debian's libdnnl-dev (apt-get install libdnnl-dev). Output:
// native/build/Release/diffuse_native.node, which src/engine/native.ts loads.
// Without it everything still runs, on the wasm engine.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const fail = (msg) => {
  console.error(`build:native: ${msg}`);
  process.exit(1);
};

if (process.platform !== 'linux') fail(`the native accelerator builds on Linux only (this is ${process.platform}); the wasm engine needs nothing`);
const dnnl = ['/usr/include/oneapi/dnnl/dnnl.hpp', '/usr/local/include/oneapi/dnnl/dnnl.hpp'].find(existsSync);
if (dnnl === undefined) fail('oneDNN headers not found (oneapi/dnnl/dnnl.hpp): apt-get install libdnnl-dev');

// This Node's headers, so node-gyp never downloads them.
const nodeDirs = [process.env.npm_config_nodedir, path.resolve(process.execPath, '..', '..'), '/usr', '/usr/local'];
const nodedir = nodeDirs.find((d) => d !== undefined && d !== '' && existsSync(path.join(d, 'include', 'node', 'node_api.h')) && existsSync(path.join(d, 'include', 'node', 'common.gypi')));
if (nodedir === undefined) fail(`Node's headers (include/node/node_api.h) not found next to ${process.execPath} or in /usr; set npm_config_nodedir`);

// node-gyp: the one npm runs scripts with, else the one inside npm's own install.
const gypCandidates = [
  process.env.npm_config_node_gyp,
  path.resolve(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
];
let gyp = gypCandidates.find((p) => p !== undefined && p !== '' && existsSync(p));
if (gyp === undefined) {
  try { gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'); } catch { /* not installed locally */ }
}
if (gyp === undefined) fail('node-gyp not found (it ships with npm); install npm or node-gyp');

console.log(`build:native: node-gyp ${gyp}, Node headers ${nodedir}/include/node, oneDNN ${path.dirname(dnnl)}`);
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: here, stdio: 'inherit' });
if (r.status !== 0) fail(`node-gyp failed (exit ${r.status ?? r.signal}); see the compiler output above`);

// Load it once, so a broken build says so now rather than at training time.
const file = path.join(here, 'build', 'Release', 'diffuse_native.node');
try {
  const info = createRequire(import.meta.url)(file).info();
  console.log(`build:native: ok, ${path.relative(process.cwd(), file)}: oneDNN ${info.onednn}, ${info.isa}, ${info.threads} threads (${info.runtime})`);
} catch (err) {
  fail(`built ${file} but it does not load: ${err instanceof Error ? err.message : String(err)}`);
}
