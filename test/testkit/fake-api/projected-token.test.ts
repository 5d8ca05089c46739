// The projected-token issuer must mint what the kubelet mints, and each flaw must spoil exactly one thing.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  createProjectedTokenIssuer,
  DEFAULT_AUDIENCE,
  DEFAULT_ISSUER,
  serviceAccountSubject,
  TOKEN_FLAWS,
  type ProjectedTokenIssuer,
  type TokenFlaw,
} from '../../../testkit/projected-token.ts';

const NOW = 1_800_000_000_000;
let issuer: ProjectedTokenIssuer;
before(async () => {
  issuer = await createProjectedTokenIssuer();
});

const verify = (token: string, nowMs = NOW): Promise<unknown> =>
  jwtVerify(token, issuer.publicKey, { issuer: issuer.issuer, audience: issuer.audience, currentDate: new Date(nowMs) });

void describe('projected service-account tokens', () => {
  void test('carry the kubelet claims, signed ES256 with the issuer key and kid', async () => {
    const token = await issuer.mint({ namespace: 'shop', serviceAccount: 'web', pod: 'web-7d9', nowMs: NOW, lifetimeSec: 600 });
    await verify(token);
    const header = decodeProtectedHeader(token);
    assert.deepEqual(header, { alg: 'ES256', kid: issuer.kid });
    const claims = decodeJwt(token);
    assert.equal(claims.iss, DEFAULT_ISSUER);
    assert.equal(claims.sub, 'system:serviceaccount:shop:web');
    assert.equal(claims.sub, serviceAccountSubject('shop', 'web'));
    assert.deepEqual(claims.aud, [DEFAULT_AUDIENCE]);
    assert.equal(claims.iat, NOW / 1000);
    assert.equal(claims.nbf, NOW / 1000);
    assert.equal(claims.exp, NOW / 1000 + 600);
    assert.equal(typeof claims.jti, 'string');
    const k8s = claims['kubernetes.io'] as { namespace: string; pod: { name: string; uid: string }; serviceaccount: { name: string; uid: string } };
    assert.equal(k8s.namespace, 'shop');
    assert.equal(k8s.pod.name, 'web-7d9');
    assert.equal(k8s.serviceaccount.name, 'web');
    assert.match(k8s.pod.uid, /^[0-9a-f-]{36}$/);
  });

  void test('defaults: namespace default, account app, an hour, the audience enkryptify', async () => {
    const claims = decodeJwt(await issuer.mint({ nowMs: NOW }));
    assert.equal(claims.sub, 'system:serviceaccount:default:app');
    assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 3600);
  });

  const FAILS: Record<Exclude<TokenFlaw, 'not-a-service-account'>, RegExp> = {
    expired: /"exp" claim timestamp check failed/,
    'not-yet-valid': /"nbf" claim timestamp check failed/,
    'wrong-audience': /unexpected "aud" claim value/,
    'wrong-issuer': /unexpected "iss" claim value/,
    'bad-signature': /signature verification failed/,
    'not-a-jwt': /Invalid Compact JWS/,
  };

  void test('each flaw spoils one thing', async () => {
    for (const flaw of TOKEN_FLAWS) {
      const token = await issuer.mint({ flaw, nowMs: NOW });
      if (flaw === 'not-a-service-account') {
        await verify(token);
        assert.doesNotMatch(String(decodeJwt(token).sub), /^system:serviceaccount:/);
        continue;
      }
      await assert.rejects(verify(token), FAILS[flaw], flaw);
      if (flaw !== 'not-a-jwt') assert.equal(decodeProtectedHeader(token).kid, issuer.kid, `${flaw}: same kid`);
    }
  });

  void test('RS256 on request; the public key also comes as SPKI PEM and as a JWK', async () => {
    const rsa = await createProjectedTokenIssuer({ alg: 'RS256', issuer: 'https://oidc.example', audience: 'ek' });
    const token = await rsa.mint();
    assert.equal(decodeProtectedHeader(token).alg, 'RS256');
    await jwtVerify(token, createPublicKey(rsa.publicPem), { issuer: 'https://oidc.example', audience: 'ek' });
    assert.equal(rsa.publicJwk.kid, rsa.kid);
    assert.equal(rsa.publicJwk.kty, 'RSA');
    assert.equal(rsa.publicJwk.d, undefined, 'no private part');
    await jwtVerify(token, rsa.publicJwk, { issuer: 'https://oidc.example' });
  });
});
