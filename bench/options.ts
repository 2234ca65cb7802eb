/** The benches' command lines: the same declarative option tables as the CLI (src/cli/options.ts). */
import { optionsHelp, parseOptions, type OptionTable, type Parsed } from '../src/cli/options.js';
import { DiffuseError } from '../src/errors.js';

/** Parse this script's argv against `table`; --help prints the options and exits. */
export function benchOptions<T extends OptionTable>(script: string, table: T, argv: readonly string[] = process.argv.slice(2)): Parsed<T> {
  const program = `node dist/bench/${script}.js`;
  const p = parseOptions(table, argv, program);
  if (p.help || p.version) {
    process.stdout.write(`usage: ${program} [options]\n\noptions:\n${optionsHelp(table)}\n`);
    process.exit(0);
  }
  return p;
}

/** Guidance weights to sweep (`--weights 0,2,4`): comma-separated numbers ≥ 0, at least one. */
export function guidanceWeights(flag: string, text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const ws = parts.map(Number);
  if (parts.some((p) => p === '') || ws.some((w) => !(Number.isFinite(w) && w >= 0 && w <= 100))) {
    throw new DiffuseError(`--${flag} must be comma-separated numbers in [0, 100], got '${text}'`);
  }
  return ws;
}
