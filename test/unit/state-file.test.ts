import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fingerprint } from '../../src/core/fingerprint.ts';
import { deriveStateKey } from '../../src/credentials/credential.ts';
import {
  EMPTY_STATE,
  entryMac,
  entryVerifies,
  parseState,
  recordsForBudget,
  recordsForFile,
  renderState,
  statePathFor,
  type JwtEntry,
  type StateFile,
} from '../../src/disk/state-file.ts';

const T0 = 1_700_000_000_000;
const MONO = 5_000_000;
const BOOT = '0c4b8a1e-2f3d-4e5f-8a9b-0123456789ab';
const API_TOKEN = 'ek_live_StateFileSecret0123456789';
const JWT = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('{"exp":1700000900}').toString('base64url')}.c2lnbmF0dXJlLXNlY3JldA`;
const KEY = deriveStateKey(API_TOKEN);
const ID = fingerprint(API_TOKEN);
const JWT_SHAPED = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/;

function entry(): JwtEntry {
  const fields = { key: ID, fingerprint: fingerprint(JWT), issuedAtMs: T0, expiresAtMs: T0 + 900_000, refreshAtMs: T0 + 612_000 };
  return { ...fields, mac: entryMac(KEY, fields, JWT) };
}

const FULL: StateFile = {
  bootId: BOOT,
  exchanges: [{ key: ID, id: 'a1b2c3d4', at: T0 - 30_000, mono: MONO - 30_000 }, { key: 'abcdef01', id: '0f0f0f0f', at: T0, mono: MONO }],
  jwt: entry(),
};

void describe('renderState / parseState', () => {
  const table: readonly { name: string; state: StateFile }[] = [
    { name: 'a full state', state: FULL },
    { name: 'the empty state', state: EMPTY_STATE },
    { name: 'records without a boot id (off Linux)', state: { bootId: undefined, exchanges: [{ key: ID, id: '12345678', at: T0, mono: undefined }], jwt: undefined } },
  ];
  for (const row of table) {
    void it(`round-trips ${row.name}`, () => {
      assert.deepEqual(parseState(renderState(row.state)), row.state);
    });
  }

  void it('holds no secret: no API token, no JWT, nothing JWT-shaped', () => {
    const text = renderState(FULL);
    assert.ok(!text.includes(API_TOKEN) && !text.includes(JWT));
    assert.doesNotMatch(text, JWT_SHAPED);
  });

  const damaged: readonly { name: string; text: string }[] = [
    { name: 'not JSON', text: '{"version": 2,' },
    { name: 'an array', text: '[]' },
    { name: 'version 1 (the old format: started afresh)', text: '{"version":1,"exchanges":[]}' },
    { name: 'no version', text: '{"exchanges":[]}' },
  ];
  for (const row of damaged) {
    void it(`reads ${row.name} as no state`, () => {
      assert.equal(parseState(row.text), undefined);
    });
  }

  void it('drops malformed records and a malformed entry, keeps the rest', () => {
    const text = JSON.stringify({
      version: 2,
      bootId: BOOT,
      exchanges: [{ key: ID, at: T0 }, { key: 'NOTHEX!!', at: T0 }, { key: ID, at: 'soon' }, { key: ID, at: T0, mono: 'x' }, null],
      jwt: { ...entry(), mac: 'short' },
    });
    assert.deepEqual(parseState(text), { bootId: BOOT, exchanges: [{ key: ID, id: undefined, at: T0, mono: undefined }, { key: ID, id: undefined, at: T0, mono: undefined }], jwt: undefined });
  });

  void it('lives beside the JWT file', () => {
    assert.equal(statePathFor('/var/run/enkryptify/jwt'), '/var/run/enkryptify/jwt.state.json');
  });
});

void describe('the JWT entry\'s MAC', () => {
  void it('verifies for the same key and JWT', () => {
    assert.equal(entryVerifies(KEY, entry(), JWT), true);
  });
  const table: readonly { name: string; key: Buffer; entry: JwtEntry; jwt: string }[] = [
    { name: 'another key (another API token)', key: deriveStateKey('ek_live_another'), entry: entry(), jwt: JWT },
    { name: 'another JWT under the same entry (a planted file)', key: KEY, entry: entry(), jwt: `${JWT}x` },
    { name: 'an edited expiry', key: KEY, entry: { ...entry(), expiresAtMs: T0 + 86_400_000 }, jwt: JWT },
    { name: 'an edited refresh point', key: KEY, entry: { ...entry(), refreshAtMs: T0 }, jwt: JWT },
    { name: 'an edited identity', key: KEY, entry: { ...entry(), key: 'ffff0000' }, jwt: JWT },
  ];
  for (const row of table) {
    void it(`refuses ${row.name}`, () => {
      assert.equal(entryVerifies(row.key, row.entry, row.jwt), false);
    });
  }
});

void describe('records between the file and the budget (monotonic time of this boot)', () => {
  const now = { wallMs: T0, monoMs: MONO, bootId: BOOT };

  void it('same boot: the monotonic time as written, whatever the wall clock did since', () => {
    const state = { bootId: BOOT, exchanges: [{ key: ID, id: undefined, at: T0 - 999_999_999, mono: MONO - 10_000 }] };
    assert.deepEqual(recordsForBudget(state, now), [{ key: ID, atMs: MONO - 10_000 }]);
  });

  void it('another boot or none: from wall time', () => {
    const state = { bootId: 'another-boot', exchanges: [{ key: ID, id: undefined, at: T0 - 10_000, mono: 123 }] };
    assert.deepEqual(recordsForBudget(state, now), [{ key: ID, atMs: MONO - 10_000 }]);
    assert.deepEqual(recordsForBudget({ bootId: undefined, exchanges: [{ key: ID, id: undefined, at: T0 - 10_000, mono: undefined }] }, now), [{ key: ID, atMs: MONO - 10_000 }]);
  });

  // Found: back 5 min plus restarts gave 20 exchanges in 34 s, because records "in the future" were dropped.
  void it('never in the future: a wall clock that went back keeps the records, as if they were now', () => {
    const state = { bootId: undefined, exchanges: [{ key: ID, id: undefined, at: T0 + 300_000, mono: undefined }] };
    assert.deepEqual(recordsForBudget(state, now), [{ key: ID, atMs: MONO }]);
    const forged = { bootId: BOOT, exchanges: [{ key: ID, id: undefined, at: T0, mono: MONO + 3_600_000 }] };
    assert.deepEqual(recordsForBudget(forged, now), [{ key: ID, atMs: MONO }], 'a forged far-future record blocks for one window at most');
  });

  void it('round-trips on the same boot', () => {
    const records = [{ key: ID, atMs: MONO - 5_000, id: '00000001' }, { key: 'abcdef01', atMs: MONO, id: '00000002' }];
    assert.deepEqual(recordsForBudget({ bootId: BOOT, exchanges: recordsForFile(records, now) }, now), records);
  });
});
