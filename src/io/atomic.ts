/**
 * Atomic file writes: write a temporary file in the same directory, then
 * rename it over the target (rename is atomic within one filesystem), so a
 * reader never sees a half-written file and a crash leaves the old one intact.
 * The target must be absent or a regular file: a rename would replace a
 * symbolic link, a device node or a FIFO itself (io/files.ts).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DiffuseError } from '../errors.js';
import { checkReplaceable } from './files.js';

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

function writeError(path: string, err: unknown): DiffuseError {
  if (err instanceof DiffuseError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new DiffuseError(`cannot write '${path}': ${msg}`, { cause: err });
}

export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  checkReplaceable(path, 'output');
  const tmp = tempName(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw writeError(path, err);
  }
}

/** Write a whole file and fsync it (not atomic by itself: see writeFileAtomicSync, io/folder-swap.ts). */
export function writeFileSynced(file: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = openSync(file, 'w');
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `writeFileAtomic`, synchronous and fsynced (the data is on disk before the rename makes it visible). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  checkReplaceable(path, 'output');
  const tmp = tempName(path);
  try {
    writeFileSynced(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw writeError(path, err);
  }
}
