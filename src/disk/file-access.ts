import { lstat, readFile } from 'node:fs/promises';
import { DiskError, systemCode } from '../core/errors.ts';
import { writeFileAtomically } from './jwt-file.ts';

/** The three file operations the state store and the sink need, behind one seam so tests can run on memory. */
export interface FileAccess {
  /** The file's text, or undefined when it does not exist. Never follows a link; refuses more than `maxBytes`. */
  read(path: string, maxBytes: number): Promise<string | undefined>;
  /** Replace the file atomically: readers see the old bytes or the new, never a mix; every byte verified. */
  write(path: string, text: string, mode: number): Promise<void>;
  /** Run `fn` holding the exclusive lock that guards `path` (across processes sharing the directory). */
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

export const diskFiles: FileAccess = {
  async read(path, maxBytes) {
    const info = await lstat(path).catch((error: unknown) => {
      if (systemCode(error) === 'ENOENT') return undefined;
      throw new DiskError('unreadable', path, 'cannot be examined', error);
    });
    if (info === undefined) return undefined;
    if (!info.isFile()) throw new DiskError('refused_link', path, 'is not a regular file (a link or something else); not read');
    if (info.size > maxBytes) throw new DiskError('unreadable', path, `is larger than ${String(maxBytes)} bytes; not read`);
    return readFile(path, 'utf8');
  },
  write: (path, text, mode) => writeFileAtomically(path, text, mode),
  withLock: serialised(),
  async version(path) {
    const info = await lstat(path).catch(() => undefined);
    return info === undefined ? undefined : { dev: info.dev, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs };
  },
};

/** One lock per path inside this process. */
function serialised(): <T>(path: string, fn: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<unknown>>();
  return async <T>(path: string, fn: () => Promise<T>): Promise<T> => {
    const previous = tails.get(path) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(fn);
    tails.set(path, run);
    try {
      return await run;
    } finally {
      if (tails.get(path) === run) tails.delete(path);
    }
  };
}
