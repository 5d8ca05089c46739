import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ExchangeRecord } from '../refresh/rate-limit.ts';

/**
 * What the sidecar remembers across restarts, in `<jwt file>.state.json`. It never holds a secret: identities are
 * 8-hex keys, the JWT appears as its 8-hex fingerprint and inside a MAC.
 *
 * The JWT directory may be writable by other containers of the pod, so the file is treated as hostile input:
 * - the budget's records are honoured whoever wrote them (a forged record can only make the budget stricter, for at
 *   most one window: records are never taken to be in the future);
 * - the JWT entry is trusted for restart reuse only when its MAC verifies with a key derived from the credential
 *   (only this sidecar holds it), binding the identity, the whole JWT's hash and its times. A planted JWT or a
 *   forged entry is not reused.
 * Times: records carry wall time and, with the kernel's boot id, monotonic time, which any process on the same boot
 * can compare whatever the wall clock did in between.
 */
export interface StateFile {
  /** The boot the monotonic times belong to; undefined off Linux. */
  readonly bootId: string | undefined;
  readonly exchanges: readonly PersistedRecord[];
  readonly jwt: JwtEntry | undefined;
}

export interface PersistedRecord {
  readonly key: string;
  readonly id: string | undefined;
  /** Wall time of the attempt, ms. */
  readonly at: number;
  /** Monotonic time of the attempt, ms, on `bootId`'s boot. */
  readonly mono: number | undefined;
}

/** The JWT file's description: for whom it was issued, when it expires and when it is due for refresh. */
export interface JwtEntry {
  /** The credential identity it was issued for. */
  readonly key: string;
  /** First 8 hex of the JWT's SHA-256, for `check` (which cannot verify the MAC) and for people. */
  readonly fingerprint: string;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  readonly refreshAtMs: number;
  /** HMAC-SHA256 over all of the above and the whole JWT's hash, hex. */
  readonly mac: string;
}

export const EMPTY_STATE: StateFile = { bootId: undefined, exchanges: [], jwt: undefined };

/** The state file stays small: records are pruned on every write; anything bigger than this on disk is refused. */
export const MAX_STATE_BYTES = 64 * 1024;

export function statePathFor(jwtFile: string): string {
  return `${jwtFile}.state.json`;
}

const KEY = /^[0-9a-f]{8}$/;

/** A fresh record id: 8 random hex. */
export function recordId(): string {
  return randomBytes(4).toString('hex');
}
const MAC = /^[0-9a-f]{64}$/;

/** Parse the file's text; anything that is not a v2 state file is undefined (then: empty state, logged). */
export function parseState(text: string): StateFile | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(parsed) || parsed.version !== 2) return undefined;
  const exchanges = Array.isArray(parsed.exchanges) ? parsed.exchanges.flatMap((item) => record(item) ?? []) : [];
  return { bootId: typeof parsed.bootId === 'string' && parsed.bootId.length <= 64 ? parsed.bootId : undefined, exchanges, jwt: entry(parsed.jwt) };
}

export function renderState(state: StateFile): string {
  const jwt = state.jwt === undefined ? null : {
    key: state.jwt.key,
    fingerprint: state.jwt.fingerprint,
    issuedAt: new Date(state.jwt.issuedAtMs).toISOString(),
    expiresAt: new Date(state.jwt.expiresAtMs).toISOString(),
    refreshAt: new Date(state.jwt.refreshAtMs).toISOString(),
    mac: state.jwt.mac,
  };
  return `${JSON.stringify({ version: 2, bootId: state.bootId ?? null, exchanges: state.exchanges, jwt }, null, 1)}\n`;
}

/** The MAC that binds an entry to a JWT and a credential; `key` comes from Credential.stateKey. */
export function entryMac(key: Buffer, entry: Omit<JwtEntry, 'mac'>, jwt: string): string {
  const jwtHash = createHash('sha256').update(jwt, 'utf8').digest('hex');
  const message = ['ek-sidecar/jwt-entry/v2', entry.key, jwtHash, entry.issuedAtMs, entry.expiresAtMs, entry.refreshAtMs].join('|');
  return createHmac('sha256', key).update(message, 'utf8').digest('hex');
}

/** Constant-time check that `entry` was written by a holder of `key` for exactly this JWT. */
export function entryVerifies(key: Buffer, entry: JwtEntry, jwt: string): boolean {
  const expected = Buffer.from(entryMac(key, entry, jwt), 'hex');
  const actual = Buffer.from(entry.mac, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** Where the two clocks stand now, for converting records between the file and the budget. */
export interface ClockReading {
  readonly wallMs: number;
  readonly monoMs: number;
  readonly bootId: string | undefined;
}

/**
 * Records as the budget counts them (monotonic ms of this boot). Same boot: the monotonic time as written. Another
 * boot, or none known: from wall time. Either way never later than now, so a wall clock that stepped back (or a
 * forged far-future record) blocks for at most one window instead of being dropped or blocking for years.
 */
export function recordsForBudget(state: Pick<StateFile, 'bootId' | 'exchanges'>, now: ClockReading): ExchangeRecord[] {
  const sameBoot = now.bootId !== undefined && state.bootId === now.bootId;
  return state.exchanges.map((persisted) => {
    const atMs = sameBoot && persisted.mono !== undefined ? persisted.mono : now.monoMs - Math.max(0, now.wallMs - persisted.at);
    return { key: persisted.key, atMs: Math.min(atMs, now.monoMs), ...(persisted.id === undefined ? {} : { id: persisted.id }) };
  });
}

/** The budget's records as the file keeps them: monotonic time on this boot, and the wall time it corresponds to. */
export function recordsForFile(records: readonly ExchangeRecord[], now: ClockReading): PersistedRecord[] {
  return records.map((item) => ({ key: item.key, id: item.id, at: now.wallMs - (now.monoMs - item.atMs), mono: now.bootId === undefined ? undefined : item.atMs }));
}

function record(value: unknown): PersistedRecord | undefined {
  if (!isObject(value) || typeof value.key !== 'string' || !KEY.test(value.key) || !finite(value.at)) return undefined;
  const id = typeof value.id === 'string' && /^[0-9a-f]{1,16}$/.test(value.id) ? value.id : undefined;
  return { key: value.key, id, at: value.at, mono: finite(value.mono) ? value.mono : undefined };
}

function entry(value: unknown): JwtEntry | undefined {
  if (!isObject(value)) return undefined;
  const { key, fingerprint, mac } = value;
  const issuedAtMs = time(value.issuedAt);
  const expiresAtMs = time(value.expiresAt);
  const refreshAtMs = time(value.refreshAt);
  if (typeof key !== 'string' || !KEY.test(key) || typeof fingerprint !== 'string' || !KEY.test(fingerprint)) return undefined;
  if (typeof mac !== 'string' || !MAC.test(mac) || issuedAtMs === undefined || expiresAtMs === undefined || refreshAtMs === undefined) return undefined;
  return { key, fingerprint, issuedAtMs, expiresAtMs, refreshAtMs, mac };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function finite(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function time(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
