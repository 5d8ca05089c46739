import { constants, unlinkSync } from 'node:fs';
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DiskError, describeError, systemCode } from '../core/errors.ts';
import { describeFileKind } from './file-kind.ts';
import { undoOnExit } from './exit-cleanup.ts';
import { createExclusive, temporaryPathFor } from './temporary-files.ts';

/** What was installed: compare with an lstat of the path later to know whether the file there is still ours. */
export interface WrittenFile {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Writes to one path from this process, one after the other, so that the last call's content is the one left. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Temporary files that could not be removed when their write failed (an immutable or append-only directory refuses
 * the rename and the unlink alike), with their exit undo: retried before every write, and at exit.
 */
const orphans = new Map<string, () => void>();

/**
 * Replace `path` with `data` so that a reader sees the old bytes or the new, never a mix, and a failure leaves the
 * old file as it was. In a directory other containers may write to:
 * 1. a symbolic link or any non-regular file at `path` is refused (`refused_link`), never followed or replaced;
 * 2. the bytes go to a new temporary file beside it (unpredictable name, O_EXCL | O_NOFOLLOW, `mode` exactly,
 *    owned by this process), every byte counted written (short writes are resumed), then fsync and close;
 * 3. it is renamed over `path`, and the directory is fsynced so that the rename survives a crash.
 * Any failure (ENOSPC, EROFS, EIO, a write that makes no progress) removes the temporary file and throws
 * `write_failed`; so does process exit in the middle (a clean shutdown). The directory may be reached through links.
 */
export async function writeFileAtomically(path: string, data: string | Uint8Array, mode: number): Promise<WrittenFile> {
  const key = resolve(path);
  const run = (queues.get(key) ?? Promise.resolve()).catch(() => undefined).then(() => writeOnce(path, data, mode));
  queues.set(key, run);
  try {
    return await run;
  } finally {
    if (queues.get(key) === run) queues.delete(key);
  }
}

async function writeOnce(path: string, data: string | Uint8Array, mode: number): Promise<WrittenFile> {
  await removeOrphans();
  await refuseNonRegular(path);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const temporary = temporaryPathFor(path);
  let handle: FileHandle | undefined;
  let created = false;
  let written: WrittenFile;
  // Unconditional: the file may exist before `created` is set (the open completed, its callback has not run).
  const forget = undoOnExit(() => { unlinkSync(temporary); });
  try {
    handle = await createExclusive(temporary, mode);
    created = true;
    await writeAll(handle, bytes);
    await handle.sync();
    const info = await handle.stat();
    // Belt and braces over the counted writes: what the file system holds is what was meant.
    if (info.size !== bytes.length) throw new Error(`the temporary file holds ${info.size} of ${bytes.length} bytes`);
    written = { dev: info.dev, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs };
    await handle.close();
    handle = undefined;
    await rename(temporary, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    // Only our own temporary file is removed: a name that existed before (EEXIST) is someone else's.
    if (created && !(await unlink(temporary).then(() => true, () => false))) orphans.set(temporary, forget);
    throw new DiskError('write_failed', path, `write failed: ${describeError(error)}`, error);
  } finally {
    if (!orphans.has(temporary)) forget();
  }
  await syncDirectory(path);
  return written;
}

async function removeOrphans(): Promise<void> {
  for (const [temporary, forget] of orphans) {
    if (await unlink(temporary).then(() => true, (error: unknown) => systemCode(error) === 'ENOENT')) {
      orphans.delete(temporary);
      forget();
    }
  }
}

async function refuseNonRegular(path: string): Promise<void> {
  const info = await lstat(path).catch((error: unknown) => {
    if (systemCode(error) === 'ENOENT') return undefined;
    throw new DiskError('write_failed', path, `write failed: ${describeError(error)}`, error);
  });
  if (info !== undefined && !info.isFile()) {
    throw new DiskError('refused_link', path, `is ${describeFileKind(info)}; the sidecar never writes through or over one (remove it)`);
  }
}

/** The one call of a FileHandle that writeAll makes: pwrite(2), which may write fewer bytes than asked. */
export interface PositionalWriter {
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
}

/** Write all of `bytes` at offset 0, resuming after short counts; a write that makes no progress is a failure. */
export async function writeAll(handle: PositionalWriter, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, offset);
    if (!(bytesWritten > 0)) throw new Error(`short write: ${offset} of ${bytes.length} bytes written, then no progress`);
    offset += bytesWritten;
  }
}

/**
 * fsync the directory so that the rename is durable. A file system that cannot sync a directory (EINVAL, ENOTSUP)
 * or a directory we may not open for reading is accepted as it is; any other failure (EIO…) is `write_failed`:
 * the new file is in place but may not survive a crash, so the caller retries rather than report it durable.
 */
async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    return;
  }
  try {
    await handle.sync();
  } catch (error) {
    const code = systemCode(error);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') {
      throw new DiskError('write_failed', path, `was replaced, but its directory could not be synced: ${describeError(error)}`, error);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}
