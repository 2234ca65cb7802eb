/**
 * Atomic file writes: write a temporary file in the same directory, then
 * rename it over the target (rename is atomic within one filesystem), so a
 * reader never sees a half-written file and a crash leaves the old one intact.
 */
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DiffuseError } from '../errors.js';

export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    const msg = err instanceof Error ? err.message : String(err);
    throw new DiffuseError(`cannot write '${path}': ${msg}`, { cause: err });
  }
}
