import { decodeJwt } from 'jose/jwt/decode';
import type { CredentialProblem } from '../core/errors.ts';
import { isThreePartJwt } from '../upstream/jwt-claims.ts';

/** A projected service-account token is ~1 KiB; anything past this is not one. */
export const MAX_PROJECTED_TOKEN_BYTES = 16 * 1024;
/** Not sent with less left than this: it would expire on its way (the kubelet rotates at 80 % of its life anyway). */
export const PROJECTED_TOKEN_MIN_LIFE_MS = 10_000;

/** The pod's projected token as the sidecar uses it: the text to send, and the two claims it reads. */
export interface ProjectedToken {
  readonly text: string;
  /** `system:serviceaccount:<namespace>:<name>`: whose identity; not secret. */
  readonly sub: string;
  readonly expiresAtMs: number;
}

export type ProjectedTokenRead =
  | { readonly ok: true; readonly token: ProjectedToken }
  | { readonly ok: false; readonly problem: CredentialProblem; readonly message: string };

/**
 * Read a projected token's text: a JWT whose `sub` and `exp` decode, not expired. Its signature, issuer and audience
 * are the upstream's to verify (it holds the cluster's keys); the sidecar never trusts these claims for anything but
 * keying its budget and not sending a token that would be refused anyway.
 */
export function parseProjectedToken(text: string, source: string, nowMs: number): ProjectedTokenRead {
  const value = text.trim();
  const refuse = (problem: CredentialProblem, why: string): ProjectedTokenRead => ({ ok: false, problem, message: `${source} ${why}` });
  if (value === '') return refuse('empty', 'is empty');
  if (Buffer.byteLength(value, 'utf8') > MAX_PROJECTED_TOKEN_BYTES) return refuse('malformed', `is longer than ${String(MAX_PROJECTED_TOKEN_BYTES)} bytes: not a projected token`);
  if (!isThreePartJwt(value)) return refuse('malformed', 'does not hold a JWT');
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(value);
  } catch {
    return refuse('malformed', 'holds a JWT whose claims do not decode');
  }
  const { sub, exp } = claims;
  if (typeof sub !== 'string' || sub === '' || sub.length > 256) return refuse('malformed', 'holds a JWT without a usable sub claim');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return refuse('malformed', 'holds a JWT without an exp claim');
  const expiresAtMs = exp * 1000;
  if (expiresAtMs - nowMs < PROJECTED_TOKEN_MIN_LIFE_MS) return refuse('expired', `holds a projected token that has expired (exp ${new Date(expiresAtMs).toISOString()}); the kubelet should have rotated it`);
  return { ok: true, token: { text: value, sub, expiresAtMs } };
}
