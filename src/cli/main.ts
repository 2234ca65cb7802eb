#!/usr/bin/env node
/** The `diffuse` executable: run the command line, and every error ends in the one handler (cli.ts `report`). */
import { report, runCli } from './cli.js';

runCli(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.exitCode = report(err, (s) => process.stderr.write(s)); },
);
