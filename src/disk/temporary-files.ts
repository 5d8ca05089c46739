import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DiskError, describeError, systemCode } from '../core/errors.ts';
import { describeFileKind } from './file-kind.ts';

/**
 * Temporary files beside a file the sidecar owns, in a directory other containers of the pod may write to: names
 * nobody can predict, created exclusively, never through a link; a start-up probe that uses them; and the removal
 * of the ones a killed process left behind.
 */

/** `.<name>.<16 hex>.tmp` beside `path`: 64 random bits, so another container cannot plant something there first. */
export function temporaryPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
}

/**
 * Create `path` as a new file for writing: O_EXCL fails on anything already there (a planted link included, which
 * O_NOFOLLOW refuses again), and the mode is set on the handle afterwards so that the umask does not narrow it.
 */
export async function createExclusive(path: string, mode: number): Promise<FileHandle> {
  const handle = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, mode);
  try {
    await handle.chmod(mode);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw error;
  }
  return handle;
}

/**
 * Fail at start, not at the first refresh, when `path` cannot be written: its directory must exist (it may be
 * reached through links) and accept a new file; the path itself must not be a directory (`unusable_directory`),
 * nor a link or another non-regular file (`refused_link`). Leaves nothing behind.
 */
export async function probeJwtPath(path: string): Promise<void> {
  const directory = dirname(path);
  const info = await stat(directory).catch((error: unknown) => {
    throw new DiskError('unusable_directory', path, `its directory ${directory} is not usable: ${describeError(error)}`, error);
  });
  if (!info.isDirectory()) throw new DiskError('unusable_directory', path, `${directory} is not a directory`);
  const existing = await lstat(path).catch((error: unknown) => {
    if (systemCode(error) === 'ENOENT') return undefined;
    throw new DiskError('unusable_directory', path, `cannot be examined: ${describeError(error)}`, error);
  });
  if (existing?.isDirectory() === true) throw new DiskError('unusable_directory', path, 'is a directory');
  if (existing !== undefined && !existing.isFile()) {
    throw new DiskError('refused_link', path, `is ${describeFileKind(existing)}; the sidecar never writes through one (remove it)`);
  }
  const probe = temporaryPathFor(path);
  let created = false;
  try {
    const handle = await createExclusive(probe, 0o600);
    created = true;
    await handle.close();
    await unlink(probe);
  } catch (error) {
    if (created) await unlink(probe).catch(() => undefined);
    throw new DiskError('unusable_directory', path, `cannot create files in ${directory}: ${describeError(error)}`, error);
  }
}

export interface CleanupOptions {
  /**
   * Leftovers younger than this (or stamped further than this in the future: a clock step) are kept: they may be
   * another live process's write in flight (two sidecars may share a JWT file). Default 10 s.
   */
  readonly minAgeMs?: number;
  /** Wall-clock now, in ms; default Date.now(). */
  readonly nowMs?: number;
}

export const DEFAULT_CLEANUP_MIN_AGE_MS = 10_000;

/**
 * Remove the temporary files a killed process left beside `path`: ours (`.<name>.<16 hex>.tmp`), the probe files of
 * earlier versions (`.<name>.probe-<pid>`) and write-file-atomic's (`<name>.<digits>`). Only regular files (lstat:
 * a link is never followed, nor removed) older than `minAgeMs`. Never throws; returns the names removed.
 */
export async function removeStaleTemporaryFiles(path: string, options: CleanupOptions = {}): Promise<string[]> {
  const directory = dirname(path);
  const minAgeMs = options.minAgeMs ?? DEFAULT_CLEANUP_MIN_AGE_MS;
  const nowMs = options.nowMs ?? Date.now();
  const patterns = leftoverPatterns(basename(path));
  const names = await readdir(directory).catch(() => []);
  const removed: string[] = [];
  for (const name of names.filter((candidate) => patterns.some((pattern) => pattern.test(candidate)))) {
    const candidate = join(directory, name);
    const info = await lstat(candidate).catch(() => undefined);
    if (info?.isFile() !== true || Math.abs(nowMs - info.mtimeMs) < minAgeMs) continue;
    if (await unlink(candidate).then(() => true, () => false)) removed.push(name);
  }
  return removed;
}

function leftoverPatterns(name: string): RegExp[] {
  const literal = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [new RegExp(`^\\.${literal}\\.[0-9a-f]{16}\\.tmp$`), new RegExp(`^\\.${literal}\\.probe-\\d+$`), new RegExp(`^${literal}\\.\\d{1,10}$`)];
}
