/**
 * Captioned image folders in diffusers' layout: metadata.jsonl (file_name +
 * text, extra columns ignored, nested folders), .txt sidecars as the
 * fallback, captions aligned with the loaded images, and one clear line for
 * each kind of bad input (not JSON, missing fields, missing image, duplicate,
 * a folder without captions where they are required).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { DiffuseError } from '../../src/errors.js';
import { loadImageFolder } from '../../src/data/folder.js';
import { datasetCaptions, loadDataset } from '../../src/data/index.js';

function png(v: number): Buffer {
  const p = new PNG({ width: 4, height: 4 });
  for (let i = 0; i < 16; i++) p.data.set([v, v, v, 255], i * 4);
  return PNG.sync.write(p);
}

/** cats/a.png, cats/b.png, dogs/c.png (gray levels 0, 100, 200), plus whatever `files` adds. */
function folder(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'captions-'));
  const all: Record<string, string | Buffer> = { 'cats/a.png': png(0), 'cats/b.png': png(100), 'dogs/c.png': png(200), ...files };
  for (const [name, body] of Object.entries(all)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), body);
  }
  return dir;
}

function withFolder(files: Record<string, string | Buffer>, body: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = folder(files);
  return Promise.resolve(body(dir)).finally(() => rmSync(dir, { recursive: true, force: true }));
}

const line = (o: unknown): string => JSON.stringify(o) + '\n';

/** Asserts a DiffuseError with a one-line message matching `re`. */
function oneLine(re: RegExp): (e: unknown) => boolean {
  return (e: unknown) => e instanceof DiffuseError && re.test(e.message) && !e.message.includes('\n');
}

test('metadata.jsonl (root and nested, extra columns, caption lists) and .txt sidecars caption the images in load order', () =>
  withFolder({
    'metadata.jsonl': line({ file_name: 'cats/a.png', text: 'a black cat', width: 4 }) + '\n' + line({ file_name: 'dogs/c.png', text: ['a white dog', 'a pale dog'] }),
    'cats/b.txt': 'a gray cat\n\nthe gray cat\n',
    'cats/a.txt': 'ignored: the metadata line wins',
  }, async (dir) => {
    const ds = await loadImageFolder(dir, { imageSize: 4, channels: 1, requireCaptions: true });
    assert.deepEqual(ds.captions, [['a black cat'], ['a gray cat', 'the gray cat'], ['a white dog', 'a pale dog']]);
    // the captions travel with their images: a is black, b gray, c white
    assert.deepEqual([0, 1, 2].map((i) => Math.round((ds.images[i * 16]! + 1) * 127.5)), [0, 100, 200]);
    assert.deepEqual(ds.labelNames, ['cats', 'dogs']); // subfolder labels are kept
    assert.deepEqual(datasetCaptions({ name: 'folder', dir }), ds.captions);
  }));

test('a nested metadata.jsonl names files relative to its own folder', () =>
  withFolder({ 'cats/metadata.jsonl': line({ file_name: 'a.png', text: 'cat a' }) + line({ file_name: 'b.png', text: 'cat b' }), 'dogs/c.txt': 'dog c' }, async (dir) => {
    const ds = await loadDataset({ name: 'folder', dir, imageSize: 4, requireCaptions: true });
    assert.deepEqual(ds.captions, [['cat a'], ['cat b'], ['dog c']]);
  }));

test('captions follow a limit and drop with an image skipped as undecodable', () =>
  withFolder({ 'cats/bad.png': 'not a png', 'metadata.jsonl': line({ file_name: 'cats/bad.png', text: 'broken' }) + line({ file_name: 'cats/a.png', text: 'a' }) + line({ file_name: 'cats/b.png', text: 'b' }) + line({ file_name: 'dogs/c.png', text: 'c' }) }, async (dir) => {
    await assert.rejects(loadImageFolder(dir, { imageSize: 4 }), oneLine(/bad\.png/));
    const ds = await loadImageFolder(dir, { imageSize: 4, skipBad: true, requireCaptions: true });
    assert.deepEqual(ds.captions, [['a'], ['b'], ['c']]);
    assert.equal(ds.skipped.length, 1);
    const two = await loadImageFolder(dir, { imageSize: 4, skipBad: true, limit: 2 });
    assert.equal(two.captions!.length, two.shape[0]);
  }));

