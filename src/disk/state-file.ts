import { readFile } from 'node:fs/promises';
import type { ExchangeRecord } from '../refresh/rate-limit.ts';
import { writeFileAtomically } from './atomic-write.ts';

/**
 * What the daemon remembers across restarts, beside the JWT file. It never holds a secret: tokens and JWTs
 * appear only as fingerprints (first 8 hex of SHA-256).
 */
export interface SidecarState {
  /** Fingerprint of the API token the JWT on disk was issued for. */
  readonly tokenFingerprint: string | undefined;
  /** Fingerprint of the JWT on disk, so that a state file never vouches for a JWT file it did not describe. */
  readonly jwtFingerprint: string | undefined;
  readonly issuedAtMs: number | undefined;
  readonly expiresAtMs: number | undefined;
  /** The refresh point drawn for that JWT; a restart keeps it instead of drawing a new one. */
  readonly refreshAtMs: number | undefined;
  /** Recent exchange attempts, for the rate-limit budget. */
  readonly exchanges: readonly ExchangeRecord[];
}

export const EMPTY_STATE: SidecarState = {
  tokenFingerprint: undefined,
  jwtFingerprint: undefined,
  issuedAtMs: undefined,
  expiresAtMs: undefined,
  refreshAtMs: undefined,
  exchanges: [],
};

export function statePathFor(jwtFile: string): string {
  return `${jwtFile}.state.json`;
}

/** Read the state file; a missing or damaged one is an empty state (the budget then relies on the upstream's 429s). */
export async function readState(path: string): Promise<{ state: SidecarState; problem: string | undefined }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = error instanceof Error && 'code' in error && error.code === 'ENOENT';
    return { state: EMPTY_STATE, problem: missing ? undefined : `state file ${path} is unreadable` };
  }
  const state = parseState(text);
  return state === undefined ? { state: EMPTY_STATE, problem: `state file ${path} is damaged; starting with an empty one` } : { state, problem: undefined };
}

export function parseState(text: string): SidecarState | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !('version' in parsed) || parsed.version !== 1) return undefined;
  const fields = parsed as Record<string, unknown>;
  const exchanges = Array.isArray(fields.exchanges) ? fields.exchanges.filter(isRecord) : [];
  return {
    tokenFingerprint: hex(fields.tokenFingerprint),
    jwtFingerprint: hex(fields.jwtFingerprint),
    issuedAtMs: time(fields.issuedAt),
    expiresAtMs: time(fields.expiresAt),
    refreshAtMs: time(fields.refreshAt),
    exchanges: exchanges.map((record) => ({ atMs: record.atMs, fingerprint: record.fingerprint })),
  };
}

/** The file form: times as RFC 3339 for people, exchange times as epoch ms for the budget. */
export function renderState(state: SidecarState): string {
  const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());
  return `${JSON.stringify(
    {
      version: 1,
      tokenFingerprint: state.tokenFingerprint,
      jwtFingerprint: state.jwtFingerprint,
      issuedAt: iso(state.issuedAtMs),
      expiresAt: iso(state.expiresAtMs),
      refreshAt: iso(state.refreshAtMs),
      exchanges: state.exchanges,
    },
    null,
    2,
  )}\n`;
}

export async function writeState(path: string, state: SidecarState): Promise<void> {
  await writeFileAtomically(path, renderState(state), 0o644);
}

function isRecord(value: unknown): value is ExchangeRecord {
  if (typeof value !== 'object' || value === null) return false;
  const { atMs, fingerprint } = value as Record<string, unknown>;
  return typeof atMs === 'number' && Number.isFinite(atMs) && typeof fingerprint === 'string' && /^[0-9a-f]{8}$/.test(fingerprint);
}

function hex(value: unknown): string | undefined {
  return typeof value === 'string' && /^[0-9a-f]{8}$/.test(value) ? value : undefined;
}

function time(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
