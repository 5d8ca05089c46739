import { rm } from 'node:fs/promises';
import { DiskError } from '../core/errors.ts';
import { expiryFromClaims, isThreePartJwt } from '../upstream/jwt-claims.ts';
import { readBoundedFile } from './bounded-read.ts';

/** A JWT file is a few KiB; anything past this is not one and is not read further. */
export const MAX_JWT_FILE_BYTES = 64 * 1024;

/** A JWT read back from its file, in either format. */
export interface StoredJwt {
  readonly jwt: string;
  readonly tokenType: string;
  /** The earlier of the file's `expiresAt` (json format) and the JWT's `exp`; undefined when neither is known. */
  readonly expiresAtMs: number | undefined;
}

/**
 * Read the JWT file (`raw` or `json`) as `readBoundedFile` does, never following a link at the path; throws
 * DiskError (`unreadable`, `refused_link`) when it is missing, not a regular file, too large or holds no JWT.
 */
export async function readJwtFile(path: string): Promise<StoredJwt> {
  const bytes = await readBoundedFile(path, MAX_JWT_FILE_BYTES, { followLinks: false });
  if (bytes.length > MAX_JWT_FILE_BYTES) throw new DiskError('unreadable', path, `is larger than ${MAX_JWT_FILE_BYTES} bytes; not a JWT file`);
  const stored = parseJwtFile(bytes.toString('utf8'));
  if (stored === undefined) throw new DiskError('unreadable', path, 'does not hold a JWT');
  return stored;
}

export function parseJwtFile(text: string): StoredJwt | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return parseJsonForm(trimmed);
  if (!isThreePartJwt(trimmed)) return undefined;
  return { jwt: trimmed, tokenType: 'Bearer', expiresAtMs: expiryFromClaims(trimmed) };
}

function parseJsonForm(text: string): StoredJwt | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { accessToken, tokenType, expiresAt } = parsed as Record<string, unknown>;
  if (typeof accessToken !== 'string' || !isThreePartJwt(accessToken)) return undefined;
  const stated = typeof expiresAt === 'string' ? Date.parse(expiresAt) : Number.NaN;
  const claimed = expiryFromClaims(accessToken);
  const candidates = [Number.isNaN(stated) ? undefined : stated, claimed].filter((value): value is number => value !== undefined);
  return {
    jwt: accessToken,
    tokenType: typeof tokenType === 'string' ? tokenType : 'Bearer',
    expiresAtMs: candidates.length === 0 ? undefined : Math.min(...candidates),
  };
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}
