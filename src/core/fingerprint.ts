import { createHash } from 'node:crypto';

/** First 8 hex of SHA-256: the only form of a token or JWT that may be logged or persisted. */
export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 8);
}
