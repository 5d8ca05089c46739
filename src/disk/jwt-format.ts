import type { JwtFormat } from '../config/config.ts';
import type { HeldJwt } from '../core/held-jwt.ts';

/** The `json` form of SPEC.md, shared by the JWT file and `GET /v1/token` with `Accept: application/json`. */
export interface JwtDocument {
  readonly accessToken: string;
  readonly tokenType: string;
  /** RFC 3339. */
  readonly expiresAt: string;
  /** Whole seconds left at the time of writing. */
  readonly expiresIn: number;
}

export function jwtDocument(held: Pick<HeldJwt, 'jwt' | 'tokenType' | 'expiresAtMs'>, nowMs: number): JwtDocument {
  return {
    accessToken: held.jwt,
    tokenType: held.tokenType,
    expiresAt: new Date(held.expiresAtMs).toISOString(),
    expiresIn: secondsLeft(held, nowMs),
  };
}

export function secondsLeft(held: Pick<HeldJwt, 'expiresAtMs'>, nowMs: number): number {
  return Math.max(0, Math.floor((held.expiresAtMs - nowMs) / 1000));
}

/** The bytes of the JWT file: `raw` is the JWT alone with no trailing newline. */
export function renderJwt(held: Pick<HeldJwt, 'jwt' | 'tokenType' | 'expiresAtMs'>, format: JwtFormat, nowMs: number): string {
  return format === 'raw' ? held.jwt : JSON.stringify(jwtDocument(held, nowMs));
}
