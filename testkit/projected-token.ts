// A stand-in for a cluster's service-account token issuer: holds a key pair (ES256 by default, RS256 on request)
// and mints Kubernetes-style projected service-account tokens with the kubelet's claims: `iss`, `sub`
// system:serviceaccount:<ns>:<sa>, `aud` (an array), `exp`, `iat`, `nbf`, `jti`, and `kubernetes.io` with the
// namespace, service account and pod. Each flaw of TOKEN_FLAWS spoils one thing, for the refusal tests.
// Hand the issuer to the fake API as its trusted issuer: startFakeApi({ oidc: issuer }).
import { randomUUID } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const DEFAULT_AUDIENCE = 'enkryptify';
/** The kubelet's default and minimum `expirationSeconds` are 3600 and 600; tests may go lower. */
export const DEFAULT_TOKEN_LIFETIME_SEC = 3600;

export const TOKEN_FLAWS = ['expired', 'not-yet-valid', 'wrong-audience', 'wrong-issuer', 'bad-signature', 'not-a-service-account', 'not-a-jwt'] as const;
export type TokenFlaw = (typeof TOKEN_FLAWS)[number];

export interface MintOptions {
  /** Default "default". */
  readonly namespace?: string;
  /** Default "app". */
  readonly serviceAccount?: string;
  /** Default "<serviceAccount>-0". */
  readonly pod?: string;
  /** Default [the issuer's audience]. */
  readonly audience?: readonly string[];
  /** Default 3600. */
  readonly lifetimeSec?: number;
  /** Milliseconds since the epoch. Default Date.now(). */
  readonly nowMs?: number;
  readonly flaw?: TokenFlaw;
}

export interface ProjectedTokenIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly alg: 'ES256' | 'RS256';
  readonly kid: string;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
  /** SPKI PEM, for a fake API in another process (`--oidc-public-key`). */
  readonly publicPem: string;
  mint(options?: MintOptions): Promise<string>;
}

export function serviceAccountSubject(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

export async function createProjectedTokenIssuer(
  options: { readonly issuer?: string; readonly audience?: string; readonly alg?: 'ES256' | 'RS256' } = {},
): Promise<ProjectedTokenIssuer> {
  const alg = options.alg ?? 'ES256';
  const issuer = options.issuer ?? DEFAULT_ISSUER;
  const audience = options.audience ?? DEFAULT_AUDIENCE;
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  let impostor: CryptoKey | undefined;
  const mint = async (mintOptions: MintOptions = {}): Promise<string> => {
    const { flaw } = mintOptions;
    if (flaw === 'not-a-jwt') return `k8s-opaque-${randomUUID()}`;
    // Same alg and kid, another key: only the signature is wrong.
    if (flaw === 'bad-signature') impostor ??= (await generateKeyPair(alg)).privateKey;
    return sign({ ...mintOptions, issuer, defaultAudience: audience, kid, alg }, flaw === 'bad-signature' && impostor !== undefined ? impostor : privateKey);
  };
  return {
    issuer,
    audience,
    alg,
    kid,
    publicKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
    publicPem: await exportSPKI(publicKey),
    mint,
  };
}

interface SignInput extends MintOptions {
  readonly issuer: string;
  readonly defaultAudience: string;
  readonly kid: string;
  readonly alg: 'ES256' | 'RS256';
}

async function sign(input: SignInput, key: CryptoKey): Promise<string> {
  const namespace = input.namespace ?? 'default';
  const serviceAccount = input.serviceAccount ?? 'app';
  const nowSec = Math.floor((input.nowMs ?? Date.now()) / 1000);
  const lifetimeSec = input.lifetimeSec ?? DEFAULT_TOKEN_LIFETIME_SEC;
  // Shifted so the flawed time is past (or ahead) by more than any clock tolerance.
  const issuedAt = input.flaw === 'expired' ? nowSec - lifetimeSec - 120 : input.flaw === 'not-yet-valid' ? nowSec + 600 : nowSec;
  const audience = input.flaw === 'wrong-audience' ? ['https://kubernetes.default.svc'] : [...(input.audience ?? [input.defaultAudience])];
  return new SignJWT({
    aud: audience,
    'kubernetes.io': {
      namespace,
      pod: { name: input.pod ?? `${serviceAccount}-0`, uid: randomUUID() },
      serviceaccount: { name: serviceAccount, uid: randomUUID() },
    },
  })
    .setProtectedHeader({ alg: input.alg, kid: input.kid })
    .setIssuer(input.flaw === 'wrong-issuer' ? 'https://issuer.invalid' : input.issuer)
    .setSubject(input.flaw === 'not-a-service-account' ? 'system:node:worker-1' : serviceAccountSubject(namespace, serviceAccount))
    .setIssuedAt(issuedAt)
    .setNotBefore(issuedAt)
    .setExpirationTime(issuedAt + lifetimeSec)
    .setJti(randomUUID())
    .sign(key);
}
