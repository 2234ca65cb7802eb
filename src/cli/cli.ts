/**
 * The `diffuse` command line: the list of commands and the dispatcher. Each
 * command lives in its own file under src/cli/ and exports `command`
 * (defineCommand: its option table and what it does), loaded only when used.
 */
import { DiffuseError } from '../errors.js';
import { packageVersion, type Command } from './command.js';

interface Entry { readonly summary: string; load(): Promise<{ command: Command }> }

export const COMMANDS: Readonly<Record<string, Entry>> = {
  sample: { summary: 'generate images (PNG/JPEG grid, PNG files, GIF) from a trained model', load: () => import('./sample.js') },
  train: { summary: 'train a diffusion model (mnist, fashion-mnist, emoji, an image folder; --latent: on an autoencoder\'s latents)', load: () => import('./train.js') },
  'train-autoencoder': { summary: 'train the autoencoder of latent diffusion (images <-> latents)', load: () => import('./train-autoencoder.js') },
  export: { summary: 'export the U-Net to ONNX (for ONNX Runtime, in Node or the browser)', load: () => import('./export.js') },
  'train-classifier': { summary: 'train the classifier behind diffuse eval (FID/KID features)', load: () => import('./train-classifier.js') },
  eval: { summary: 'FID, KID and class histogram of samples vs held-out images', load: () => import('./eval.js') },
  serve: { summary: 'the explorer: a web page where forward and reverse diffusion run in your browser', load: () => import('./serve.js') },
  noise: { summary: 'forward diffusion of an image, as a strip of frames', load: () => import('./noise.js') },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(18)}${c.summary}`);
  return `usage: diffuse <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'diffuse <command> --help' for a command's options, 'diffuse --version' for the version.`;
}

/** Run `diffuse <argv>`; resolves to the exit code, throws a DiffuseError for bad input. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 1 : 0;
  }
  if (name === '--version') {
    process.stdout.write(`diffuse-ts ${packageVersion()}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) throw new DiffuseError(`unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')}; see diffuse --help)`);
  return (await entry.load()).command.execute(rest);
}

/**
 * The one error handler: bad input (a DiffuseError) is one line, `diffuse:
 * <message>`, and exit code 1; anything else is a bug and keeps its stack
 * (exit code 2). Returns the exit code.
 */
export function report(err: unknown, write: (text: string) => void): number {
  if (err instanceof DiffuseError) {
    write(`diffuse: ${err.message.replace(/\s*\n\s*/g, ' ')}\n`);
    return 1;
  }
  write(`diffuse: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 2;
}
