import { createHash } from 'node:crypto';
import type { AuthMode } from '../config/config.ts';
import { fingerprint } from '../core/fingerprint.ts';

/** What the exchange client sends: the sending half knows HTTP, the credential knows what to say. */
export interface ExchangeRequest {
  /** Path below the API base URL. */
  readonly path: '/v1/auth/exchange' | '/v1/auth/oidc/exchange';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
}

/**
 * What the sidecar authenticates with, as the refresher sees it. The identity, not the secret, keys the rate-limit
 * budget and restart reuse: an API token's identity changes when the token rotates; a workload identity's does not
 * when the kubelet rotates the projected token (same `sub`, same workspace).
 */
export interface Credential {
  readonly mode: AuthMode;
  /** 8 hex, not secret: the budget's and the state file's key for this identity. */
  readonly identity: string;
  /** For log lines: says whose credential this is, never the secret. */
  readonly label: string;
  /** Key for the state file's MAC: derived from a secret only this sidecar holds, never stored. */
  readonly stateKey: Buffer;
  /** The request to send now. Throws CredentialError when the credential cannot be sent as it is (then nothing is). */
  exchangeRequest(): Promise<ExchangeRequest>;
}

/** A key for the state file's MAC, bound to its purpose, from a secret that never leaves the process. */
export function deriveStateKey(secret: string): Buffer {
  return createHash('sha256').update('ek-sidecar state file v2\0', 'utf8').update(secret, 'utf8').digest();
}

/** The API-token credential: `Authorization: Bearer ek_live_…`, no body. */
export function apiTokenCredential(token: string): Credential {
  const identity = fingerprint(token);
  const request: ExchangeRequest = { path: '/v1/auth/exchange', headers: { authorization: `Bearer ${token}` }, body: undefined };
  return {
    mode: 'api-token',
    identity,
    label: `API token ${identity}`,
    stateKey: deriveStateKey(token),
    exchangeRequest: () => Promise.resolve(request),
  };
}
