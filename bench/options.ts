/** The benches' command lines: the same declarative option tables as the CLI (src/cli/options.ts). */
import { optionsHelp, parseOptions, type OptionTable, type Parsed } from '../src/cli/options.js';

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
