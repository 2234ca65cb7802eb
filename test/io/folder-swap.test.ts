/**
 * io/folder-swap.ts: a save replaces the owned files only, and a crash at
 * either dangerous moment (after the user's entries were carried into the
 * temp folder, or between the two renames) loses nothing the user made.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanSiblings, replaceFolder, restoreFolder } from '../../src/io/folder-swap.js';

const OWNED = ['a.bin', 'b.json'] as const;
const DEAD_PID = 2 ** 22 + 1; // above Linux's pid_max: never running

function fresh(): { root: string; dir: string } {
  const root = mkdtempSync(join(tmpdir(), 'diffuse-swap-'));
  return { root, dir: join(root, 'ck') };
}

function writeOwned(into: string, version: string): void {
  writeFileSync(join(into, 'a.bin'), `a${version}`);
  writeFileSync(join(into, 'b.json'), `b${version}`);
}

test('replaceFolder replaces the owned files and keeps everything else; no siblings left', async () => {
  const { root, dir } = fresh();
  try {
    await replaceFolder(dir, OWNED, (t) => writeOwned(t, '1'), 'test');
    writeFileSync(join(dir, 'NOTES.md'), 'mine');
    mkdirSync(join(dir, 'plots'));
    writeFileSync(join(dir, 'plots', 'p.svg'), '<svg/>');
    const notesIno = statSync(join(dir, 'NOTES.md')).ino;
    await replaceFolder(dir, OWNED, (t) => writeOwned(t, '2'), 'test');
    assert.equal(readFileSync(join(dir, 'a.bin'), 'utf8'), 'a2');
    assert.equal(readFileSync(join(dir, 'NOTES.md'), 'utf8'), 'mine');
    assert.equal(statSync(join(dir, 'NOTES.md')).ino, notesIno, 'the same file (hard link), not a copy');
    assert.equal(readFileSync(join(dir, 'plots', 'p.svg'), 'utf8'), '<svg/>');
    assert.deepEqual(readdirSync(root), ['ck']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('crash after the user\'s folder was carried into the temp folder: the next save brings it back', async () => {
  const { root, dir } = fresh();
  try {
    mkdirSync(dir);
    writeOwned(dir, '1');
    writeFileSync(join(dir, 'NOTES.md'), 'mine');
    // what a save of a process that died left: tmp complete, NOTES linked, plots/ moved in
    const tmp = `${dir}.tmp-${DEAD_PID}`;
    mkdirSync(join(tmp, 'plots'), { recursive: true });
    writeOwned(tmp, '2');
    linkSync(join(dir, 'NOTES.md'), join(tmp, 'NOTES.md'));
    writeFileSync(join(tmp, 'plots', 'p.svg'), '<svg/>');
    await replaceFolder(dir, OWNED, (t) => writeOwned(t, '3'), 'test');
    assert.equal(readFileSync(join(dir, 'a.bin'), 'utf8'), 'a3');
    assert.equal(readFileSync(join(dir, 'plots', 'p.svg'), 'utf8'), '<svg/>');
    assert.equal(readFileSync(join(dir, 'NOTES.md'), 'utf8'), 'mine');
    assert.deepEqual(readdirSync(root), ['ck']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('crash between the two renames: the restored folder gets the newest owned files and all of the user\'s', () => {
  const { root, dir } = fresh();
  try {
    const old = `${dir}.old-${DEAD_PID}-1`;
    const tmp = `${dir}.tmp-${DEAD_PID}`;
    mkdirSync(old);
    writeOwned(old, '1');
    writeFileSync(join(old, 'NOTES.md'), 'mine');
    mkdirSync(join(tmp, 'plots'), { recursive: true });
    writeOwned(tmp, '2');
    writeFileSync(join(tmp, 'plots', 'p.svg'), '<svg/>');
    writeFileSync(join(old, 'only-in-old.txt'), 'kept');
    assert.equal(restoreFolder(dir, tmp, OWNED), dir);
    assert.equal(readFileSync(join(dir, 'a.bin'), 'utf8'), 'a2');
    assert.equal(readFileSync(join(dir, 'NOTES.md'), 'utf8'), 'mine');
    assert.equal(readFileSync(join(dir, 'only-in-old.txt'), 'utf8'), 'kept');
    assert.ok(existsSync(join(dir, 'plots', 'p.svg')));
    cleanSiblings(dir, OWNED);
    assert.deepEqual(readdirSync(root), ['ck']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
