/**
 * Replace the files a folder owns, atomically and crash-safely, and nothing
 * else: a checkpoint or classifier folder may also hold the user's notes, a
 * README, a subfolder, a lock file; those survive every save.
 *
 *   1. `write(tmp)` fills a fresh sibling `<dir>.tmp-<pid>` with the owned
 *      files (each fsynced by the writer); it is complete when write returns.
 *   2. Everything else in `<dir>` is carried into tmp: files as hard links
 *      (the same data under a second name, so `<dir>` still has them),
 *      folders by rename (atomic, one at a time).
 *   3. The swap: `<dir>` → `<dir>.old-<pid>-<time>`, tmp → `<dir>`, then the
 *      old folder is removed.
 *
 * A crash at any moment leaves a complete folder: `<dir>` itself, or
 * (between the two renames of 3) complete siblings, which the loaders find
 * (`siblingFolders`) and `restoreFolder` renames back. Nothing the user made
 * is lost either: before a stale sibling is deleted, `rescueForeign` moves
 * every entry it holds that `<dir>` lacks (a folder carried in step 2 just
 * before a crash) back into `<dir>`.
 */
import { existsSync, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, closeSync, readdirSync, renameSync, rmSync, copyFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DiffuseError } from '../errors.js';

/** fsync a folder (its entries), where the platform allows it. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not supported on every platform/filesystem; the renames are still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The `<dir>.tmp-*` or `<dir>.old-*` siblings left by saves. */
export function siblingFolders(dir: string, kind: 'tmp' | 'old'): string[] {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.${kind}-`;
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(prefix)).map((n) => join(parent, n));
}

/** True when a process with this id exists (on this machine). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Move every entry of `from` that is not owned and that `into` lacks into `into`. */
export function rescueForeign(from: string, into: string, owned: readonly string[]): void {
  let names: string[];
  try {
    names = readdirSync(from);
  } catch {
    return;
  }
  for (const name of names) {
    if (owned.includes(name) || existsSync(join(into, name))) continue;
    try {
      renameSync(join(from, name), join(into, name));
    } catch {
      // left where it is; the sibling is then kept (see removeSibling)
    }
  }
}

/** Delete a stale sibling after rescuing what is not ours; keep it if something could not be moved. */
function removeSibling(sib: string, dir: string, owned: readonly string[]): void {
  if (existsSync(dir)) rescueForeign(sib, dir, owned);
  let left: string[] = [];
  try {
    left = readdirSync(sib).filter((n) => !owned.includes(n) && !existsSync(join(dir, n)));
  } catch {
    return;
  }
  if (left.length === 0) rmSync(sib, { recursive: true, force: true });
}

/** Remove the siblings of crashed saves (tmp of dead processes, any old), rescuing foreign entries first. */
export function cleanSiblings(dir: string, owned: readonly string[]): void {
  for (const t of siblingFolders(dir, 'tmp')) {
    const pid = Number(t.slice(t.lastIndexOf('-') + 1));
    if (Number.isInteger(pid) && (pid === process.pid || !pidAlive(pid))) removeSibling(t, dir, owned);
  }
  for (const o of siblingFolders(dir, 'old')) removeSibling(o, dir, owned);
}

/**
 * After a crash between the two renames, `<dir>` is missing: rename the
 * chosen complete sibling into place and bring back the foreign entries the
 * others hold. Returns the folder to read (`dir`, or `best` if renaming failed).
 */
export function restoreFolder(dir: string, best: string, owned: readonly string[]): string {
  try {
    renameSync(best, dir);
    fsyncDir(dirname(dir));
  } catch {
    return best;
  }
  for (const s of [...siblingFolders(dir, 'tmp'), ...siblingFolders(dir, 'old')]) rescueForeign(s, dir, owned);
  return dir;
}

function carryForeign(dir: string, tmp: string, owned: readonly string[]): void {
  for (const name of readdirSync(dir)) {
    if (owned.includes(name)) continue;
    const from = join(dir, name);
    const to = join(tmp, name);
    if (lstatSync(from).isDirectory()) {
      renameSync(from, to);
    } else {
      try {
        linkSync(from, to);
      } catch {
        copyFileSync(from, to); // filesystems without hard links
      }
    }
  }
}

/**
 * Replace the `owned` files of `dir` atomically (see the module comment);
 * `write(tmp)` writes them into an empty folder. `label` names the folder in errors.
 */
export async function replaceFolder(dir: string, owned: readonly string[], write: (tmp: string) => void | Promise<void>, label: string): Promise<void> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  cleanSiblings(dir, owned);
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    await write(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof DiffuseError) throw e;
    throw new DiffuseError(`${label}: cannot write ${tmp} (${(e as Error).message})`, { cause: e });
  }
  let old: string | undefined;
  try {
    if (existsSync(dir)) {
      carryForeign(dir, tmp, owned);
      fsyncDir(tmp);
      old = `${dir}.old-${process.pid}-${Date.now()}`;
      renameSync(dir, old);
    }
    renameSync(tmp, dir);
  } catch (e) {
    if (old !== undefined && !existsSync(dir)) {
      try { renameSync(old, dir); } catch { /* the loaders recover from the siblings */ }
    }
    if (existsSync(dir)) rescueForeign(tmp, dir, owned);
    throw new DiffuseError(`${label}: cannot move ${tmp} into place as ${dir} (${(e as Error).message})`, { cause: e });
  }
  fsyncDir(parent);
  if (old !== undefined) removeSibling(old, dir, owned);
}
