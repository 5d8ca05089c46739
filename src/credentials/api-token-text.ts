import { fingerprint } from '../core/fingerprint.ts';

/**
 * What a valid API token looks like, as pure functions: the token file watcher and the configuration
 * (`EK_API_TOKEN`) share them, and the configuration must not load the watcher (chokidar) to use them.
 */
export const MAX_TOKEN_BYTES = 4096;

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
