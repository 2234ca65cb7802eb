#!/usr/bin/env node
/**
 * The `diffuse` executable. Every error ends here, in one handler: bad input
 * (a DiffuseError) is one line on stderr and exit code 1; anything else is a
 * bug and keeps its stack (exit code 2).
 */
import { runCli } from './cli.js';
import { DiffuseError } from '../errors.js';

function report(err: unknown): number {
  if (err instanceof DiffuseError) {
    process.stderr.write(`diffuse: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`diffuse: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 2;
}

runCli(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.exitCode = report(err); },
);
