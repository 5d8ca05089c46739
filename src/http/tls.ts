// The token listener's certificate and key (SPEC.md "Chaining (broker)": --tls-cert-file, --tls-key-file): read
// with a size bound, checked as a pair before use, and followed as cert-manager renews them in a Secret volume.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../core/errors.ts';
import { WatchedFile, watchLostMessage, type FileRead } from '../credentials/watched-file.ts';
import type { Logger } from './server.ts';

/** A chain of a few certificates, or a key, is a few KiB: a file larger than this is refused unread. */
export const MAX_PEM_BYTES = 256 * 1024;

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface PemPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** A checked pair, and what may be logged of it: the leaf certificate's public facts, never the key. */
export interface LoadedPair {
  readonly pair: PemPair;
  readonly digest: string;
  readonly subject: string;
  readonly validTo: string;
  readonly fingerprint256: string;
}

/** Why a pair cannot be used: which option's file, and a message naming the path (never the content). */
export class TlsPairError extends Error {
  readonly option: 'tls-cert-file' | 'tls-key-file';

  constructor(option: 'tls-cert-file' | 'tls-key-file', message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.option = option;
  }
}

/**
 * Read one PEM file: a regular file (the kubelet's symlinks are followed), at most MAX_PEM_BYTES, opened so that
 * a FIFO cannot block the read.
 */
export async function readPemFile(path: string, option: TlsPairError['option']): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new TlsPairError(option, `cannot read ${path}: ${codeOf(error)}`, error);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new TlsPairError(option, `${path} is not a regular file`);
    const buffer = Buffer.alloc(MAX_PEM_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_PEM_BYTES) throw new TlsPairError(option, `${path} is larger than ${MAX_PEM_BYTES} bytes`);
    }
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof TlsPairError) throw error;
    throw new TlsPairError(option, `cannot read ${path}: ${codeOf(error)}`, error);
  } finally {
    await handle.close();
  }
}

/** Read both files and check them as a pair. Throws TlsPairError. */
export async function loadPair(files: TlsFiles): Promise<LoadedPair> {
  const [cert, key] = await Promise.all([readPemFile(files.certFile, 'tls-cert-file'), readPemFile(files.keyFile, 'tls-key-file')]);
  return checkPair({ cert, key }, files);
}

/**
 * A certificate chain and its key, checked one by one for messages that name the culprit, then together as node:tls
 * will use them. OpenSSL's messages name a routine and a reason, never key material.
 */
export function checkPair(pair: PemPair, files: TlsFiles): LoadedPair {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pair.cert);
  } catch (error) {
    throw new TlsPairError('tls-cert-file', `${files.certFile} does not hold a PEM certificate`, error);
  }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(pair.key))) {
      throw new TlsPairError('tls-key-file', `${files.keyFile} is not the key of the certificate in ${files.certFile}`);
    }
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (error) {
    if (error instanceof TlsPairError) throw error;
    throw new TlsPairError('tls-key-file', `${files.keyFile} and ${files.certFile} are not a usable pair: ${messageOf(error)}`, error);
  }
  return { pair, digest: digestOf(pair), subject: leaf.subject, validTo: leaf.validTo, fingerprint256: leaf.fingerprint256 };
}

/** loadPair at start: a missing or bad pair is a configuration error naming the option. */
export async function loadInitialPair(files: TlsFiles): Promise<LoadedPair> {
  try {
    return await loadPair(files);
  } catch (error) {
    if (error instanceof TlsPairError) throw new ConfigError(error.option, error.message);
    throw error;
  }
}

export interface TlsReloaderOptions {
  readonly files: TlsFiles;
  /** The pair in use. */
  readonly current: LoadedPair;
  /** Put a new pair in use for new connections (server.setSecureContext); may throw, the old pair then stays. */
  readonly apply: (pair: PemPair) => void;
  readonly log?: Logger | undefined;
  readonly rereadIntervalMs?: number | undefined;
}

/** Why a renewal was refused; its message (paths and reasons, never key material) tells refusals apart. */
interface Refusal {
  readonly code: string;
}

/**
 * Follows the two files as the kubelet updates a Secret volume, as the API token is followed (WatchedFile: chokidar,
 * a 30 s re-read comparing a hash, a second look at a pair seen between its two files, a 1 s re-read when the watch
 * is lost). A new pair is put in use once it checks out; a bad one is logged once and the old pair kept.
 */
export class TlsReloader {
  readonly #options: TlsReloaderOptions;
  readonly #files: WatchedFile<LoadedPair, Refusal>;
  #current: LoadedPair;

  constructor(options: TlsReloaderOptions) {
    this.#options = options;
    this.#current = options.current;
    const { files, log } = options;
    this.#files = new WatchedFile([files.certFile, files.keyFile], () => this.#read(), {
      onValue: (loaded) => { this.#apply(loaded); },
      onProblem: (refusal) => {
        log?.warn({ certFile: files.certFile, keyFile: files.keyFile, reason: refusal.code }, 'TLS: the new certificate and key were refused; the previous ones stay in use');
      },
      onWatchLost: (reason, rereadMs) => { log?.warn({ reason }, watchLostMessage('TLS certificate and key', reason, rereadMs)); },
    }, options.rereadIntervalMs === undefined ? {} : { rereadIntervalMs: options.rereadIntervalMs });
  }

  /** Follow the files. Resolves once the watch is in place, with one more read for a renewal that landed meanwhile. */
  start(): Promise<void> {
    return this.#files.start();
  }

  /** Re-read now. Reads are serialised, so a burst of watch events costs one read that changes anything. */
  reread(): Promise<void> {
    return this.#files.reread();
  }

  close(): Promise<void> {
    return this.#files.close();
  }

  /** The pair on disk, checked only when it differs from the one in use (a re-read every 30 s stays cheap). */
  async #read(): Promise<FileRead<LoadedPair, Refusal>> {
    const { files } = this.#options;
    try {
      const [cert, key] = await Promise.all([readPemFile(files.certFile, 'tls-cert-file'), readPemFile(files.keyFile, 'tls-key-file')]);
      const pair = { cert, key };
      const digest = digestOf(pair);
      const loaded = digest === this.#current.digest ? this.#current : checkPair(pair, files);
      return { ok: true, value: loaded, text: digest };
    } catch (error) {
      // Retryable: a renewal seen between its two files is whole a moment later.
      return { ok: false, problem: { code: messageOf(error) }, retryable: true };
    }
  }

  #apply(loaded: LoadedPair): void {
    const { files, log } = this.#options;
    if (loaded.digest === this.#current.digest) return;
    try {
      this.#options.apply(loaded.pair);
    } catch (error) {
      log?.warn({ certFile: files.certFile, reason: messageOf(error) }, 'TLS: the new certificate and key could not be put in use; the previous ones stay in use');
      return;
    }
    this.#current = loaded;
    log?.info?.({ subject: loaded.subject, validTo: loaded.validTo, fingerprint256: loaded.fingerprint256 }, 'TLS: certificate reloaded');
  }
}

function digestOf(pair: PemPair): string {
  return createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex');
}

function codeOf(error: unknown): string {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : messageOf(error);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
