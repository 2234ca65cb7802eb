/**
 * The option tables (src/cli/options.ts): every command answers -h/--help and
 * --version, its help lists every option of its table, old spellings work and
 * warn once, values are validated against the table's ranges.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/cli.js';
import { optionsHelp, parseOptions } from '../../src/cli/options.js';
import { DiffuseError } from '../../src/errors.js';
import { MAIN, ROOT } from './fixtures.js';
import { execFileSync } from 'node:child_process';

const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('every command: -h and --help print its usage and every option of its table; --version the package version', async () => {
  for (const [name, entry] of Object.entries(COMMANDS)) {
    const mod = (await entry.load()) as unknown as { command: { help(): string }; OPTIONS: Record<string, { aliases?: readonly string[] }> };
    const help = mod.command.help();
    assert.match(help, new RegExp(`^usage: diffuse ${name} `));
    for (const [opt, spec] of Object.entries(mod.OPTIONS)) {
      assert.ok(help.includes(`--${opt}`), `${name} --help lists --${opt}`);
      for (const a of spec.aliases ?? []) assert.ok(help.includes(`was --${a}`), `${name} --help names the old spelling --${a}`);
    }
    for (const flag of ['--help', '-h', '--version']) {
      const p = parseOptions(mod.OPTIONS as never, [flag], name);
      assert.ok(flag === '--version' ? p.version : p.help, `${name} ${flag}`);
    }
  }
  // the executable (a light command, so this stays fast)
  const help = (await COMMANDS['noise']!.load()).command.help();
  for (const flag of ['--help', '-h']) assert.equal(execFileSync(process.execPath, [MAIN, 'noise', flag], { encoding: 'utf8' }), `${help}\n`);
  assert.equal(execFileSync(process.execPath, [MAIN, 'noise', '--version'], { encoding: 'utf8' }), `diffuse-ts ${version}\n`);
  assert.equal(execFileSync(process.execPath, [MAIN, '--version'], { encoding: 'utf8' }), `diffuse-ts ${version}\n`);
});

test('parseOptions: types, ranges, defaults, given, aliases (one warning per process), repeated and unknown options', () => {
  const table = {
    'train-steps': { type: 'int', min: 1, max: 10, default: 3, aliases: ['steps'], help: 'steps' },
    lr: { type: 'number', min: 0, max: 1, exclusive: 'min', help: 'rate' },
    mode: { type: 'choice', choices: ['a', 'b'], default: 'a', help: 'mode' },
    list: { type: 'int-list', min: 1, max: 9, maxLength: 3, allowNone: true, help: 'list' },
    fast: { type: 'flag', help: 'fast' },
  } as const;
  const d = parseOptions(table, [], 'prog');
  assert.deepEqual({ ...d.values }, { 'train-steps': 3, lr: undefined, mode: 'a', list: undefined, fast: false });
  assert.equal(d.given.size, 0);
  const ew = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try {
    const p = parseOptions(table, ['--steps', '7', '--lr', '0.5', '--mode=b', '--list', '1,2', '--fast'], 'prog');
    assert.deepEqual({ ...p.values }, { 'train-steps': 7, lr: 0.5, mode: 'b', list: [1, 2], fast: true });
    assert.deepEqual([...p.given].sort(), ['fast', 'list', 'lr', 'mode', 'train-steps']);
    parseOptions(table, ['--steps', '2'], 'prog');
  } finally {
    process.stderr.write = ew;
  }
  assert.equal(err, 'diffuse: warning: --steps is now --train-steps (the old name still works)\n', 'warned once');
  assert.deepEqual(parseOptions(table, ['--list', 'none'], 'prog').values.list, []);
  const bad: [string[], RegExp][] = [
    [['--train-steps', '0'], /--train-steps must be an integer in 1\.\.10, got '0'/],
    [['--train-steps', '2.5'], /--train-steps must be an integer/],
    [['--train-steps', '-4'], /got '-4'/],
    [['--train-steps', ''], /--train-steps must be an integer/],
    [['--lr', '0'], /--lr must be a number in \(0, 1\], got '0'/],
    [['--lr', 'NaN'], /--lr must be a number/],
    [['--mode', 'c'], /--mode must be one of a, b; got 'c'/],
    [['--list', '1,x'], /--list must be 1\.\.3 comma-separated integers in 1\.\.9 \(or 'none'\)/],
    [['--list', '1,2,3,4'], /--list must be 1\.\.3/],
    [['--fast=yes'], /--fast is a switch and takes no value/],
    [['--train-steps'], /--train-steps needs a value/],
    [['--steps', '2', '--train-steps', '3'], /--train-steps is given twice \(as --steps and --train-steps\)/],
    [['--mdoe', 'a'], /unknown option --mdoe for prog \(did you mean --mode\?\)/],
    [['extra'], /prog takes no arguments besides options, got 'extra'/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseOptions(table, argv, 'prog'), (e: unknown) => e instanceof DiffuseError && re.test(e.message), argv.join(' '));
});

test('the help text comes from the table: range, choices, default, old spelling', () => {
  const h = optionsHelp({
    n: { type: 'int', min: 1, max: 9, default: 4, arg: 'N', help: 'how many' },
    sampler: { type: 'choice', choices: ['x', 'y'], default: 'y', help: 'which', aliases: ['s'] },
  });
  assert.match(h, /--n N +how many \(1\.\.9; default 4\)/);
  assert.match(h, /--sampler X +which \(x \| y; default y; was --s\)/);
  assert.match(h, /--help, -h +show this help/);
});
