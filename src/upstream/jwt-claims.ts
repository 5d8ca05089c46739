import { decodeJwt } from 'jose/jwt/decode';

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** A compact JWS: three non-empty base64url parts. The claims are undocumented, so nothing more is required. */
export function isThreePartJwt(value: string): boolean {
  return JWT_SHAPE.test(value);
}

/** The `exp` claim in milliseconds when the JWT decodes and carries a numeric one; undefined otherwise (it is opaque). */
export function expiryFromClaims(jwt: string): number | undefined {
  try {
    const { exp } = decodeJwt(jwt);
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
