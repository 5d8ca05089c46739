import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jwtDocument, renderJwt, secondsLeft } from '../../src/disk/jwt-format.ts';
import { parseJwtFile } from '../../src/disk/jwt-file.ts';
import type { HeldJwt } from '../../src/core/held-jwt.ts';

const T0 = 1_700_000_000_000;
const JWT = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('{"exp":1700000900}').toString('base64url')}.c2lnbmF0dXJl`;
const HELD: Pick<HeldJwt, 'jwt' | 'tokenType' | 'expiresAtMs'> = { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 };

void describe('secondsLeft', () => {
  const table: readonly { name: string; nowMs: number; expected: number }[] = [
    { name: 'at issue', nowMs: T0, expected: 900 },
    { name: 'whole seconds, rounded down', nowMs: T0 + 1, expected: 899 },
    { name: '999 ms left', nowMs: T0 + 899_001, expected: 0 },
    { name: 'exactly at expiry', nowMs: T0 + 900_000, expected: 0 },
    { name: 'after expiry, never negative', nowMs: T0 + 1_000_000, expected: 0 },
  ];
  for (const row of table) {
    void it(`${row.name} → ${String(row.expected)}`, () => {
      assert.equal(secondsLeft(HELD, row.nowMs), row.expected);
    });
  }
});

void describe('jwtDocument', () => {
  void it('has exactly the fields of SPEC.md, in order, with an RFC 3339 expiry', () => {
    const document = jwtDocument(HELD, T0 + 100_500);
    assert.deepEqual(document, { accessToken: JWT, tokenType: 'Bearer', expiresAt: '2023-11-14T22:28:20.000Z', expiresIn: 799 });
    assert.deepEqual(Object.keys(document), ['accessToken', 'tokenType', 'expiresAt', 'expiresIn']);
  });

  void it('keeps the tokenType as the upstream gave it', () => {
    assert.equal(jwtDocument({ ...HELD, tokenType: 'bearer' }, T0).tokenType, 'bearer');
  });
});

void describe('renderJwt', () => {
  void it('raw: the JWT and nothing else, no trailing newline', () => {
    const text = renderJwt(HELD, 'raw', T0);
    assert.equal(text, JWT);
    assert.ok(!text.endsWith('\n'));
  });

  void it('json: the document as one JSON object', () => {
    const text = renderJwt(HELD, 'json', T0 + 60_000);
    assert.deepEqual(JSON.parse(text), { accessToken: JWT, tokenType: 'Bearer', expiresAt: '2023-11-14T22:28:20.000Z', expiresIn: 840 });
  });

  for (const format of ['raw', 'json'] as const) {
    void it(`${format}: reads back with parseJwtFile to the same JWT and expiry`, () => {
      assert.deepEqual(parseJwtFile(renderJwt(HELD, format, T0)), { jwt: JWT, tokenType: 'Bearer', expiresAtMs: HELD.expiresAtMs });
    });
  }
});
