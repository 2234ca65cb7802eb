/**
 * Declarative command-line options. Each command describes its options once,
 * in a table (one line per option: type, allowed range, default, aliases,
 * description); from that one table come
 *
 *   - the `util.parseArgs` configuration (Node's own parser),
 *   - the validation (types, ranges, choices, output paths), done before the
 *     command starts any work, with one-line errors naming the flag, the value
 *     and what is allowed,
 *   - the `--help` text,
 *   - the old spellings (aliases), which still work and warn once on stderr.
 *
 * Shared options (seed, batch size, checkpoint, sampler ...) are defined here
 * once and spread into the commands' tables.
 */
import { shippedModels } from '../shipped.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DiffuseError } from '../errors.js';
import { checkOutputDir, checkOutputFile, type OutputFormat } from '../io/files.js';
import { BACKEND_NAMES } from '../engine/backend.js';
import { SAMPLER_NAMES } from '../samplers/factory.js';

interface OptionBase {
  /** One-line description for --help (the range and the default are appended). */
  readonly help: string;
  /** Placeholder in --help (e.g. N, DIR). */
  readonly arg?: string;
  /** Old spellings: still accepted, with a warning naming the new one (once per process). */
  readonly aliases?: readonly string[];
  /** Shown instead of the default when the default depends on other options. */
  readonly defaultText?: string;
  /** `diffuse train --resume` accepts only options marked resumable. */
  readonly resumable?: boolean;
}
export interface IntOption extends OptionBase { readonly type: 'int'; readonly min: number; readonly max: number; readonly default?: number }
export interface NumberOption extends OptionBase {
  readonly type: 'number';
  readonly min: number;
  readonly max: number;
  /** The bounds themselves are not allowed (e.g. a learning rate > 0). */
  readonly exclusive?: 'min' | 'max' | 'both';
  readonly default?: number;
}
export interface StringOption extends OptionBase { readonly type: 'string'; readonly default?: string }
export interface ChoiceOption<C extends string = string> extends OptionBase { readonly type: 'choice'; readonly choices: readonly C[]; readonly default?: C }
export interface FlagOption extends OptionBase { readonly type: 'flag' }
/** Comma-separated integers in [min, max]; 'none' or '' = the empty list when allowed. */
export interface IntListOption extends OptionBase { readonly type: 'int-list'; readonly min: number; readonly max: number; readonly maxLength: number; readonly allowNone?: boolean; readonly default?: readonly number[] }
/** A file to write: the extension must name one of `formats`; an existing path must be a regular file (checked at parse time). */
export interface OutFileOption extends OptionBase { readonly type: 'out-file'; readonly formats: readonly OutputFormat[]; readonly default?: string }
/** A folder to write files into (checked at parse time: not a file, parent writable). */
export interface OutDirOption extends OptionBase { readonly type: 'out-dir'; readonly default?: string }

export type OptionSpec = IntOption | NumberOption | StringOption | ChoiceOption | FlagOption | IntListOption | OutFileOption | OutDirOption;
export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S> =
  S extends IntOption | NumberOption ? number
  : S extends FlagOption ? boolean
  : S extends ChoiceOption<infer C> ? C
  : S extends IntListOption ? number[]
  : string;
type HasValue<S> = S extends FlagOption ? true : S extends { readonly default: unknown } ? true : false;

