import type { RateLimit } from '../config/config.ts';
import type { Clock } from '../core/clock.ts';
import { DiskError, describeError } from '../core/errors.ts';
import type { Metrics } from '../observe/metrics.ts';
import { combinedBudget, merge, prune, type ExchangeRecord } from '../refresh/rate-limit.ts';
import type { FileAccess } from './file-access.ts';
import { EMPTY_STATE, MAX_STATE_BYTES, parseState, recordId, recordsForBudget, recordsForFile, renderState, type ClockReading, type JwtEntry, type StateFile } from './state-file.ts';

/** The state file holds no secret; readable by the pod like the JWT's own directory listing. */
const STATE_MODE = 0o644;

export type Reservation =
  | { readonly granted: true; readonly records: ExchangeRecord[]; readonly id: string }
  | { readonly granted: false; readonly records: ExchangeRecord[]; readonly nextAllowedAtMs: number };

/**
 * The state file as a ledger, and the only writer of `state_file_writes_total`: every change is a read-modify-write under the lock, so two processes on one JWT
 * file (two daemons, or `once` in an init container and `run`) share one budget instead of keeping two, and
 * nothing one of them recorded is lost to the other's write.
 */
export class StateStore {
  readonly #path: string;
  readonly #files: FileAccess;
  readonly #clock: Clock;
  readonly #bootId: string | undefined;
  readonly #limit: RateLimit;
  readonly #metrics: Pick<Metrics, 'stateFileWrites'>;

  constructor(options: { path: string; files: FileAccess; clock: Clock; bootId: string | undefined; limit: RateLimit; metrics: Pick<Metrics, 'stateFileWrites'> }) {
    this.#path = options.path;
    this.#files = options.files;
    this.#clock = options.clock;
    this.#bootId = options.bootId;
    this.#limit = options.limit;
    this.#metrics = options.metrics;
  }

  get path(): string {
    return this.#path;
  }

  /** What a start finds: the budget's records and the JWT entry; a damaged file is an empty state and a problem. */
  async load(): Promise<{ records: ExchangeRecord[]; entry: JwtEntry | undefined; problem: string | undefined }> {
    const { state, problem } = await this.#read();
    const now = this.#reading();
    return { records: prune(recordsForBudget(state, now), this.#limit, now.monoMs), entry: state.jwt, problem };
  }

  /**
   * Record an exchange attempt for `key`, durably, before it is sent; only if both caps still allow it once the
   * records on disk (another process's too) are counted. Throws DiskError when it cannot be recorded: the budget
   * fails closed, so the caller must not send.
   */
  async reserve(key: string, known: readonly ExchangeRecord[]): Promise<Reservation> {
    return this.#locked(async () => {
      const { state } = await this.#read();
      const now = this.#reading();
      const records = prune(merge(known, recordsForBudget(state, now)), this.#limit, now.monoMs);
      const allowed = combinedBudget(records, key, this.#limit, now.monoMs);
      if (allowed.remaining === 0) return { granted: false, records, nextAllowedAtMs: allowed.nextAllowedAtMs };
      const id = recordId();
      const withAttempt = [...records, { key, atMs: now.monoMs, id }];
      await this.#write({ bootId: this.#bootId, exchanges: recordsForFile(withAttempt, now), jwt: state.jwt });
      return { granted: true, records: withAttempt, id };
    });
  }

  /** Write the JWT entry (undefined: none), keeping every record on disk; returns the merged records. */
  async saveEntry(entry: JwtEntry | undefined, known: readonly ExchangeRecord[]): Promise<ExchangeRecord[]> {
    return this.#locked(async () => {
      const { state } = await this.#read();
      const now = this.#reading();
      const records = prune(merge(known, recordsForBudget(state, now)), this.#limit, now.monoMs);
      await this.#write({ bootId: this.#bootId, exchanges: recordsForFile(records, now), jwt: entry });
      return records;
    });
  }

  async #read(): Promise<{ state: StateFile; problem: string | undefined }> {
    let text: string | undefined;
    try {
      text = await this.#files.read(this.#path, MAX_STATE_BYTES);
    } catch (error) {
      return { state: EMPTY_STATE, problem: `${describeError(error)}; starting from an empty state` };
    }
    if (text === undefined) return { state: EMPTY_STATE, problem: undefined };
    const state = parseState(text);
    return state === undefined ? { state: EMPTY_STATE, problem: `state file ${this.#path} is damaged or of another version; starting from an empty state` } : { state, problem: undefined };
  }

  /** A read-modify-write under the lock; a failure anywhere in it (the lock, the write) is a failed state write. */
  async #locked<T>(change: () => Promise<T>): Promise<T> {
    try {
      return await this.#files.withLock(this.#path, change);
    } catch (error) {
      this.#metrics.stateFileWrites.inc({ result: 'failure' });
      if (error instanceof DiskError) throw error;
      throw new DiskError('write_failed', this.#path, describeError(error), error);
    }
  }

  async #write(state: StateFile): Promise<void> {
    await this.#files.write(this.#path, renderState(state), STATE_MODE);
    this.#metrics.stateFileWrites.inc({ result: 'success' });
  }

  #reading(): ClockReading {
    return { wallMs: this.#clock.now(), monoMs: this.#clock.monotonic(), bootId: this.#bootId };
  }
}
