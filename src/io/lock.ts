/**
 * One writer per folder: `<dir>/.lock`, created atomically (O_EXCL) and
 * holding the owner's pid, host name, start time and command. A second run
 * on the same folder gets one line naming the owner. A lock left by a process
 * that died (same host, pid no longer running) is taken over with a warning:
 * it is first renamed away (only one contender can win that rename), then
 * the lock is created again with O_EXCL. The lock is removed when released
 * and, failing that, when the process exits (also on process.exit).
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DiffuseError } from '../errors.js';
import { pidAlive } from './folder-swap.js';

export const LOCK_FILE = '.lock';

interface LockInfo { pid: number; host: string; started: string; command: string }

export interface FolderLock {
  readonly file: string;
  /** Release the lock; the folder is removed too if the lock created it and it is still empty. */
  release(): void;
}

/** A lock file that does not parse is treated as stale after this long (a crash between create and write). */
const UNREADABLE_STALE_MS = 60_000;

function readInfo(file: string): LockInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string') return { pid: v.pid, host: v.host, started: String(v.started ?? '?'), command: String(v.command ?? '?') };
  } catch {
    // unreadable
  }
  return undefined;
}

function tryCreate(file: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DiffuseError(`cannot create lock file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  try {
    writeSync(fd, JSON.stringify(info) + '\n');
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Take `<dir>/.lock` (creating dir). `what` describes the run for the other
 * process's error (e.g. 'training run'); `warn` receives the one-line notice
 * when a stale lock is taken over.
 */
export function lockFolder(dir: string, what: string, warn: (msg: string) => void = () => {}): FolderLock {
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, LOCK_FILE);
  const me: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(file, me)) return holding(file, created ? dir : undefined);
    let other = readInfo(file);
    // another process has just created the file and is writing its pid: give it a moment
    for (let wait = 0; other === undefined && wait < 25 && existsSync(file); wait++) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      other = readInfo(file);
    }
    let stale: string | undefined;
    if (other === undefined) {
      let age = 0;
      try { age = Date.now() - statSync(file).mtimeMs; } catch { continue; /* gone meanwhile: retry */ }
      if (age < UNREADABLE_STALE_MS) throw new DiffuseError(`${dir} is in use by another ${what} (its lock ${file} is still being written); if no other run uses it, delete ${file}`);
      stale = `an unreadable lock ${Math.round(age / 1000)} s old`;
    } else if (other.host !== me.host) {
      throw new DiffuseError(`${dir} is locked by a ${what} on host ${other.host} (pid ${other.pid}, since ${other.started}); if it is no longer running, delete ${file}`);
    } else if (pidAlive(other.pid)) {
      throw new DiffuseError(`${dir} is in use by another ${what} (pid ${other.pid}, since ${other.started}): one run per folder at a time`);
    } else {
      stale = `the lock of pid ${other.pid}, which is no longer running (since ${other.started})`;
    }
    const aside = `${file}.stale-${process.pid}`;
    try {
      renameSync(file, aside);
    } catch {
      continue; // another process took it over first: try again
    }
    rmSync(aside, { force: true });
    warn(`taking over ${stale} in ${dir}`);
  }
  throw new DiffuseError(`${dir}: could not take the lock ${file} (other processes keep taking it)`);
}

function holding(file: string, createdDir: string | undefined): FolderLock {
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    if (readInfo(file)?.pid === process.pid) {
      try { unlinkSync(file); } catch { /* already gone */ }
    }
    if (createdDir !== undefined) {
      try { rmdirSync(createdDir); } catch { /* not empty: the run wrote something */ }
    }
  };
  process.on('exit', release);
  return { file, release };
}
