/**
 * Careful file access, the one place that decides what may be read and what
 * may be replaced:
 *
 * - Reading: only regular files (a FIFO would hang the read, a device such
 *   as /dev/zero would be read until memory runs out, a folder is an error),
 *   opened non-blocking and checked with fstat on the open descriptor, and at
 *   most `maxBytes`.
 * - Writing: an output path given by the user must have an extension that
 *   names the format written, must not be a folder, a device, a FIFO or a
 *   symbolic link (a rename would replace the link or the device node
 *   itself), and its folder must exist and be writable. Checked before any
 *   work starts (the CLI does it while parsing flags).
 */
import { accessSync, closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { DiffuseError } from '../errors.js';

/** What a non-regular file is, in words. */
export function kindOf(st: Stats): string {
  if (st.isFile()) return 'a file';
  if (st.isDirectory()) return 'a folder';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function readError(file: string, what: string, e: unknown): DiffuseError {
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a folder' : (code ?? (e as Error).message);
  return new DiffuseError(`cannot read ${what} '${file}': ${why}`, { cause: e });
}

function checkReadable(st: Stats, file: string, what: string, maxBytes: number): void {
  if (!st.isFile()) throw new DiffuseError(`cannot read ${what} '${file}': it is ${kindOf(st)}, not a regular file`);
  if (st.size > maxBytes) throw new DiffuseError(`cannot read ${what} '${file}': ${st.size} bytes is more than the ${maxBytes}-byte limit for ${what}s`);
}

/** Open a regular file for reading without blocking on FIFOs; the caller closes it. */
export function openRegularSync(file: string, what: string, maxBytes = Number.MAX_SAFE_INTEGER): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw readError(file, what, e);
  }
  try {
    const st = fstatSync(fd);
    checkReadable(st, file, what, maxBytes);
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Read `length` bytes at `position` (fewer only if the file shrank: an error). */
export function readExactSync(fd: number, length: number, position: number, file: string, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let off = 0;
  while (off < length) {
    const n = readSync(fd, buf, off, length - off, position + off);
    if (n === 0) throw new DiffuseError(`cannot read ${what} '${file}': it ended after ${position + off} bytes (changed while reading?)`);
    off += n;
  }
  return buf;
}

/** A whole regular file (refusing FIFOs, devices, folders and files over maxBytes). */
export function readRegularFileSync(file: string, what: string, maxBytes = Number.MAX_SAFE_INTEGER): Buffer {
  const { fd, size } = openRegularSync(file, what, maxBytes);
  try {
    return readExactSync(fd, size, 0, file, what);
  } finally {
    closeSync(fd);
  }
}

/** Async `readRegularFileSync`. */
export async function readRegularFile(file: string, what: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Buffer> {
  let h;
  try {
    h = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw readError(file, what, e);
  }
  try {
    const st = await h.stat();
    checkReadable(st, file, what, maxBytes);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await h.read(buf, off, st.size - off, off);
      if (bytesRead === 0) throw new DiffuseError(`cannot read ${what} '${file}': it ended after ${off} bytes (changed while reading?)`);
      off += bytesRead;
    }
    return buf;
  } finally {
    await h.close();
  }
}

// ------------------------------------------------------------------ writing

export type OutputFormat = 'png' | 'jpeg' | 'gif' | 'onnx';

const EXTENSIONS: Record<OutputFormat, readonly string[]> = {
  png: ['.png'],
  jpeg: ['.jpg', '.jpeg'],
  gif: ['.gif'],
  onnx: ['.onnx'],
};

/** The format a file name asks for, or undefined. */
export function formatOfPath(path: string): OutputFormat | undefined {
  const ext = extname(path).toLowerCase();
  for (const [f, exts] of Object.entries(EXTENSIONS) as [OutputFormat, readonly string[]][]) if (exts.includes(ext)) return f;
  return undefined;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DiffuseError(`cannot inspect '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

function checkWritableFolder(dir: string, label: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch {
    throw new DiffuseError(`${label}: folder '${dir}' does not exist`);
  }
  if (!st.isDirectory()) throw new DiffuseError(`${label}: '${dir}' is ${kindOf(st)}, not a folder`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new DiffuseError(`${label}: folder '${dir}' is not writable`);
  }
}

/**
 * Throw unless `path` may be replaced by a new regular file: absent, or a
 * regular file (never a symbolic link, device, FIFO, socket or folder).
 */
export function checkReplaceable(path: string, label: string): void {
  const st = lstatOrUndefined(path);
  if (st !== undefined && !st.isFile()) {
    throw new DiffuseError(`${label} '${path}' is ${kindOf(st)}: refusing to replace it with a file${st.isSymbolicLink() ? ' (give the path of the file itself)' : ''}`);
  }
}

/**
 * Check an output file before any work: the extension names one of `formats`,
 * the path is replaceable (checkReplaceable) and its folder exists and is
 * writable. Returns the format.
 */
export function checkOutputFile(path: string, label: string, formats: readonly OutputFormat[]): OutputFormat {
  const f = formatOfPath(path);
  if (f === undefined || !formats.includes(f)) {
    const allowed = formats.flatMap((x) => EXTENSIONS[x]).join(', ');
    throw new DiffuseError(`${label} '${path}': the file name must end in ${allowed} (the format written)`);
  }
  checkReplaceable(path, label);
  checkWritableFolder(dirname(resolve(path)), label);
  return f;
}

/** Check an output folder before any work: a folder (or absent, with a writable existing ancestor), never a file. */
export function checkOutputDir(path: string, label: string): void {
  let p = resolve(path);
  const st = lstatOrUndefined(p);
  if (st !== undefined) {
    const target = st.isSymbolicLink() ? statSync(p, { throwIfNoEntry: false }) : st;
    if (target === undefined || !target.isDirectory()) throw new DiffuseError(`${label} '${path}' is ${kindOf(target ?? st)}, not a folder`);
    checkWritableFolder(p, label);
    return;
  }
  while (lstatOrUndefined(p) === undefined && dirname(p) !== p) p = dirname(p);
  checkWritableFolder(p, label);
}
