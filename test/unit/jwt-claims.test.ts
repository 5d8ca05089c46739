import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fingerprint } from '../../src/core/fingerprint.ts';
import { expiryFromClaims, isThreePartJwt } from '../../src/upstream/jwt-claims.ts';

const b64 = (text: string): string => Buffer.from(text).toString('base64url');
const HEADER = b64('{"alg":"HS256","typ":"JWT"}');
const SIGNATURE = b64('signature');
/** A JWT whose payload is exactly `payloadJson` (which need not be an object, or JSON at all). */
const jwtWith = (payloadJson: string): string => `${HEADER}.${b64(payloadJson)}.${SIGNATURE}`;

void describe('isThreePartJwt', () => {
  const table: readonly (readonly [string, boolean])[] = [
    [jwtWith('{"exp":1700000000}'), true],
    ['a.b.c', true],
    ['A-z_0.9-_.x', true],
    ['', false],
    ['a.b', false],
    ['a.b.c.d', false],
    ['a..c', false],
    ['.b.c', false],
    ['a.b.', false],
    ['a.b.c ', false],
    [' a.b.c', false],
    ['a.b.c\n', false],
    ['a.b+c.d', false],
    ['a.b/c.d', false],
    ['a.b=.c', false],
    ['a b.c.d', false],
    ['ek_live_abc', false],
  ];
  for (const [value, expected] of table) {
    void it(`${JSON.stringify(value.length > 30 ? `${value.slice(0, 30)}…` : value)} → ${String(expected)}`, () => {
      assert.equal(isThreePartJwt(value), expected);
    });
  }
});

void describe('expiryFromClaims', () => {
  const table: readonly { name: string; jwt: string; expected: number | undefined }[] = [
    { name: 'numeric exp, in ms', jwt: jwtWith('{"exp":1700000900}'), expected: 1_700_000_900_000 },
    { name: 'fractional exp', jwt: jwtWith('{"exp":1700000900.5}'), expected: 1_700_000_900_500 },
    { name: 'exp 0', jwt: jwtWith('{"exp":0}'), expected: 0 },
    { name: 'exp beside other claims', jwt: jwtWith('{"sub":"x","iat":1700000000,"exp":1700000900,"aud":["a"]}'), expected: 1_700_000_900_000 },
    { name: 'no exp', jwt: jwtWith('{"sub":"x"}'), expected: undefined },
    { name: 'exp as a string', jwt: jwtWith('{"exp":"1700000900"}'), expected: undefined },
    { name: 'exp null', jwt: jwtWith('{"exp":null}'), expected: undefined },
    { name: 'exp an object', jwt: jwtWith('{"exp":{"at":1}}'), expected: undefined },
    { name: 'exp 1e999 (Infinity)', jwt: jwtWith('{"exp":1e999}'), expected: undefined },
    { name: 'payload an array', jwt: jwtWith('[1700000900]'), expected: undefined },
    { name: 'payload a number', jwt: jwtWith('1700000900'), expected: undefined },
    { name: 'payload not JSON', jwt: jwtWith('exp=1700000900'), expected: undefined },
    { name: 'payload not base64url', jwt: `${HEADER}.!!!.${SIGNATURE}`, expected: undefined },
    { name: 'opaque three parts', jwt: 'opaque.token.here', expected: undefined },
    { name: 'two parts', jwt: `${HEADER}.${b64('{"exp":1700000900}')}`, expected: undefined },
    { name: 'garbage', jwt: 'garbage', expected: undefined },
    { name: 'empty', jwt: '', expected: undefined },
  ];
  for (const row of table) {
    void it(`${row.name} → ${String(row.expected)}`, () => {
      assert.equal(expiryFromClaims(row.jwt), row.expected);
    });
  }
});

void describe('fingerprint', () => {
  // Known SHA-256 vectors: the fingerprint is their first 8 hex digits.
  const table: readonly (readonly [string, string])[] = [
    ['', 'e3b0c442'],
    ['abc', 'ba7816bf'],
    ['The quick brown fox jumps over the lazy dog', 'd7a8fbb3'],
  ];
  for (const [input, expected] of table) {
    void it(`of ${JSON.stringify(input)} is ${expected}`, () => {
      assert.equal(fingerprint(input), expected);
    });
  }

  void it('is 8 lower-case hex digits, stable, and differs between tokens', () => {
    const a = fingerprint('ek_live_aaaaaaaaaaaaaaaa');
    const b = fingerprint('ek_live_aaaaaaaaaaaaaaab');
    assert.match(a, /^[0-9a-f]{8}$/);
    assert.equal(fingerprint('ek_live_aaaaaaaaaaaaaaaa'), a);
    assert.notEqual(a, b);
  });

  void it('hashes the UTF-8 bytes', () => {
    // sha256(c3 a9) starts 4a99557e; the Latin-1 byte e9 would give de2e331d.
    assert.equal(fingerprint('\u00e9'), '4a99557e');
  });
});
