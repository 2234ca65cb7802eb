/**
 * The models shipped in the package's models/ folder, found by name from any
 * working folder: `loadPipeline('mnist')`, `--checkpoint fashion-mnist-text`,
 * the classifiers `diffuse eval` uses (`classifier-<dataset>`). The names are
 * the folders there (read, not listed here), so a model added to models/ is
 * shipped by name with no code change.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiffuseError } from './errors.js';

/** The package's root folder (the one holding its package.json), from dist/src/ or src/. */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  let d = here;
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'models'))) return d;
    d = dirname(d);
  }
  return resolve(here, '..', '..');
}

/** <package root>/models. */
export const SHIPPED_MODELS_DIR = join(packageRoot(), 'models');

/** Names of the shipped models and classifiers (folders of models/ holding a config.json), sorted. */
export function shippedModels(): string[] {
  let names: string[];
  try {
    names = readdirSync(SHIPPED_MODELS_DIR);
  } catch {
    return [];
  }
  return names.filter((n) => existsSync(join(SHIPPED_MODELS_DIR, n, 'config.json'))).sort();
}

/** The folder of shipped model `name` (default: the MNIST model); throws a DiffuseError naming the shipped ones when there is none. */
export function shippedModelDir(name = 'mnist'): string {
  if (isBareName(name) && shippedModels().includes(name)) return join(SHIPPED_MODELS_DIR, name);
  throw new DiffuseError(`'${name}' is not a shipped model (shipped: ${shippedModels().join(', ') || 'none'})`);
}

function isBareName(s: string): boolean {
  return s.length > 0 && !/[/\\]/.test(s) && s !== '.' && s !== '..';
}

/**
 * A model given by path or by shipped name: a path that exists is used as it
 * is (relative to the working folder); otherwise a bare name of a shipped
 * model is its folder in the package. Anything else throws one line naming
 * `what`, the value and the shipped names.
 */
export function resolveModelDir(nameOrPath: string, what = 'checkpoint'): string {
  if (nameOrPath === '') throw new DiffuseError(`${what}: empty name`);
  if (existsSync(nameOrPath)) {
    if (!statSync(nameOrPath).isDirectory()) throw new DiffuseError(`${what} ${nameOrPath}: not a folder`);
    return nameOrPath;
  }
  if (isBareName(nameOrPath) && shippedModels().includes(nameOrPath)) return join(SHIPPED_MODELS_DIR, nameOrPath);
  throw new DiffuseError(`${what} ${nameOrPath}: no such folder, and not a shipped model (shipped: ${shippedModels().join(', ') || 'none'})`);
}
