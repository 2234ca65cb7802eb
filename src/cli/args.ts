import { DiffuseError } from '../errors.js';

/** Parsed command line: positional arguments and `--flag value` / `--flag` options. */
export interface ParsedArgs {
  readonly positional: string[];
  readonly flags: Map<string, string | true>;
}

/** Split argv into positionals and flags (`--k v`, `--k=v`, bare `--k` = true). */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const body = a.slice(2);
      const eq = body.indexOf('=');
      if (eq >= 0) {
        flags.set(body.slice(0, eq), body.slice(eq + 1));
      } else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) {
          flags.set(body, next);
          i++;
        } else {
          flags.set(body, true);
        }
      }
    } else {
      positional.push(a);
    }
  }
  return { positional, flags };
}

/** Typed access to flags, with errors that name the flag and the bad value. */
export class Flags {
  private readonly used = new Set<string>();
  constructor(private readonly args: ParsedArgs) {}

  string(name: string): string | undefined;
  string(name: string, fallback: string): string;
  string(name: string, fallback?: string): string | undefined {
    this.used.add(name);
    const v = this.args.flags.get(name);
    if (v === undefined) return fallback;
    if (v === true) throw new DiffuseError(`--${name} needs a value`);
    return v;
  }

  number(name: string): number | undefined;
  number(name: string, fallback: number): number;
  number(name: string, fallback?: number): number | undefined {
    const s = this.string(name);
    if (s === undefined) return fallback;
    const n = Number(s);
    if (!Number.isFinite(n)) throw new DiffuseError(`--${name} must be a number, got '${s}'`);
    return n;
  }

  int(name: string): number | undefined;
  int(name: string, fallback: number): number;
  int(name: string, fallback?: number): number | undefined {
    const n = fallback === undefined ? this.number(name) : this.number(name, fallback);
    if (n === undefined) return undefined;
    if (!Number.isInteger(n)) throw new DiffuseError(`--${name} must be an integer, got ${n}`);
    return n;
  }

  bool(name: string): boolean {
    this.used.add(name);
    const v = this.args.flags.get(name);
    if (v === undefined) return false;
    if (v === true || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new DiffuseError(`--${name} is a switch; got value '${v}'`);
  }

  /** One of a fixed set of choices; the error lists the allowed ones. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const s = this.string(name, fallback);
    if (!(choices as readonly string[]).includes(s)) {
      throw new DiffuseError(`--${name} must be one of ${choices.join(', ')}; got '${s}'`);
    }
    return s as T;
  }

  /** Throw if any flag was given that the command never asked about (typos). */
  rejectUnknown(): void {
    for (const k of this.args.flags.keys()) {
      if (!this.used.has(k)) throw new DiffuseError(`unknown option --${k}`);
    }
  }
}
