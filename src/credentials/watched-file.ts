import { createHash } from 'node:crypto';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';
import { systemCode } from '../core/errors.ts';

/** The safety net under the file watch: the file is re-read this often and compared by hash. */
export const REREAD_INTERVAL_MS = 30_000;
/**
 * Without a watch (inotify exhausted: EMFILE once `fs.inotify.max_user_instances` processes of the same user watch,
 * ENOSPC past `max_user_watches`), the file is re-read this often instead: a read and a hash a second is cheap, and
 * a rotation is still seen within the 2 s the watch gives.
 */
export const UNWATCHED_REREAD_INTERVAL_MS = 1_000;
/** How long an unusable read waits for a second look (a file edited in place is briefly empty). */
const SETTLE_MS = 150;

/** One read of the file: its content interpreted, or why it cannot be used. */
export type FileRead<T, E extends Problem> =
  | { readonly ok: true; readonly value: T; readonly text: string }
  | { readonly ok: false; readonly problem: E; readonly retryable: boolean };

export interface Problem {
  readonly code: string;
}

export interface WatchedFileEvents<T, E extends Problem> {
  /** A usable content different from the last one seen (or the same one, re-read on demand with `force`). */
  onValue(value: T): void;
  /** The file turned unusable; the caller keeps the last good value. Reported once per change, not per re-read. */
  onProblem(problem: E): void;
  /** The watch failed (why, e.g. `EMFILE`): the file is re-read every `rereadMs` from now on. Reported once. */
  onWatchLost?(reason: string, rereadMs: number): void;
}

/** The warning for a lost watch, with the limit to raise when it is inotify's. */
export function watchLostMessage(what: string, reason: string, rereadMs: number): string {
  const limit = reason === 'EMFILE' ? ' (the inotify instances of this user are exhausted: raise fs.inotify.max_user_instances on the node)'
    : reason === 'ENOSPC' ? ' (the inotify watches of this user are exhausted: raise fs.inotify.max_user_watches on the node)' : '';
  return `cannot watch the ${what}: ${reason}${limit}; re-reading it every ${String(rereadMs / 1000)} s instead`;
}

export interface WatchedFileOptions {
  /** chokidar's `watch`; tests inject one that fails. */
  readonly watch?: (path: string | string[], options: ChokidarOptions) => FSWatcher;
  readonly rereadIntervalMs?: number;
  readonly unwatchedRereadIntervalMs?: number;
}

/**
 * Follow a file the kubelet updates (a secret or projected volume): it swaps a `..data` symlink to a new timestamped
 * directory, which a plain fs.watch of the file misses after the first swap. chokidar on the file path sees every
 * swap (LIBRARIES.md); a re-read every 30 s, comparing a hash, catches anything the watch loses. chokidar reports a
 * watch it could not set up only as an `error` event and then sees nothing: that switches to a re-read every second,
 * reported once, rather than a silent 30 s. Only changes are reported, so a file that stays broken is logged once,
 * not every 30 s.
 */
export class WatchedFile<T, E extends Problem> {
  /** One file, or several read together (a certificate and its key). */
  readonly #path: string | string[];
  readonly #read: () => Promise<FileRead<T, E>>;
  readonly #events: WatchedFileEvents<T, E>;
  readonly #options: WatchedFileOptions;
  #watcher: FSWatcher | undefined;
  #watching: (() => void) | undefined;
  #unwatched = false;
  #timer: NodeJS.Timeout | undefined;
  #lastDigest: string | undefined;
  #reading: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(path: string | string[], read: () => Promise<FileRead<T, E>>, events: WatchedFileEvents<T, E>, options: WatchedFileOptions = {}) {
    this.#path = path;
    this.#read = read;
    this.#events = events;
    this.#options = options;
  }

  /** Read the file once now (reporting it) and, unless told to wait for follow(), start following it. */
  async start(options: { follow?: boolean } = {}): Promise<void> {
    await this.reread();
    if (options.follow !== false) await this.follow();
  }

  /**
   * Watch the file and re-read it periodically from now on (once; a no-op after close()). Resolves once the watch is
   * in place; a change between the first read and then is caught by one more read.
   */
  async follow(): Promise<void> {
    if (this.#watcher !== undefined || this.#closed) return;
    const watcher = (this.#options.watch ?? watch)(this.#path, { ignoreInitial: true, persistent: true });
    this.#watcher = watcher;
    const reread = (): void => void this.reread();
    watcher.on('add', reread).on('change', reread).on('unlink', reread);
    watcher.on('error', (error: unknown) => { this.#watchLost(error); });
    this.#every(this.#options.rereadIntervalMs ?? REREAD_INTERVAL_MS);
    // close() ends the wait too (chokidar drops its listeners then); a watch that fails before it is ready (inotify
    // exhausted) ends it as well: the re-reads then stand in for it.
    await new Promise<void>((resolve) => {
      this.#watching = resolve;
      watcher.once('ready', resolve);
      watcher.once('error', () => { resolve(); });
    });
    await this.reread();
  }

  #every(intervalMs: number): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.reread(), intervalMs);
    this.#timer.unref();
  }

  #watchLost(error: unknown): void {
    void this.reread();
    if (this.#unwatched || this.#closed) return;
    this.#unwatched = true;
    const intervalMs = this.#options.unwatchedRereadIntervalMs ?? UNWATCHED_REREAD_INTERVAL_MS;
    this.#every(intervalMs);
    this.#events.onWatchLost?.(systemCode(error) ?? (error instanceof Error ? error.message : 'unknown error'), intervalMs);
  }

  /** Re-read now (watch event, the periodic net, SIGHUP). Reads are serialised so that reports keep their order. */
  reread(options: { force?: boolean } = {}): Promise<void> {
    this.#reading = this.#reading.then(() => this.#readAndReport(options.force === true));
    return this.#reading;
  }

  async #readAndReport(force: boolean): Promise<void> {
    if (this.#closed) return;
    let read = await this.#read();
    if (!read.ok && read.retryable) {
      // An editor or `echo > file` truncates before it writes: look again before calling the file broken.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      read = await this.#read();
    }
    const digest = read.ok ? createHash('sha256').update(read.text).digest('hex') : `problem:${read.problem.code}`;
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- close() may have run during the reads
    if ((digest === this.#lastDigest && !force) || this.#closed) return;
    this.#lastDigest = digest;
    if (read.ok) this.#events.onValue(read.value);
    else this.#events.onProblem(read.problem);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watching?.();
    clearInterval(this.#timer);
    await this.#watcher?.close();
  }
}
