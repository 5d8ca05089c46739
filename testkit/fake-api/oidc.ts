// The workload-identity exchange of SPEC.md ("Workload identity"), as the fake upstream judges it:
// POST /v1/auth/oidc/exchange, `Content-Type: application/json`, body exactly {"token", "workspaceId"} (two
// non-empty strings; the fake is stricter than the contract and refuses other keys), no Authorization.
//   415  not JSON by Content-Type            400  not that object            413  body over 64 KiB
//   401  `token` does not verify against the trusted issuer: signature (ES256/RS256 with the configured public key),
//        `iss` equal, `aud` (string or array) holding the audience (default "enkryptify"), `exp` ahead, `nbf` (if
//        any) passed, `sub` of the form system:serviceaccount:<namespace>:<name>; or no issuer is configured
//   403  an allow-list of (sub, workspaceId) bindings is configured and this pair is not on it
// Times are the server's injected clock. An Authorization header is ignored here (the log's `credential` shows
// whether one came). The rate limit (10/min per verified `sub`) and the answer live in routes.ts.
import { errors, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { MintOptions } from '../projected-token.ts';
import { isJsonContentType, message, type CannedResponse } from './http.ts';

export const OIDC_EXCHANGE_PATH = '/v1/auth/oidc/exchange';
export const DEFAULT_OIDC_AUDIENCE = 'enkryptify';
const SERVICE_ACCOUNT_SUB = /^system:serviceaccount:[^:\s]+:[^:\s]+$/;

/** The issuer the fake trusts for projected service-account tokens (a cluster's service-account issuer). */
export interface OidcTrust {
  readonly issuer: string;
  readonly publicKey: CryptoKey | KeyObject | JWK;
  /** Default "enkryptify". */
  readonly audience?: string;
  /** Mints tokens of this issuer for the control API (`POST /__control/oidc/token`); a ProjectedTokenIssuer has it. */
  readonly mint?: (options?: MintOptions) => Promise<string>;
}

export interface OidcBinding {
  readonly sub: string;
  readonly workspaceId: string;
}

export interface OidcRequest {
  readonly token: string;
  readonly workspaceId: string;
}

/** The request body, or the answer that refuses it. */
export function parseOidcRequest(contentType: string | undefined, body: Buffer | undefined): OidcRequest | CannedResponse {
  if (!isJsonContentType(contentType)) return message(415, 'Content-Type must be application/json');
  if (body === undefined) return message(413, 'request body over 64 KiB');
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return message(400, 'the body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return message(400, 'the body must be a JSON object');
  const record = value as Record<string, unknown>;
  const extra = Object.keys(record).filter((key) => key !== 'token' && key !== 'workspaceId');
  if (extra.length > 0) return message(400, `unknown properties: ${extra.join(', ')}`);
  const { token, workspaceId } = record;
  if (typeof token !== 'string' || token === '') return message(400, '"token" must be a non-empty string');
  if (typeof workspaceId !== 'string' || workspaceId === '') return message(400, '"workspaceId" must be a non-empty string');
  return { token, workspaceId };
}

export type Verdict = { readonly ok: true; readonly sub: string } | { readonly ok: false; readonly reason: string };

/** Verifies a projected service-account token against the trusted issuer at `nowMs`. Reasons name no token. */
export async function verifyProjectedToken(trust: OidcTrust | undefined, token: string, nowMs: number): Promise<Verdict> {
  if (trust === undefined) return { ok: false, reason: 'no trusted issuer is configured for workload identity' };
  try {
    const { payload } = await jwtVerify(token, trust.publicKey, {
      algorithms: ['ES256', 'RS256'],
      issuer: trust.issuer,
      audience: trust.audience ?? DEFAULT_OIDC_AUDIENCE,
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(nowMs),
    });
    const sub = payload.sub ?? '';
    if (!SERVICE_ACCOUNT_SUB.test(sub)) return { ok: false, reason: 'the token is not a Kubernetes service-account token' };
    return { ok: true, sub };
  } catch (error) {
    return { ok: false, reason: reasonOf(error) };
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the service-account token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `the service-account token's "${error.claim}" claim is not accepted`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the service-account token signature does not verify';
  return 'the service-account token is not a valid JWT of the trusted issuer';
}

/** With an allow-list, whether the pair is on it; without one, every verified service account is bound everywhere. */
export function isBound(bindings: readonly OidcBinding[] | undefined, sub: string, workspaceId: string): boolean {
  return bindings === undefined || bindings.some((b) => b.sub === sub && b.workspaceId === workspaceId);
}
