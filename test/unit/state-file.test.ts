import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fingerprint } from '../../src/upstream/jwt-claims.ts';
import { EMPTY_STATE, parseState, readState, renderState, statePathFor, writeState, type SidecarState } from '../../src/disk/state-file.ts';

const T0 = 1_700_000_000_000;
const API_TOKEN = 'ek_live_StateFileSecret0123456789';
const JWT = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('{"exp":1700000900}').toString('base64url')}.c2lnbmF0dXJlLXNlY3JldA`;
const TOKEN_FP = fingerprint(API_TOKEN);
const JWT_FP = fingerprint(JWT);
const JWT_SHAPED = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/;

const FULL: SidecarState = {
  tokenFingerprint: TOKEN_FP,
  jwtFingerprint: JWT_FP,
  issuedAtMs: T0,
  expiresAtMs: T0 + 900_000,
  refreshAtMs: T0 + 612_345,
  exchanges: [
    { atMs: T0 - 30_000, fingerprint: TOKEN_FP },
    { atMs: T0, fingerprint: TOKEN_FP },
    { atMs: T0 - 10_000, fingerprint: 'abcdef01' },
  ],
};

void describe('renderState / parseState', () => {
  const table: readonly { name: string; state: SidecarState }[] = [
    { name: 'a full state', state: FULL },
    { name: 'the empty state', state: EMPTY_STATE },
    { name: 'exchanges only (no JWT yet)', state: { ...EMPTY_STATE, exchanges: [{ atMs: T0, fingerprint: TOKEN_FP }] } },
  ];
  for (const row of table) {
    void it(`round-trips ${row.name}`, () => {
      assert.deepEqual(parseState(renderState(row.state)), row.state);
    });
  }

  void it('renders times as RFC 3339 and a version, ending in a newline', () => {
    const text = renderState(FULL);
    assert.ok(text.endsWith('}\n'));
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.equal(parsed.version, 1);
    assert.equal(parsed.expiresAt, '2023-11-14T22:28:20.000Z');
    assert.equal(parsed.issuedAt, '2023-11-14T22:13:20.000Z');
  });

  void it('never holds the API token or the JWT', () => {
    const text = renderState(FULL);
    assert.ok(!text.includes('ek_live_'));
    assert.ok(!text.includes(API_TOKEN));
    assert.ok(!text.includes(JWT));
    for (const part of JWT.split('.')) assert.ok(!text.includes(part));
    assert.doesNotMatch(text, JWT_SHAPED);
  });
});

void describe('parseState refuses', () => {
  const table: readonly (readonly [string, string])[] = [
    ['damaged JSON', '{"version":1,"exchanges":['],
    ['an empty file', ''],
    ['JSON null', 'null'],
    ['a JSON array', '[1]'],
    ['a JSON string', '"version"'],
    ['no version', '{"exchanges":[]}'],
    ['version 2', '{"version":2,"exchanges":[]}'],
    ['version "1"', '{"version":"1","exchanges":[]}'],
  ];
  for (const [name, text] of table) {
    void it(name, () => {
      assert.equal(parseState(text), undefined);
    });
  }
});

void describe('parseState filters bad fields', () => {
  void it('keeps only well-formed exchange records', () => {
    const text = JSON.stringify({
      version: 1,
      exchanges: [
        { atMs: T0, fingerprint: 'abcdef01' },
        { atMs: String(T0), fingerprint: 'abcdef01' },
        { atMs: T0, fingerprint: 'ABCDEF01' },
        { atMs: T0, fingerprint: 'abcdef0' },
        { atMs: T0, fingerprint: API_TOKEN },
        { atMs: null, fingerprint: 'abcdef01' },
        { fingerprint: 'abcdef01' },
        { atMs: T0 + 1 },
        null,
        42,
        'abcdef01',
        { atMs: T0 + 2, fingerprint: 'abcdef02', extra: 'dropped' },
      ],
    });
    assert.deepEqual(parseState(text)?.exchanges, [
      { atMs: T0, fingerprint: 'abcdef01' },
      { atMs: T0 + 2, fingerprint: 'abcdef02' },
    ]);
  });

  const fields: readonly { name: string; body: Record<string, unknown>; expected: Partial<SidecarState> }[] = [
    { name: 'exchanges not an array', body: { exchanges: { atMs: T0 } }, expected: { exchanges: [] } },
    { name: 'exchanges missing', body: {}, expected: { exchanges: [] } },
    { name: 'a token fingerprint that is not 8 hex', body: { tokenFingerprint: API_TOKEN }, expected: { tokenFingerprint: undefined } },
    { name: 'a JWT fingerprint that is the JWT', body: { jwtFingerprint: JWT }, expected: { jwtFingerprint: undefined } },
    { name: 'an unparseable expiry', body: { expiresAt: 'tomorrow-ish' }, expected: { expiresAtMs: undefined } },
    { name: 'an expiry as a number', body: { expiresAt: T0 }, expected: { expiresAtMs: undefined } },
    { name: 'a refresh point', body: { refreshAt: '2023-11-14T22:23:20.000Z' }, expected: { refreshAtMs: T0 + 600_000 } },
  ];
  for (const row of fields) {
    void it(row.name, () => {
      const state = parseState(JSON.stringify({ version: 1, ...row.body }));
      assert.ok(state !== undefined);
      for (const [key, value] of Object.entries(row.expected)) assert.deepEqual(state[key as keyof SidecarState], value, key);
    });
  }
});

void describe('statePathFor', () => {
  void it('sits beside the JWT file', () => {
    assert.equal(statePathFor('/var/run/enkryptify/jwt'), '/var/run/enkryptify/jwt.state.json');
  });
});

void describe('readState / writeState', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ek-sidecar-state-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void it('reads back what it wrote, mode 0644', async () => {
    const path = statePathFor(join(dir, 'jwt'));
    await writeState(path, FULL);
    assert.deepEqual(await readState(path), { state: FULL, problem: undefined });
    assert.equal((await stat(path)).mode & 0o777, 0o644);
  });

  void it('treats a missing file as the empty state, silently', async () => {
    assert.deepEqual(await readState(join(dir, 'nothing.state.json')), { state: EMPTY_STATE, problem: undefined });
  });

  void it('treats a damaged file as the empty state and says so', async () => {
    const path = join(dir, 'damaged.state.json');
    await writeFile(path, '{"version":1,');
    const read = await readState(path);
    assert.deepEqual(read.state, EMPTY_STATE);
    assert.match(read.problem ?? '', /damaged/);
    assert.ok(read.problem?.includes(path));
  });

  void it('treats an unreadable path as the empty state and says so', async () => {
    const read = await readState(dir);
    assert.deepEqual(read.state, EMPTY_STATE);
    assert.match(read.problem ?? '', /unreadable/);
  });
});
