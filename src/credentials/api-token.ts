import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import { parseApiToken, type ApiToken, type TokenRead } from './api-token-text.ts';
import { reason } from '../disk/jwt-file.ts';

// The token's text rules live in a pure module that the configuration (EK_API_TOKEN) shares without this one's watcher.
export { MAX_TOKEN_BYTES, parseApiToken, type ApiToken, type TokenProblem, type TokenRead } from './api-token-text.ts';

/** The safety net under the file watch: the token file is re-read this often and compared by hash. */
export const REREAD_INTERVAL_MS = 30_000;

/** How long an unusable read waits for a second look (a file edited in place is briefly empty). */
const SETTLE_MS = 150;

export async function readApiTokenFile(path: string): Promise<TokenRead> {
  let text: string;
  try {
    // A valid token is at most 4 KiB; a huge file is read once and refused as malformed.
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = error instanceof Error && 'code' in error && error.code === 'ENOENT';
    return { ok: false, problem: missing ? 'missing' : 'unreadable', message: `token file ${path} ${missing ? 'does not exist' : `is unreadable: ${reason(error)}`}` };
  }
  return parseApiToken(text, `token file ${path}`);
}

export interface TokenFileEvents {
  /** A valid token whose content differs from the last one seen. */
  onToken(token: ApiToken): void;
  /** The file changed to something unusable; the last good token stays in use. */
  onInvalid(read: Extract<TokenRead, { ok: false }>): void;
}

/**
 * Follow a token file as the kubelet updates a secret volume: it swaps a `..data` symlink to a new timestamped
 * directory, which a plain fs.watch of the file misses after the first swap. chokidar on the file path sees every
 * swap (LIBRARIES.md); a re-read every 30 s, comparing a hash, catches anything the watch loses. Only changes are
 * reported, so a file that stays broken is logged once, not every 30 s.
 */
export class TokenFileWatcher {
  readonly #path: string;
  readonly #events: TokenFileEvents;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastDigest: string | undefined;
  #reading: Promise<void> = Promise.resolve();

  constructor(path: string, events: TokenFileEvents) {
    this.#path = path;
    this.#events = events;
  }

  /** Read the file once now (reporting it) and start following it. */
  async start(): Promise<void> {
    await this.reread();
    this.#watcher = watch(this.#path, { ignoreInitial: true, persistent: true });
    const reread = (): void => void this.reread();
    this.#watcher.on('add', reread).on('change', reread).on('unlink', reread);
    this.#watcher.on('error', reread);
    this.#timer = setInterval(reread, REREAD_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Re-read now (watch event, the periodic net, SIGHUP). Reads are serialised so that reports keep their order. */
  reread(options: { force?: boolean } = {}): Promise<void> {
    this.#reading = this.#reading.then(() => this.#readAndReport(options.force === true));
    return this.#reading;
  }

  async #readAndReport(force: boolean): Promise<void> {
    let read = await readApiTokenFile(this.#path);
    if (!read.ok && read.problem !== 'missing') {
      // An editor or `echo > file` truncates before it writes: look again before calling the file broken.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      read = await readApiTokenFile(this.#path);
    }
    const digest = read.ok ? createHash('sha256').update(read.token.value).digest('hex') : `problem:${read.problem}`;
    if (digest === this.#lastDigest && !force) return;
    this.#lastDigest = digest;
    if (read.ok) this.#events.onToken(read.token);
    else this.#events.onInvalid(read);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#watcher?.close();
  }
}
