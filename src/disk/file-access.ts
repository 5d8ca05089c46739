import { lstat } from 'node:fs/promises';
import { DiskError } from '../core/errors.ts';
import { writeFileAtomically } from './atomic-write.ts';
import { isMissing, readBoundedFile } from './bounded-read.ts';
import { withFileLock } from './file-lock.ts';

/** The file operations the state store and the sink need, behind one seam so tests can run them on memory. */
export interface FileAccess {
  /** The file's text, or undefined when it does not exist. Never follows a link; refuses more than `maxBytes`. */
  read(path: string, maxBytes: number): Promise<string | undefined>;
  /** Replace the file atomically (readers see the old bytes or the new), every byte verified; what was installed. */
  write(path: string, text: string, mode: number): Promise<FileVersion>;
  /** Run `fn` holding the exclusive lock that guards `path`, across the processes sharing the directory. */
  withLock<T>(path: string, fn: () => Promise<T>): Promise<T>;
  /** What identifies the file's current version (without following a link), or undefined when it is gone. */
  version(path: string): Promise<FileVersion | undefined>;
}

/** Enough to tell that a file is not the one we wrote: another inode, another size or another mtime. */
export interface FileVersion {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** The lock beside a file: `<file>.lock` (start-up cleanup knows the name). */
export function lockPathFor(path: string): string {
  return `${path}.lock`;
}

export const diskFiles: FileAccess = {
  async read(path, maxBytes) {
    try {
      const bytes = await readBoundedFile(path, maxBytes, { followLinks: false });
      if (bytes.length > maxBytes) throw new DiskError('unreadable', path, `is larger than ${String(maxBytes)} bytes; not read`);
      return bytes.toString('utf8');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  },
  write: (path, text, mode) => writeFileAtomically(path, text, mode),
  // Held for milliseconds (a read and a write): a lock older than 2 s was left by a killed process, and a restart
  // should not wait longer than that to take it over.
  withLock: (path, fn) => withFileLock(lockPathFor(path), fn, { staleMs: 2_000 }),
  async version(path) {
    const info = await lstat(path).catch(() => undefined);
    return info === undefined ? undefined : { dev: info.dev, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs };
  },
};
