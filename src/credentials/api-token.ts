import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'chokidar';
import { fingerprint } from '../upstream/jwt-claims.ts';
import { isMissing, readBoundedFile } from '../disk/bounded-read.ts';

export const MAX_TOKEN_BYTES = 4096;
/** The token file may hold a 4 KiB token and a trailing newline (as `kubectl create secret --from-file` keeps it). */
export const MAX_TOKEN_FILE_BYTES = MAX_TOKEN_BYTES + 1;
/** The safety net under the file watch: the token file is re-read this often and compared by hash. */
export const REREAD_INTERVAL_MS = 30_000;

/** How long an unusable read waits for a second look (a file edited in place is briefly empty). */
const SETTLE_MS = 150;

export interface ApiToken {
  readonly value: string;
  /** First 8 hex of SHA-256: the only form of the token that may be logged or persisted. */
  readonly fingerprint: string;
}

export type TokenProblem = 'missing' | 'unreadable' | 'empty' | 'malformed';
export type TokenRead = { readonly ok: true; readonly token: ApiToken } | { readonly ok: false; readonly problem: TokenProblem; readonly message: string };

/** Validate a token's text: trimmed, `ek_live_` prefix, no whitespace or control characters inside, at most 4 KiB. */
export function parseApiToken(text: string, source: string): TokenRead {
  const value = text.trim();
  if (value === '') return { ok: false, problem: 'empty', message: `${source} is empty` };
  // Described by length and shape only: the content itself must never reach a log.
  if (Buffer.byteLength(value, 'utf8') > MAX_TOKEN_BYTES) return malformed(source, `it is longer than ${MAX_TOKEN_BYTES} bytes`);
  if (!value.startsWith('ek_live_') || value.length === 'ek_live_'.length) return malformed(source, 'it does not start with ek_live_ followed by the key');
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\s\u0000-\u001f\u007f-\u009f]/u.test(value)) return malformed(source, 'it contains whitespace or control characters');
  return { ok: true, token: { value, fingerprint: fingerprint(value) } };
}

function malformed(source: string, why: string): TokenRead {
  return { ok: false, problem: 'malformed', message: `${source} does not hold a valid API token: ${why}` };
}

/**
 * Read the token file: a regular file only (a FIFO, device or directory is `unreadable`, without blocking), links
 * followed (the kubelet's `..data` swap), at most MAX_TOKEN_FILE_BYTES (a larger file is `malformed`).
 */
export async function readApiTokenFile(path: string): Promise<TokenRead> {
  const source = `token file ${path}`;
  let bytes: Buffer;
  try {
    bytes = await readBoundedFile(path, MAX_TOKEN_FILE_BYTES, { followLinks: true });
  } catch (error) {
    if (isMissing(error)) return { ok: false, problem: 'missing', message: `${source} does not exist` };
    // The error names the path, then what is wrong with it: "token file /x: is a FIFO (named pipe), …".
    return { ok: false, problem: 'unreadable', message: `token file ${error instanceof Error ? error.message : 'is unreadable'}` };
  }
  if (bytes.length > MAX_TOKEN_FILE_BYTES) return malformed(source, `the file is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
  return parseApiToken(bytes.toString('utf8'), source);
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