/** The parsed values of a table: options with a default (and flags) are always set. */
export type Values<T extends OptionTable> = {
  readonly [K in keyof T]: HasValue<T[K]> extends true ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

export interface Parsed<T extends OptionTable> {
  readonly values: Values<T>;
  /** Options given on the command line (by their canonical name), as opposed to defaults. */
  readonly given: ReadonlySet<keyof T & string>;
  readonly positionals: readonly string[];
}

// ------------------------------------------------------------------ shared options

export const SEED = { type: 'int', min: 0, max: 2 ** 32 - 1, default: 0, arg: 'S', help: 'random seed: the same seed gives the same result' } as const;
export const CHECKPOINT = { type: 'string', arg: 'DIR', help: `run or checkpoint folder, or a shipped model by name (${shippedModels().filter((n) => !n.startsWith('classifier-')).join(', ')})` } as const;
export const SAMPLER = { type: 'choice', choices: SAMPLER_NAMES, default: 'ddim', arg: 'NAME', help: 'sampler' } as const;
export const SAMPLING_STEPS = {
  type: 'int', min: 1, max: 100000, arg: 'K', aliases: ['steps'],
  help: 'sampling steps (heun: 2K-1 network evaluations; at most the model\'s T)', defaultText: 'ddpm: T, ddim and euler 50, heun 25, dpm-solver 20',
} as const;
export const SAMPLING_BATCH = { type: 'int', min: 1, max: 4096, default: 64, arg: 'N', aliases: ['batch'], help: 'images per network evaluation' } as const;
/**
 * Classifier-free guidance weight w: out = (1 + w)·out(x, c) − w·out(x, ∅).
 * diffusers' guidance_scale s mixes u + s·(c − u), so s = w + 1.
 */
export const DEFAULT_GUIDANCE = 2;
export const GUIDANCE = {
  type: 'number', min: 0, max: 100, arg: 'W',
  help: `classifier-free guidance weight w (0 = plain conditional model; diffusers' guidance_scale = w + 1)`,
  defaultText: `${DEFAULT_GUIDANCE} with --class or --prompt`,
} as const;
export const BACKEND = { type: 'choice', choices: BACKEND_NAMES, arg: 'B', help: 'tfjs backend', defaultText: 'native if its addon is built (npm run build:native), else tensorflow if @tensorflow/tfjs-node is installed, else wasm' } as const;
export const DATA_DIR = { type: 'string', arg: 'DIR', aliases: ['data'], help: 'data folder: the fashion-mnist IDX files (default /usr/share/datasets/fashion-mnist), or the image folder' } as const;
export const WEIGHTS = { type: 'choice', choices: ['ema', 'model'], default: 'ema', arg: 'W', help: 'which weights: ema (what sampling uses) or model (the raw trained weights)' } as const;
export const OVERWRITE = { type: 'flag', help: 'replace what the output folder holds (a run, a model) instead of refusing' } as const;

/** Added to every command. */
const BUILTIN = {
  help: { type: 'flag', help: 'show this help' },
  version: { type: 'flag', help: 'print the diffuse-ts version' },
} as const satisfies OptionTable;

// ------------------------------------------------------------------ parsing

const warned = new Set<string>();

/** Warn once per process (old flag spellings). */
function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  process.stderr.write(`diffuse: warning: ${message}\n`);
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function suggestion(name: string, known: ReadonlyMap<string, string>): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known.keys()) {
    const dist = editDistance(name, k);
    if (dist < bestD) { best = k; bestD = dist; }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean --${known.get(best)}?)` : '';
}

function rangeText(s: IntOption | NumberOption): string {
  const lo = s.type === 'number' && (s.exclusive === 'min' || s.exclusive === 'both') ? '(' : '[';
  const hi = s.type === 'number' && (s.exclusive === 'max' || s.exclusive === 'both') ? ')' : ']';
  return s.type === 'int' ? `an integer in ${s.min}..${s.max}` : `a number in ${lo}${s.min}, ${s.max}${hi}`;
}

function parseNumberValue(flag: string, s: NumberOption | IntOption, raw: string): number {
  const v = raw.trim() === '' ? NaN : Number(raw);
  const lowOk = s.type === 'number' && (s.exclusive === 'min' || s.exclusive === 'both') ? v > s.min : v >= s.min;
  const highOk = s.type === 'number' && (s.exclusive === 'max' || s.exclusive === 'both') ? v < s.max : v <= s.max;
  if (!Number.isFinite(v) || (s.type === 'int' && !Number.isInteger(v)) || !lowOk || !highOk) {
    throw new DiffuseError(`--${flag} must be ${rangeText(s)}, got '${raw}'`);
  }
  return v;
}

function parseValue(flag: string, s: OptionSpec, raw: string | boolean): unknown {
  switch (s.type) {
    case 'flag':
      return raw === true;
    case 'int':
    case 'number':
      return parseNumberValue(flag, s, String(raw));
    case 'string':
      if (raw === '') throw new DiffuseError(`--${flag} needs a non-empty value`);
      return raw;
    case 'choice':
      if (!s.choices.includes(String(raw))) throw new DiffuseError(`--${flag} must be one of ${s.choices.join(', ')}; got '${String(raw)}'`);
      return raw;
    case 'int-list': {
      const text = String(raw).trim();
      if (text === 'none' || text === '') {
        if (s.allowNone === true) return [];
        throw new DiffuseError(`--${flag} needs at least one value`);
      }
      const parts = text.split(',').map((p) => p.trim());
      const nums = parts.map(Number);
      if (parts.length > s.maxLength || nums.some((v, i) => parts[i] === '' || !Number.isInteger(v) || v < s.min || v > s.max)) {
        throw new DiffuseError(`--${flag} must be 1..${s.maxLength} comma-separated integers in ${s.min}..${s.max}${s.allowNone === true ? " (or 'none')" : ''}, got '${text}'`);
      }
      return nums;
    }
    case 'out-file':
      checkOutputFile(String(raw), `--${flag}`, s.formats);
      return raw;
    case 'out-dir':
      checkOutputDir(String(raw), `--${flag}`);
      return raw;
    default: {
      const never: never = s;
      throw new DiffuseError(`unknown option type ${JSON.stringify(never)}`);
    }
  }
}

/**
 * util.parseArgs refuses `--steps -3` as ambiguous; a value that looks like
 * a number is a value, so it is joined (`--steps=-3`) and then validated.
 */
function joinNegativeValues(argv: readonly string[], valued: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && valued.has(a.slice(2)) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

export interface PositionalSpec {
  /** Placeholder names, in order (e.g. ['IMAGE']); the count is required exactly. */
  readonly names: readonly string[];
}

/**
 * Parse argv against a table: unknown options, missing values, repeated
 * options, values out of range and unusable output paths all throw a
 * DiffuseError naming the flag. `help`/`version` are always accepted.
 */
export function parseOptions<T extends OptionTable>(table: T, argv: readonly string[], program: string, positionals: PositionalSpec = { names: [] }): Parsed<T> & { help: boolean; version: boolean } {
  const all: OptionTable = { ...BUILTIN, ...table };
  const canonical = new Map<string, string>();
  const config: NonNullable<ParseArgsConfig['options']> = {};
  const valued = new Set<string>();
  for (const [name, s] of Object.entries(all)) {
    for (const n of [name, ...(s.aliases ?? [])]) {
      if (canonical.has(n)) throw new Error(`option table of ${program}: --${n} defined twice`);
      canonical.set(n, name);
      config[n] = { type: s.type === 'flag' ? 'boolean' : 'string', ...(n === 'help' ? { short: 'h' } : {}) };
      if (s.type !== 'flag') valued.add(n);
    }
  }
  let tokens: NonNullable<ReturnType<typeof parseArgs>['tokens']>;
  try {
    tokens = parseArgs({ args: joinNegativeValues(argv, valued), options: config, strict: true, allowPositionals: true, tokens: true }).tokens;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const m = /'(-[^' ]+)/.exec(err.message);
    const flag = m?.[1] ?? '';
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new DiffuseError(`unknown option ${flag} for ${program}${suggestion(flag.replace(/^-+/, ''), canonical)} (see ${program} --help)`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        throw new DiffuseError(err.message.includes('does not take an argument') ? `${flag} is a switch and takes no value` : `${flag} needs a value`);
      default:
        throw new DiffuseError(`${program}: ${err.message.split('\n')[0]}`);
    }
  }
  const raw = new Map<string, { value: string | boolean; as: string }>();
  const pos: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') { pos.push(t.value); continue; }
    if (t.kind !== 'option') continue;
    const name = canonical.get(t.name)!;
    const prev = raw.get(name);
    if (prev !== undefined) throw new DiffuseError(`--${name} is given twice${prev.as !== t.name ? ` (as --${prev.as} and --${t.name})` : ''}: give it once`);
    raw.set(name, { value: t.value ?? true, as: t.name });
  }
  const help = raw.has('help');
  const version = raw.has('version');
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  if (help || version) return { values: values as Values<T>, given: given as Set<keyof T & string>, positionals: pos, help, version };
  for (const [name, { value, as }] of raw) {
    if (as !== name) warnOnce(`${as}->${name}`, `--${as} is now --${name} (the old name still works)`);
    values[name] = parseValue(name, all[name]!, value);
    given.add(name);
  }
  for (const [name, s] of Object.entries(table)) {
    if (!(name in values)) values[name] = s.type === 'flag' ? false : s.default;
  }
  const want = positionals.names;
  if (pos.length !== want.length) {
    throw new DiffuseError(want.length === 0
      ? `${program} takes no arguments besides options, got '${pos.join(' ')}' (see ${program} --help)`
      : `${program} needs ${want.join(' ')}, got ${pos.length === 0 ? 'nothing' : `'${pos.join(' ')}'`} (see ${program} --help)`);
  }
  return { values: values as Values<T>, given: given as Set<keyof T & string>, positionals: pos, help, version };
}

/** The options part of --help, generated from the table. */
export function optionsHelp(table: OptionTable): string {
  const rows: [string, string][] = [];
  const all: OptionTable = { ...table, ...BUILTIN };
  for (const [name, s] of Object.entries(all)) {
    const left = `--${name}${name === 'help' ? ', -h' : ''}${s.type === 'flag' ? '' : ` ${s.arg ?? 'X'}`}`;
    const notes: string[] = [];
    if (s.type === 'int' || s.type === 'number') notes.push(s.type === 'int' ? `${s.min}..${s.max}` : rangeText(s).replace(/^a number in /, ''));
    if (s.type === 'choice') notes.push(s.choices.join(' | '));
    if (s.type === 'out-file') notes.push(s.formats.map((f) => `.${f === 'jpeg' ? 'jpg' : f}`).join(' or '));
    const d = s.defaultText ?? (s.type !== 'flag' && s.default !== undefined ? (Array.isArray(s.default) ? s.default.join(',') : String(s.default)) : undefined);
    if (d !== undefined) notes.push(`default ${d}`);
    if (s.aliases !== undefined && s.aliases.length > 0) notes.push(`was ${s.aliases.map((a) => `--${a}`).join(', ')}`);
    rows.push([left, `${s.help}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`]);
  }
  const w = Math.min(30, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(([l, r]) => (l.length + 2 > w ? `  ${l}\n  ${' '.repeat(w)}${r}` : `  ${l.padEnd(w)}${r}`)).join('\n');
}
