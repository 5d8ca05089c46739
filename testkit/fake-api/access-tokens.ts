// The JWTs the fake issues (HS256 with its own key, `exp` to the millisecond so scaled-down fractional lifetimes
// stay exact) and the judgement of an `Authorization` header, as the upstream accepts it on every route: a known
// API token, or a valid, unexpired JWT it issued itself.
import { randomUUID } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { CredentialKind } from './log.ts';

export type TokenStatus = 'ok' | 'forbidden';

export interface IssueOptions {
  readonly key: Uint8Array;
  readonly nowMs: number;
  readonly subject: string;
  /** Seconds; negative: already expired. */
  readonly lifetimeSec: number;
  /** The normal lifetime, so that an expired JWT still has a plausible `iat`. */
  readonly normalLifetimeSec: number;
  readonly claims?: Readonly<Record<string, string>>;
}

export async function issueJwt(options: IssueOptions): Promise<string> {
  const nowSec = options.nowMs / 1000;
  const expSec = Math.round((nowSec + options.lifetimeSec) * 1000) / 1000;
  return new SignJWT({ ...options.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.subject)
    .setIssuedAt(Math.floor(options.lifetimeSec > 0 ? nowSec : expSec - options.normalLifetimeSec))
    .setExpirationTime(expSec)
    .setJti(randomUUID())
    .sign(options.key);
}

/** Whether `jwt` carries this key's signature and an `exp` after `nowMs`. */
export async function isLiveJwt(jwt: string, key: Uint8Array, nowMs: number): Promise<boolean> {
  try {
    // Milliseconds count here: jose compares whole seconds, which would keep a scaled-down JWT alive too long.
    const { payload } = await jwtVerify(jwt, key, { algorithms: ['HS256'], requiredClaims: ['exp'], currentDate: new Date(nowMs) });
    return typeof payload.exp === 'number' && payload.exp * 1000 > nowMs;
  } catch {
    return false;
  }
}

/** Well-formed per SPEC.md: `ek_live_`, no whitespace or control characters, at most 4 KiB. */
export function isWellFormedToken(token: string): boolean {
  // eslint-disable-next-line no-control-regex
  return token.startsWith('ek_live_') && token.length <= 4096 && !/[\s\x00-\x1f\x7f]/.test(token);
}

/** The bearer credential of an `Authorization` header; undefined when it is absent or not `Bearer <one word>`. */
export function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer +(\S+) *$/i.exec(header ?? '')?.[1];
}

export interface TokenTable {
  /** The status of a known API token; 'revoked' or undefined is not accepted. */
  status(token: string): TokenStatus | 'revoked' | undefined;
}

/** What a bearer credential is, to the upstream: a known API token first, else a live JWT of this fake, else invalid. */
export async function classify(header: string | undefined, tokens: TokenTable, key: Uint8Array, nowMs: number): Promise<CredentialKind> {
  if (header === undefined) return 'none';
  const bearer = bearerOf(header);
  if (bearer === undefined) return 'invalid';
  const status = tokens.status(bearer);
  if ((status === 'ok' || status === 'forbidden') && isWellFormedToken(bearer)) return 'api-token';
  return bearer.split('.').length === 3 && (await isLiveJwt(bearer, key, nowMs)) ? 'jwt' : 'invalid';
}
