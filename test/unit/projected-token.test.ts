import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { oidcCredential, oidcIdentity } from '../../src/credentials/oidc-credential.ts';
import { MAX_PROJECTED_TOKEN_BYTES, parseProjectedToken, type ProjectedToken } from '../../src/credentials/projected-token.ts';

const T0 = 1_700_000_000_000;
const SUB = 'system:serviceaccount:payments:api';
const SOURCE = 'projected token file /var/run/secrets/tokens/enkryptify';

function jwt(claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'RS256', kid: 'k1' }): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(claims)}.${Buffer.from('signature-not-checked-here').toString('base64url')}`;
}

const VALID = jwt({ iss: 'https://kubernetes.default.svc', sub: SUB, aud: ['enkryptify'], exp: T0 / 1000 + 3_600, iat: T0 / 1000 });

void describe('parseProjectedToken', () => {
  void it('reads sub and exp of a projected token, trimmed', () => {
    assert.deepEqual(parseProjectedToken(`${VALID}\n`, SOURCE, T0), { ok: true, token: { text: VALID, sub: SUB, expiresAtMs: T0 + 3_600_000 } });
  });

  const refused: readonly { name: string; text: string; problem: string }[] = [
    { name: 'empty', text: ' \n', problem: 'empty' },
    { name: 'not a JWT', text: 'just some text', problem: 'malformed' },
    { name: 'an API token', text: 'ek_live_not_a_projected_token', problem: 'malformed' },
    { name: 'claims that are not JSON', text: `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.bm90LWpzb24.c2ln`, problem: 'malformed' },
    { name: 'no sub', text: jwt({ exp: T0 / 1000 + 3_600 }), problem: 'malformed' },
    { name: 'no exp', text: jwt({ sub: SUB }), problem: 'malformed' },
    { name: 'expired', text: jwt({ sub: SUB, exp: T0 / 1000 - 1 }), problem: 'expired' },
    { name: 'about to expire (under 10 s)', text: jwt({ sub: SUB, exp: T0 / 1000 + 5 }), problem: 'expired' },
    { name: 'too large', text: jwt({ sub: SUB, exp: T0 / 1000 + 3_600, pad: 'x'.repeat(MAX_PROJECTED_TOKEN_BYTES) }), problem: 'malformed' },
  ];
  for (const row of refused) {
    void it(`refuses ${row.name} (${row.problem}), without the token in the message`, () => {
      const read = parseProjectedToken(row.text, SOURCE, T0);
      assert.ok(!read.ok, 'refused');
      assert.equal(read.problem, row.problem);
      assert.ok(read.message.startsWith(SOURCE));
      assert.ok(!read.message.includes(row.text.trim()) || row.text.trim() === '', read.message);
    });
  }
});

void describe('the workload-identity credential', () => {
  const token: ProjectedToken = { text: VALID, sub: SUB, expiresAtMs: T0 + 3_600_000 };

  void it('is keyed by sub and workspace, never by the token text: a rotated token keeps the identity', () => {
    const rotated: ProjectedToken = { text: jwt({ sub: SUB, exp: T0 / 1000 + 7_200 }), sub: SUB, expiresAtMs: T0 + 7_200_000 };
    const a = oidcCredential(token, 'ws-1', () => Promise.resolve(token));
    const b = oidcCredential(rotated, 'ws-1', () => Promise.resolve(rotated));
    assert.equal(a.identity, b.identity);
    assert.equal(a.identity, oidcIdentity(SUB, 'ws-1'));
    assert.notEqual(a.identity, oidcIdentity(SUB, 'ws-2'), 'another workspace is another identity');
    assert.notEqual(a.identity, oidcIdentity('system:serviceaccount:payments:worker', 'ws-1'));
    assert.ok(!a.stateKey.equals(b.stateKey), 'the MAC key follows the token (only this sidecar holds it)');
    assert.ok(!a.label.includes(VALID));
  });

  void it('sends the freshest token with the workspace, as JSON, without Authorization', async () => {
    const newer: ProjectedToken = { text: jwt({ sub: SUB, exp: T0 / 1000 + 7_200 }), sub: SUB, expiresAtMs: T0 + 7_200_000 };
    const credential = oidcCredential(token, 'ws-1', () => Promise.resolve(newer));
    const request = await credential.exchangeRequest();
    assert.deepEqual(request, {
      path: '/v1/auth/oidc/exchange',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: newer.text, workspaceId: 'ws-1' }),
    });
  });
});
