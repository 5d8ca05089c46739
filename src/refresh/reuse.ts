import type { Clock } from '../core/clock.ts';
import { fingerprint } from '../core/fingerprint.ts';
import { hasLifeLeft, holdJwt, type HeldJwt } from '../core/held-jwt.ts';
import type { StoredJwt } from '../disk/jwt-file.ts';
import { entryVerifies, type JwtEntry } from '../disk/state-file.ts';
import type { Credential } from '../credentials/credential.ts';

/** What `run` and `once` know of the credential: its identity and the check of the state entry's MAC. */
export interface ReuseCredential {
  readonly identity: string;
  verifies(entry: JwtEntry, jwt: string): boolean;
}

export type Verdict =
  | { readonly usable: true; readonly expiresAtMs: number; readonly issuedAtMs: number | undefined; readonly refreshAtMs: number | undefined }
  | { readonly usable: false; readonly reason: string; readonly expiresAtMs: number | undefined };

/**
 * Whether the JWT on disk may be used, the one rule for restart reuse (`run`, `once`) and for `check`:
 *  1. there must be a JWT in the file;
 *  2. with a credential (run, once): the state entry must name this credential's identity and its MAC must verify
 *     for exactly this JWT, so a JWT planted by another container, a forged entry, or a JWT issued for a rotated-out
 *     token is never reused; without one (`check`, which runs beside the app and holds no credential): the entry
 *     only lends its expiry when its fingerprint names this JWT;
 *  3. its expiry, the earlier of the file's and the entry's, must leave more than --min-ttl.
 */
export function judgeJwtOnDisk(
  disk: { readonly stored: StoredJwt | undefined; readonly entry: JwtEntry | undefined },
  credential: ReuseCredential | undefined,
  minTtlMs: number,
  nowMs: number,
): Verdict {
  const { stored, entry } = disk;
  if (stored === undefined) return { usable: false, reason: 'the JWT file is missing or holds no JWT', expiresAtMs: undefined };
  let describes = entry !== undefined && entry.fingerprint === fingerprint(stored.jwt);
  if (credential !== undefined) {
    if (entry === undefined) return { usable: false, reason: 'no state entry names the JWT on disk', expiresAtMs: stored.expiresAtMs };
    if (entry.key !== credential.identity) return { usable: false, reason: `the JWT on disk was issued for another credential (${entry.key})`, expiresAtMs: stored.expiresAtMs };
    describes = credential.verifies(entry, stored.jwt);
    if (!describes) return { usable: false, reason: 'the JWT on disk was not written by this sidecar for this credential (its state entry does not verify)', expiresAtMs: stored.expiresAtMs };
  }
  const expiresAtMs = Math.min(stored.expiresAtMs ?? Infinity, describes && entry !== undefined ? entry.expiresAtMs : Infinity);
  if (!Number.isFinite(expiresAtMs)) return { usable: false, reason: 'the JWT\'s expiry is unknown', expiresAtMs: undefined };
  if (!hasLifeLeft(expiresAtMs - nowMs, minTtlMs)) {
    return { usable: false, reason: expiresAtMs <= nowMs ? 'the JWT has expired' : `the JWT has no more than --min-ttl (${String(Math.round(minTtlMs / 1000))} s) left`, expiresAtMs };
  }
  const fromEntry = describes && entry !== undefined;
  return { usable: true, expiresAtMs, issuedAtMs: fromEntry ? entry.issuedAtMs : undefined, refreshAtMs: fromEntry ? entry.refreshAtMs : undefined };
}

/** What the previous run left on disk, judged for the first credential: reusable, or why not. */
export type Restorable = (credential: Credential) =>
  | { readonly reusable: true; readonly held: HeldJwt; readonly issuedAtMs: number; readonly refreshAtMs: number | undefined }
  | { readonly reusable: false; readonly reason: string };

/** The start-up seam: judge what is on disk for the first credential that arrives (its MAC key verifies the entry). */
export function restorableFrom(disk: { readonly stored: StoredJwt | undefined; readonly entry: JwtEntry | undefined }, minTtlMs: number, clock: Clock): Restorable {
  return (credential) => {
    const verdict = judgeJwtOnDisk(disk, { identity: credential.identity, verifies: (entry, jwt) => entryVerifies(credential.stateKey, entry, jwt) }, minTtlMs, clock.now());
    if (!verdict.usable || disk.stored === undefined) return { reusable: false, reason: verdict.usable ? 'no JWT file' : verdict.reason };
    const held = holdJwt(disk.stored.jwt, disk.stored.tokenType, verdict.expiresAtMs, clock);
    return { reusable: true, held, issuedAtMs: verdict.issuedAtMs ?? clock.now(), refreshAtMs: verdict.refreshAtMs };
  };
}
