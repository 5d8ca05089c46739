import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { JwtFormat } from '../config/config.ts';
import type { Clock, Random, Timers } from '../core/clock.ts';
import { DiskError, describeError } from '../core/errors.ts';
import { fingerprint } from '../core/fingerprint.ts';
import type { HeldJwt } from '../core/held-jwt.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ExchangeRecord } from '../refresh/rate-limit.ts';
import { backoffDelay } from '../refresh/refresh-policy.ts';
import type { FileAccess, FileVersion } from './file-access.ts';
import { renderJwt } from './jwt-format.ts';
import { entryMac, type JwtEntry } from './state-file.ts';
import type { StateStore } from './state-store.ts';

/** A JWT to put on disk, with what its state entry says about it. */
export interface Installation {
  readonly held: HeldJwt;
  /** The credential it was issued for: its identity and the key of the entry's MAC. */
  readonly credential: { readonly identity: string; readonly stateKey: Buffer };
  readonly issuedAtMs: number;
  readonly refreshAtMs: number;
}

export interface SinkEvents {
  /** The JWT file and the state entry naming it are both durably written. */
  onInstalled(installation: Installation): void;
  /** A write failed; the old file is intact and the write is retried with backoff. */
  onWriteFailed(error: DiskError, failures: number): void;
  /** The JWT file was deleted or replaced by someone else; it is being rewritten. */
  onFileGone(): void;
}

export interface JwtSinkOptions {
  readonly jwtFile: string;
  readonly mode: number;
  readonly format: JwtFormat;
  readonly store: StateStore;
  readonly files: FileAccess;
  readonly clock: Clock;
  readonly random: Random;
  readonly timers: Timers;
  readonly metrics: Pick<Metrics, 'jwtFileWrites'>;
  readonly log: Logger;
  readonly events: SinkEvents;
  /** The budget's records as the refresher knows them, so a rewrite of the state never drops one. */
  readonly records: () => readonly ExchangeRecord[];
  readonly signal: AbortSignal;
}

/**
 * The JWT on disk, in one place (the sink of Vault Agent's design): it writes the JWT file and then the state entry
 * that names it, owns its own retry (the old file stays intact meanwhile), and keeps the file there: deleted or
 * replaced by another container of the pod, it is rewritten from memory, without an exchange. The only writer of
 * `jwt_file_writes_total`.
 */
export class JwtSink {
  readonly #o: JwtSinkOptions;
  #current: Installation | undefined;
  /** What the JWT file looked like right after our last write: anything else there was put by someone else. */
  #written: FileVersion | undefined;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #again = false;
  #watcher: FSWatcher | undefined;

  constructor(options: JwtSinkOptions) {
    this.#o = options;
    options.signal.addEventListener('abort', () => { this.#o.timers.clearTimeout(this.#retry); }, { once: true });
  }

  /** Put `installation` on disk; a newer one replaces a pending one. Reports through the events. */
  install(installation: Installation): void {
    this.#current = installation;
    this.#failures = 0;
    this.#kick();
  }

  /** The same identity with a new MAC key (the kubelet rotated the projected token): rewrite the entry. */
  rekey(credential: Installation['credential']): void {
    const current = this.#current;
    if (current?.credential.identity !== credential.identity) return;
    this.install({ ...current, credential });
  }

  /** Watch the JWT file for deletion or replacement by someone else. */
  watch(): void {
    this.#watcher = watch(this.#o.jwtFile, { ignoreInitial: true, persistent: false });
    const check = (): void => void this.verifyFile();
    this.#watcher.on('add', check).on('change', check).on('unlink', check).on('error', check);
  }

  async close(): Promise<void> {
    this.#o.timers.clearTimeout(this.#retry);
    await this.#watcher?.close();
    await this.#writing;
  }

  #kick(): void {
    this.#o.timers.clearTimeout(this.#retry);
    this.#retry = undefined;
    if (this.#writing !== undefined) {
      this.#again = true;
      return;
    }
    this.#writing = this.#write().finally(() => {
      this.#writing = undefined;
      if (this.#again && !this.#o.signal.aborted) {
        this.#again = false;
        this.#kick();
      }
    });
  }

  async #write(): Promise<void> {
    const installation = this.#current;
    if (installation === undefined || this.#o.signal.aborted) return;
    const { jwtFile, mode, format, files, clock, store, metrics } = this.#o;
    try {
      this.#written = await files.write(jwtFile, renderJwt(installation.held, format, clock.now()), mode);
      await store.saveEntry(entryFor(installation), this.#o.records());
    } catch (error) {
      metrics.jwtFileWrites.inc({ result: 'failure' });
      this.#failures += 1;
      const failure = error instanceof DiskError ? error : new DiskError('write_failed', jwtFile, describeError(error), error);
      this.#o.events.onWriteFailed(failure, this.#failures);
      if (this.#isCurrent(installation) && !this.#stopping()) {
        this.#retry = this.#o.timers.setTimeout(() => { this.#kick(); }, backoffDelay(this.#failures, this.#o.random));
      }
      return;
    }
    metrics.jwtFileWrites.inc({ result: 'success' });
    this.#failures = 0;
    // A newer installation may have arrived during the writes: only the current one is reported installed.
    if (this.#isCurrent(installation)) this.#o.events.onInstalled(installation);
  }

  /** Shut down, or a newer write already queued: no retry timer then. */
  #stopping(): boolean {
    return this.#o.signal.aborted || this.#again;
  }

  /** Whether `installation` is still the newest (install() may run while a write is awaited). */
  #isCurrent(installation: Installation): boolean {
    return this.#current === installation;
  }

  /** On a watch event: if what is there is not what we wrote, say so and write it again. */
  async verifyFile(): Promise<void> {
    if (this.#writing !== undefined || this.#current === undefined || this.#written === undefined) return;
    const now = await this.#o.files.version(this.#o.jwtFile);
    const ours = this.#written;
    if (now !== undefined && now.dev === ours.dev && now.ino === ours.ino && now.size === ours.size && now.mtimeMs === ours.mtimeMs) return;
    this.#o.log.warn({ jwtFile: this.#o.jwtFile }, now === undefined ? 'the JWT file was deleted; writing it again' : 'the JWT file was changed by someone else; writing it again');
    this.#o.events.onFileGone();
    this.#kick();
  }
}

function entryFor(installation: Installation): JwtEntry {
  const { held, credential, issuedAtMs, refreshAtMs } = installation;
  const fields = { key: credential.identity, fingerprint: fingerprint(held.jwt), issuedAtMs, expiresAtMs: held.expiresAtMs, refreshAtMs };
  return { ...fields, mac: entryMac(credential.stateKey, fields, held.jwt) };
}
