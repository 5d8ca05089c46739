import { fingerprint } from '../core/fingerprint.ts';
import type { Credential, ExchangeRequest } from './credential.ts';
import { deriveStateKey } from './credential.ts';
import type { ProjectedToken } from './projected-token.ts';

/**
 * The workload-identity credential: the pod's projected service-account token, sent with the workspace to
 * `/v1/auth/oidc/exchange`. Its identity is the token's `sub` and the workspace, never the token text, so the
 * kubelet's rotation of the token (every ~48 minutes) neither resets the budget nor forces an exchange.
 * `current` reads the file afresh: the token sent is always the newest the kubelet wrote (SPEC: read it afresh
 * before every exchange); it throws CredentialError when that one cannot be sent.
 */
export function oidcCredential(token: ProjectedToken, workspace: string, current: () => Promise<ProjectedToken>): Credential {
  const identity = oidcIdentity(token.sub, workspace);
  return {
    mode: 'oidc',
    identity,
    label: `workload identity ${token.sub} in workspace ${workspace} (${identity})`,
    stateKey: deriveStateKey(token.text),
    async exchangeRequest(): Promise<ExchangeRequest> {
      const fresh = await current();
      return {
        path: '/v1/auth/oidc/exchange',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: fresh.text, workspaceId: workspace }),
      };
    },
  };
}

/** 8 hex, not secret: the budget's and the state file's key for a workload identity. */
export function oidcIdentity(sub: string, workspace: string): string {
  return fingerprint(`oidc\0${sub}\0${workspace}`);
}
