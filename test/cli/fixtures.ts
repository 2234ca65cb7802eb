/** Shared fixtures of the CLI tests: tiny data folders, a tiny training command, in-process and spawned runs. */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, runCli } from '../../src/cli/cli.js';
import { writePng } from '../../src/io/image.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `diffuse-${prefix}-`));
}

/** An image folder: one subfolder per class, `perClass` 8×8 gray PNGs each (deterministic patterns). */
export async function imageFolder(dir: string, classes: readonly string[], perClass: number): Promise<string> {
  for (const [ci, c] of classes.entries()) {
    mkdirSync(join(dir, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const data = Uint8Array.from({ length: 64 }, (_, k) => (k * 7 + i * 13 + ci * 41) % 256);
      await writePng(join(dir, c, `${i}.png`), { data, width: 8, height: 8, channels: 1 });
    }
  }
  return dir;
}

/** `diffuse train` flags of a 40k-parameter U-Net on 8×8 images that trains a step in a few ms. */
export function tinyTrain(dataDir: string, ...more: string[]): string[] {
  return ['train', '--dataset', 'folder', '--data-dir', dataDir, '--size', '8', '--base-channels', '8', '--channel-mults', '1,2',
    '--attention', 'none', '--timesteps', '50', '--batch-size', '4', '--workers', '1', '--sample-every', '0', ...more];
}

export interface Outcome { code: number; err: string }

/**
 * Run `diffuse <argv>` in this process, through the same error handler as the
 * executable, capturing stderr (where every message goes). stdout is left
 * alone: under `node --test` it is the channel of the test reporter.
 */
export async function cli(argv: readonly string[]): Promise<Outcome> {
  const ew = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await runCli(argv);
  } catch (e) {
    code = report(e, (s) => { err += s; });
  } finally {
    process.stderr.write = ew;
  }
  return { code, err };
}

/** Spawn the built executable. */
export function spawnCli(argv: readonly string[], cwd = ROOT): ChildProcess & { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> } {
  const p = spawn(process.execPath, [MAIN, ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((ok) => {
    p.on('exit', (code, signal) => {
      // let the pipes drain
      setImmediate(() => ok({ code, signal, out, err }));
    });
  });
  return Object.assign(p, { done });
}

/** Copy a folder (a checkpoint or run) to a fresh place to damage it. */
export function copyOf(src: string, dest: string): string {
  cpSync(src, dest, { recursive: true });
  return dest;
}