test('captions are attached only when every image has one, and required ones name what is missing', () =>
  withFolder({ 'cats/a.txt': 'a cat' }, async (dir) => {
    const ds = await loadImageFolder(dir, { imageSize: 4 });
    assert.equal(ds.captions, undefined);
    await assert.rejects(loadImageFolder(dir, { imageSize: 4, requireCaptions: true }), oneLine(/2 of 3 images have no caption \(first: cats\/b\.png\); give each a line in metadata\.jsonl or a \.txt sidecar/));
    assert.throws(() => datasetCaptions({ name: 'folder', dir }), oneLine(/2 of 3 images have no caption/));
  }).then(() => withFolder({}, async (dir) => {
    await assert.rejects(loadImageFolder(dir, { imageSize: 4, requireCaptions: true }), oneLine(/no captions \(no metadata\.jsonl and no \.txt sidecars\)/));
  })));

test('malformed metadata.jsonl lines are one line naming the file and line number', async () => {
  const cases: [string, RegExp][] = [
    [line({ file_name: 'cats/a.png', text: 'ok' }) + '{"file_name": "cats/b.png", "text": \n', /metadata\.jsonl:2: not JSON \(.*\); each line of metadata\.jsonl is one \{"file_name": \.\.\., "text": \.\.\.\} object$/],
    ['["cats/a.png", "a cat"]\n', /metadata\.jsonl:1: not a JSON object/],
    [line({ text: 'no name' }), /metadata\.jsonl:1: has no "file_name" string/],
    [line({ file_name: 'cats/a.png', caption: 'wrong column' }), /metadata\.jsonl:1: has no "text" \(the caption of cats\/a\.png\)/],
    [line({ file_name: 'cats/a.png', text: 7 }), /metadata\.jsonl:1: "text" must be a caption string or a non-empty list of strings, got 7/],
    [line({ file_name: 'cats/a.png', text: [] }), /metadata\.jsonl:1: "text" must be/],
    [line({ file_name: 'cats/a.png', text: '?!' }), /metadata\.jsonl:1: caption '\?!' has no words/],
    [line({ file_name: 'cats/a.png', text: 'x' }) + '\n' + line({ file_name: 'cats/a.png', text: 'y' }), /metadata\.jsonl:3: 'cats\/a\.png' already has a caption \(.*metadata\.jsonl:1\)/],
    [line({ file_name: 'cats/zebra.png', text: 'z' }), /metadata\.jsonl:1: names 'cats\/zebra\.png', which does not exist/],
    [line({ file_name: 'notes.md', text: 'z' }), /metadata\.jsonl:1: 'notes\.md' is not a \.png, \.jpg or \.jpeg file/],
  ];
  for (const [body, re] of cases) {
    await withFolder({ 'metadata.jsonl': body }, async (dir) => {
      await assert.rejects(loadImageFolder(dir, { imageSize: 4 }), oneLine(re), re.source);
    });
  }
});

test('a listed but missing image is skipped and listed with skipBad', () =>
  withFolder({ 'metadata.jsonl': line({ file_name: 'cats/zebra.png', text: 'z' }) + line({ file_name: 'cats/a.png', text: 'a' }) + line({ file_name: 'cats/b.png', text: 'b' }) + line({ file_name: 'dogs/c.png', text: 'c' }) }, async (dir) => {
    const ds = await loadImageFolder(dir, { imageSize: 4, skipBad: true, requireCaptions: true });
    assert.equal(ds.shape[0], 3);
    assert.equal(ds.skipped.length, 1);
    assert.match(ds.skipped[0]!.reason, /names 'cats\/zebra\.png', which does not exist/);
  }));

test('an empty sidecar and a caption-less sidecar line are errors naming the file', () =>
  withFolder({ 'cats/a.txt': '\n  \n' }, async (dir) => {
    await assert.rejects(loadImageFolder(dir, { imageSize: 4 }), oneLine(/a\.txt: empty caption file/));
  }).then(() => withFolder({ 'cats/a.txt': 'fine\n\n***\n' }, async (dir) => {
    await assert.rejects(loadImageFolder(dir, { imageSize: 4 }), oneLine(/a\.txt:3: caption '\*\*\*' has no words/));
  })));
