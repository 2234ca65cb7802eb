#!/usr/bin/env node
/**
 * The `diffuse` command: a thin layer that turns flags into library options.
 * Each command lives in its own file under src/cli/ and exports `run(args)`
 * and its `HELP` text (printed here for `--help`).
 * Every error ends here, in one handler: one line on stderr, exit code 1.
 */
import { parseArgs, type ParsedArgs } from './args.js';
import { DiffuseError } from '../errors.js';

type Command = { summary: string; load: () => Promise<{ run(args: ParsedArgs): Promise<void>; HELP: string }> };

const commands: Record<string, Command> = {
  sample: { summary: 'generate images (PNG grid, PNG files, GIF) from a trained model', load: () => import('./sample.js') },
  train: { summary: 'train a diffusion model (mnist, fashion-mnist, an image folder)', load: () => import('./train.js') },
  export: { summary: 'export the U-Net to ONNX (for ONNX Runtime, in Node or the browser)', load: () => import('./export.js') },
  'train-classifier': { summary: 'train the classifier behind diffuse eval (FID/KID features)', load: () => import('./train-classifier.js') },
  eval: { summary: 'FID, KID and class histogram of samples vs held-out images', load: () => import('./eval.js') },
  serve: { summary: 'the explorer: a web page where forward and reverse diffusion run in your browser', load: () => import('./serve.js') },
  noise: { summary: 'forward diffusion of an image, as a strip of frames', load: () => import('./noise.js') },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(18)}${c.summary}`);
  return `usage: diffuse <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'diffuse <command> --help' for a command's options.`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 1 : 0;
  }
  const cmd = commands[name];
  if (cmd === undefined) throw new DiffuseError(`unknown command '${name}'\n${usage()}`);
  const mod = await cmd.load();
  const args = parseArgs(rest);
  if (args.flags.has('help')) {
    process.stdout.write(mod.HELP + '\n');
    return 0;
  }
  await mod.run(args);
  return 0;
}

function report(err: unknown): number {
  if (err instanceof DiffuseError) {
    process.stderr.write(`diffuse: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`diffuse: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.exitCode = report(err); },
);
