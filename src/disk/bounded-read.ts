import { constants } from 'node:fs';
import { lstat, open, stat, type FileHandle } from 'node:fs/promises';
import { DiskError, describeError, systemCode } from '../core/errors.ts';
import { describeFileKind } from './file-kind.ts';

export interface BoundedReadOptions {
  /**
   * Follow a symbolic link at the path itself. True for the mounted API token (the kubelet's `..data` swap); false
   * for the files the sidecar owns, where a link is refused (`refused_link`). Links in the directories above the
   * path are always followed (`/var/run` is a link to `/run` on Debian).
   */
  readonly followLinks: boolean;
}

/**
 * Read a regular file without blocking and without trusting its size: at most `maxBytes + 1` bytes come back, so
 * that a result longer than `maxBytes` means "too large" to the caller, however large the file (or /dev/zero) is.
 *
 * The file is opened with O_NONBLOCK, so a FIFO with no writer cannot park a libuv thread for ever, and O_NOCTTY;
 * then the open handle (not the path, which may change meanwhile) is checked: anything but a regular file (FIFO,
 * device, socket, directory) is refused as `unreadable`, naming what it is. Missing files are `unreadable` too,
 * with the system error as `cause` (see `isMissing`).
 */
export async function readBoundedFile(path: string, maxBytes: number, options: BoundedReadOptions): Promise<Buffer> {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (options.followLinks ? 0 : constants.O_NOFOLLOW);
  let handle: FileHandle;
  try {
    handle = await open(path, flags);
  } catch (error) {
    throw await openFailure(path, error, options);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new DiskError('unreadable', path, `is ${describeFileKind(info)}, not a regular file; it is not read`);
    return await readUpTo(handle, maxBytes + 1);
  } catch (error) {
    if (error instanceof DiskError) throw error;
    throw new DiskError('unreadable', path, describeError(error), error);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** True for the error `readBoundedFile` throws when nothing exists at the path (ENOENT). */
export function isMissing(error: unknown): boolean {
  return error instanceof DiskError && systemCode(error.cause) === 'ENOENT';
}

async function readUpTo(handle: FileHandle, limit: number): Promise<Buffer> {
  const buffer = Buffer.alloc(limit);
  let filled = 0;
  while (filled < limit) {
    const { bytesRead } = await handle.read(buffer, filled, limit - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

async function openFailure(path: string, error: unknown, options: BoundedReadOptions): Promise<DiskError> {
  const code = systemCode(error);
  // O_NOFOLLOW on a symbolic link fails with ELOOP: say what is there rather than "too many levels of links".
  if (code === 'ELOOP' && !options.followLinks) {
    const info = await lstat(path).catch(() => undefined);
    if (info?.isSymbolicLink() === true) return new DiskError('refused_link', path, 'is a symbolic link; it is never followed', error);
  }
  // Opening a socket (or a device without a driver) fails with ENXIO.
  if (code === 'ENXIO') {
    const info = await (options.followLinks ? stat(path) : lstat(path)).catch(() => undefined);
    if (info !== undefined) return new DiskError('unreadable', path, `is ${describeFileKind(info)}, not a regular file; it is not read`, error);
  }
  return new DiskError('unreadable', path, describeError(error), error);
}
