/**
 * A command = its option table + what it does. `defineCommand` hides the
 * table's type behind `execute(argv)`, which parses (util.parseArgs through
 * options.ts), answers --help and --version, and runs the command. Exit code:
 * what `run` returns (default 0); bad input throws a DiffuseError, which
 * main.ts prints on one line with exit code 1.
 */
import { readFileSync } from 'node:fs';
import { optionsHelp, parseOptions, type OptionTable, type Parsed, type PositionalSpec } from './options.js';

export interface CommandDef<T extends OptionTable> {
  readonly name: string;
  /** The usage line after `usage: diffuse <name>`, e.g. 'IMAGE [options]'. */
  readonly usage?: string;
  /** Paragraphs printed between the usage line and the options. */
  readonly description?: string;
  readonly options: T;
  readonly positionals?: PositionalSpec;
  /** Printed after the options (examples, notes). */
  readonly epilog?: string;
  run(p: Parsed<T>): Promise<number | void>;
}

export interface Command {
  readonly name: string;
  help(): string;
  /** Parse argv (everything after the command name) and run; resolves to the exit code. */
  execute(argv: readonly string[]): Promise<number>;
}

let versionText: string | undefined;

/** The package version (package.json next to dist/). */
export function packageVersion(): string {
  versionText ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return versionText;
}

export function defineCommand<T extends OptionTable>(def: CommandDef<T>): Command {
  const help = (): string =>
    `usage: diffuse ${def.name} ${def.usage ?? '[options]'}\n` +
    (def.description !== undefined ? `\n${def.description.trim()}\n` : '') +
    `\noptions:\n${optionsHelp(def.options)}` +
    (def.epilog !== undefined ? `\n\n${def.epilog.trim()}` : '');
  return {
    name: def.name,
    help,
    async execute(argv) {
      const p = parseOptions(def.options, argv, `diffuse ${def.name}`, def.positionals);
      if (p.help) {
        process.stdout.write(help() + '\n');
        return 0;
      }
      if (p.version) {
        process.stdout.write(`diffuse-ts ${packageVersion()}\n`);
        return 0;
      }
      return (await def.run(p)) ?? 0;
    },
  };
}
