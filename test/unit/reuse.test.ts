import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fingerprint } from '../../src/core/fingerprint.ts';
import { entryMac, entryVerifies, type JwtEntry } from '../../src/disk/state-file.ts';
import type { StoredJwt } from '../../src/disk/jwt-file.ts';
import { judgeJwtOnDisk, type ReuseCredential } from '../../src/refresh/reuse.ts';

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJlLXJldXNlLXRhYmxl';
const OTHER_JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.cGxhbnRlZC1zaWduYXR1cmU';
const KEY = Buffer.alloc(32, 7);
const WRONG_KEY = Buffer.alloc(32, 9);
const ID = 'abcd1234';

function stored(expiresAtMs: number | undefined, jwt = JWT): StoredJwt {
  return { jwt, tokenType: 'Bearer', expiresAtMs };
}

function entry(fields: Partial<Omit<JwtEntry, 'mac'>> = {}, options: { key?: Buffer; jwt?: string } = {}): JwtEntry {
  const base = { key: ID, fingerprint: fingerprint(options.jwt ?? JWT), issuedAtMs: T0 - 100_000, expiresAtMs: T0 + 800_000, refreshAtMs: T0 + 530_000, ...fields };
  return { ...base, mac: entryMac(options.key ?? KEY, base, options.jwt ?? JWT) };
}

const credential: ReuseCredential = { identity: ID, verifies: (e, jwt) => entryVerifies(KEY, e, jwt) };

void describe('judgeJwtOnDisk with a credential (run, once): only a JWT this sidecar wrote for it, with life left', () => {
  const table: readonly { name: string; disk: { stored: StoredJwt | undefined; entry: JwtEntry | undefined }; usable: boolean; reason?: RegExp; expiresAtMs?: number }[] = [
    { name: 'ours, plenty left', disk: { stored: stored(T0 + 800_000), entry: entry() }, usable: true, expiresAtMs: T0 + 800_000 },
    { name: 'ours, the entry says earlier than exp: the earlier', disk: { stored: stored(T0 + 900_000), entry: entry({ expiresAtMs: T0 + 700_000 }) }, usable: true, expiresAtMs: T0 + 700_000 },
    { name: 'ours, a raw JWT without exp: the entry\'s expiry', disk: { stored: stored(undefined), entry: entry() }, usable: true, expiresAtMs: T0 + 800_000 },
    { name: 'ours, just over min-ttl left', disk: { stored: stored(T0 + MIN + 1), entry: entry({ expiresAtMs: T0 + MIN + 1 }) }, usable: true },
    { name: 'ours, exactly min-ttl left', disk: { stored: stored(T0 + MIN), entry: entry({ expiresAtMs: T0 + MIN }) }, usable: false, reason: /--min-ttl/ },
    { name: 'ours, expired', disk: { stored: stored(T0 - 1), entry: entry({ expiresAtMs: T0 - 1 }) }, usable: false, reason: /expired/ },
    { name: 'no JWT file', disk: { stored: undefined, entry: entry() }, usable: false, reason: /missing/ },
    { name: 'no state entry', disk: { stored: stored(T0 + 800_000), entry: undefined }, usable: false, reason: /no state entry/ },
    { name: 'issued for another credential', disk: { stored: stored(T0 + 800_000), entry: entry({ key: 'ffff0000' }) }, usable: false, reason: /another credential/ },
    // Found: a forged state file plus a planted JWT was adopted after a restart and served with no exchange.
    { name: 'a planted JWT under our genuine entry', disk: { stored: stored(T0 + 800_000, OTHER_JWT), entry: entry() }, usable: false, reason: /not written by this sidecar/ },
    { name: 'a forged entry (MAC with another key) for a planted JWT', disk: { stored: stored(T0 + 800_000, OTHER_JWT), entry: entry({}, { key: WRONG_KEY, jwt: OTHER_JWT }) }, usable: false, reason: /not written by this sidecar/ },
    { name: 'a genuine entry whose expiry was edited', disk: { stored: stored(T0 + 800_000), entry: { ...entry(), expiresAtMs: T0 + 86_400_000 } }, usable: false, reason: /not written by this sidecar/ },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const verdict = judgeJwtOnDisk(row.disk, credential, MIN, T0);
      assert.equal(verdict.usable, row.usable, verdict.usable ? 'usable' : verdict.reason);
      if (!verdict.usable && row.reason !== undefined) assert.match(verdict.reason, row.reason);
      if (row.expiresAtMs !== undefined) assert.equal(verdict.expiresAtMs, row.expiresAtMs);
    });
  }

  void it('a reusable verdict carries the entry\'s issue time and refresh point, so a restart keeps the schedule', () => {
    assert.deepEqual(judgeJwtOnDisk({ stored: stored(T0 + 800_000), entry: entry() }, credential, MIN, T0), {
      usable: true, expiresAtMs: T0 + 800_000, issuedAtMs: T0 - 100_000, refreshAtMs: T0 + 530_000,
    });
  });
});

void describe('judgeJwtOnDisk without a credential (check): the same expiry rule, the entry only when it names the JWT', () => {
  const table: readonly { name: string; disk: { stored: StoredJwt | undefined; entry: JwtEntry | undefined }; usable: boolean; expiresAtMs: number | undefined }[] = [
    { name: 'exp decodes, plenty left', disk: { stored: stored(T0 + 800_000), entry: undefined }, usable: true, expiresAtMs: T0 + 800_000 },
    { name: 'no exp, the entry names it', disk: { stored: stored(undefined), entry: entry() }, usable: true, expiresAtMs: T0 + 800_000 },
    { name: 'no exp, the entry names another JWT', disk: { stored: stored(undefined, OTHER_JWT), entry: entry() }, usable: false, expiresAtMs: undefined },
    { name: 'exactly min-ttl left', disk: { stored: stored(T0 + MIN), entry: undefined }, usable: false, expiresAtMs: T0 + MIN },
    { name: 'no JWT', disk: { stored: undefined, entry: undefined }, usable: false, expiresAtMs: undefined },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const verdict = judgeJwtOnDisk(row.disk, undefined, MIN, T0);
      assert.equal(verdict.usable, row.usable);
      assert.equal(verdict.expiresAtMs, row.expiresAtMs);
    });
  }
});
