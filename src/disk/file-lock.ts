import { setTimeout as delay } from 'node:timers/promises';
import { lstatSync, unlinkSync, type Stats } from 'node:fs';
import { link, lstat, rename, unlink, type FileHandle } from 'node:fs/promises';
import { DiskError, describeError, systemCode } from '../core/errors.ts';
import { undoOnExit } from './exit-cleanup.ts';
import { describeFileKind } from './file-kind.ts';
import { createExclusive, temporaryPathFor } from './temporary-files.ts';

export interface FileLockOptions {
  /**
   * A lock file whose mtime is further than this from now, in the past (its holder died: SIGKILL, OOM) or in the
   * future (the clock stepped back), is stale and taken over. A live holder refreshes the mtime every third of it.
   * Default 5 s.
   */
  readonly staleMs?: number;
  /** Give up with `DiskError('locked')` after waiting this long (monotonic time). Default 10 s. */
  readonly waitMs?: number;
  /** Abandons the wait (shutdown); `fn` is not called. */
  readonly signal?: AbortSignal;
}

export const DEFAULT_LOCK_STALE_MS = 5_000;
export const DEFAULT_LOCK_WAIT_MS = 10_000;
const POLL_MIN_MS = 2;
const POLL_MAX_MS = 50;

/**
 * Run `fn` while holding an exclusive lock on `lockPath`, for a read-modify-write of a file that other processes
 * (another container of the pod: a separate PID namespace, so no PID is trusted) modify too. Hold it for
 * milliseconds, not for a network call. Not re-entrant: a nested call on the same path waits for itself and fails.
 *
 * The lock is a file created with O_CREAT | O_EXCL | O_NOFOLLOW; whether its holder lives is judged by its mtime
 * alone (`isStaleLock`), so a holder that lives through a clock step larger than `staleMs` may lose the lock to a
 * waiter: accepted, as holds last milliseconds. A symbolic link or any non-regular file at `lockPath` is refused
 * (`refused_link`), never followed or removed. Failing to create the lock file otherwise (EROFS…) is `write_failed`.
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const staleMs = options.staleMs ?? DEFAULT_LOCK_STALE_MS;
  const handle = await acquire(lockPath, staleMs, options.waitMs ?? DEFAULT_LOCK_WAIT_MS, options.signal);
  // A clean shutdown in the middle of fn must not leave the next start waiting for the lock to go stale.
  const mine = await handle.stat().catch(() => undefined);
  const forget = undoOnExit(() => {
    const there = lstatSync(lockPath, { throwIfNoEntry: false });
    if (mine !== undefined && there?.dev === mine.dev && there.ino === mine.ino) unlinkSync(lockPath);
  });
  // fn is meant to take milliseconds; a slow fsync must still not let another process judge us dead.
  const heartbeat = setInterval(() => {
    const now = new Date();
    handle.utimes(now, now).catch(() => undefined);
  }, Math.max(1, Math.floor(staleMs / 3)));
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    await release(lockPath, handle, mine);
    forget();
  }
}

/** 1. Stamped more than `staleMs` ago: the holder stopped refreshing it. 2. Stamped more than `staleMs` ahead: the clock stepped. */
export function isStaleLock(mtimeMs: number, nowMs: number, staleMs: number): boolean {
  return mtimeMs < nowMs - staleMs || mtimeMs > nowMs + staleMs;
}

async function acquire(lockPath: string, staleMs: number, waitMs: number, signal: AbortSignal | undefined): Promise<FileHandle> {
  const deadline = performance.now() + waitMs;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await createExclusive(lockPath, 0o600);
    } catch (error) {
      if (systemCode(error) !== 'EEXIST') throw new DiskError('write_failed', lockPath, `cannot create the lock file: ${describeError(error)}`, error);
    }
    const holder = await lstat(lockPath).catch(() => undefined);
    if (holder === undefined) continue; // released meanwhile
    if (!holder.isFile()) throw new DiskError('refused_link', lockPath, `is ${describeFileKind(holder)}, not a lock file; it is never followed (remove it)`);
    if (isStaleLock(holder.mtimeMs, Date.now(), staleMs)) {
      await takeOver(lockPath, holder);
      continue;
    }
    if (performance.now() >= deadline) {
      throw new DiskError('locked', lockPath, `held by another process (last refreshed ${new Date(holder.mtimeMs).toISOString()}); gave up after ${waitMs} ms`);
    }
    const ceiling = Math.min(POLL_MAX_MS, POLL_MIN_MS * 2 ** Math.min(attempt, 5));
    await delay(ceiling / 2 + Math.random() * (ceiling / 2), undefined, { signal });
  }
}

/**
 * Remove a stale lock without racing another waiter that took it over first: move whatever is at the path aside
 * (rename is atomic and never follows a link), remove it if it is the very file judged stale, and otherwise put
 * it back: it is a live lock that replaced the stale one in between.
 */
async function takeOver(lockPath: string, stale: Stats): Promise<void> {
  const aside = temporaryPathFor(lockPath);
  try {
    await rename(lockPath, aside);
  } catch (error) {
    if (systemCode(error) === 'ENOENT') return;
    throw new DiskError('write_failed', lockPath, `cannot remove a stale lock: ${describeError(error)}`, error);
  }
  const moved = await lstat(aside).catch(() => undefined);
  const same = moved !== undefined && moved.dev === stale.dev && moved.ino === stale.ino && moved.mtimeMs === stale.mtimeMs;
  if (!same) await link(aside, lockPath).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/**
 * Remove the lock file only if it is still ours (a holder frozen past `staleMs` may have lost it to another). When
 * that cannot be known, or the unlink fails, the file is left to go stale within `staleMs`.
 */
async function release(lockPath: string, handle: FileHandle, mine: Stats | undefined): Promise<void> {
  const there = await lstat(lockPath).catch(() => undefined);
  if (mine !== undefined && there?.dev === mine.dev && there.ino === mine.ino) await unlink(lockPath).catch(() => undefined);
  await handle.close().catch(() => undefined);
}
