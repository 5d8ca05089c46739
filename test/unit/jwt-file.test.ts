import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAX_JWT_FILE_BYTES, parseJwtFile, readJwtFile, removeFile, type StoredJwt } from '../../src/disk/jwt-file.ts';
import { diskErrorOf, scratchDirectories } from '../helpers/scratch.ts';

const scratch = scratchDirectories('ek-sidecar-jwt-file-');

const T0 = 1_700_000_000_000;
const T0_S = T0 / 1000;
const b64 = (text: string): string => Buffer.from(text).toString('base64url');
const jwtWith = (payload: object): string => `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(JSON.stringify(payload))}.${b64('file-test-signature')}`;
const JWT = jwtWith({ exp: T0_S + 900 });
const OPAQUE = 'opaque-header.opaque-payload.opaque-signature';

void describe('parseJwtFile', () => {
  const later = jwtWith({ exp: T0_S + 3_600 });
  const table: readonly { name: string; text: string; expected: StoredJwt | undefined }[] = [
    { name: 'raw JWT', text: JWT, expected: { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 } },
    { name: 'raw JWT with a trailing newline', text: `${JWT}\n`, expected: { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 } },
    { name: 'raw opaque JWT: expiry unknown', text: OPAQUE, expected: { jwt: OPAQUE, tokenType: 'Bearer', expiresAtMs: undefined } },
    {
      name: 'json, expiresAt earlier than exp',
      text: JSON.stringify({ accessToken: later, tokenType: 'Bearer', expiresAt: new Date(T0 + 900_000).toISOString(), expiresIn: 900 }),
      expected: { jwt: later, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 },
    },
    {
      name: 'json, exp earlier than expiresAt',
      text: JSON.stringify({ accessToken: JWT, tokenType: 'Bearer', expiresAt: new Date(T0 + 3_600_000).toISOString(), expiresIn: 3_600 }),
      expected: { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 },
    },
    {
      name: 'json with an opaque JWT: expiresAt',
      text: JSON.stringify({ accessToken: OPAQUE, tokenType: 'bearer', expiresAt: new Date(T0 + 600_000).toISOString(), expiresIn: 600 }),
      expected: { jwt: OPAQUE, tokenType: 'bearer', expiresAtMs: T0 + 600_000 },
    },
    {
      name: 'json without a usable expiresAt: exp',
      text: JSON.stringify({ accessToken: JWT, tokenType: 'Bearer', expiresAt: 'soon' }),
      expected: { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 },
    },
    {
      name: 'json with neither: unknown',
      text: JSON.stringify({ accessToken: OPAQUE }),
      expected: { jwt: OPAQUE, tokenType: 'Bearer', expiresAtMs: undefined },
    },
    { name: 'empty', text: '', expected: undefined },
    { name: 'garbage', text: 'not a jwt', expected: undefined },
    { name: 'two parts', text: 'a.b', expected: undefined },
    { name: 'damaged json', text: `{"accessToken":"${JWT}"`, expected: undefined },
    { name: 'json without accessToken', text: '{"tokenType":"Bearer"}', expected: undefined },
    { name: 'json whose accessToken is not a JWT', text: '{"accessToken":"ek_live_nope"}', expected: undefined },
    { name: 'json null', text: 'null', expected: undefined },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.deepEqual(parseJwtFile(row.text), row.expected);
    });
  }
});

void describe('readJwtFile', () => {
  void it('reads a raw file', async () => {
    const path = join(await scratch.fresh(), 'jwt');
    await writeFile(path, JWT);
    assert.deepEqual(await readJwtFile(path), { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 });
  });

  void it('reads a json file', async () => {
    const path = join(await scratch.fresh(), 'jwt');
    await writeFile(path, JSON.stringify({ accessToken: JWT, tokenType: 'Bearer', expiresAt: new Date(T0 + 600_000).toISOString(), expiresIn: 600 }));
    assert.deepEqual(await readJwtFile(path), { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 600_000 });
  });

  void it('throws JwtFileError for a missing file', async () => {
    const path = join(await scratch.fresh(), 'jwt');
    const error = await diskErrorOf(readJwtFile(path));
    assert.match(error.message, /ENOENT/);
    assert.ok(error.message.includes(path));
  });

  void it('throws JwtFileError for a file without a JWT, without quoting it', async () => {
    const path = join(await scratch.fresh(), 'jwt');
    await writeFile(path, 'ek_live_DoNotQuoteMe');
    const error = await diskErrorOf(readJwtFile(path));
    assert.match(error.message, /does not hold a JWT/);
    assert.ok(!error.message.includes('DoNotQuoteMe'));
  });

  void it('never follows a link at the path, even to a valid JWT file', async () => {
    const dir = await scratch.fresh();
    await writeFile(join(dir, 'planted'), JWT);
    await symlink(join(dir, 'planted'), join(dir, 'jwt'));
    const error = await diskErrorOf(readJwtFile(join(dir, 'jwt')));
    assert.equal(error.code, 'refused_link');
    assert.match(error.message, /symbolic link/);
  });

  void it('refuses a FIFO without blocking', async () => {
    const path = join(await scratch.fresh(), 'jwt');
    execFileSync('mkfifo', [path]);
    const error = await diskErrorOf(readJwtFile(path));
    assert.equal(error.code, 'unreadable');
    assert.match(error.message, /FIFO/);
  });

  void it(`refuses a file over ${MAX_JWT_FILE_BYTES} bytes`, async () => {
    const path = join(await scratch.fresh(), 'jwt');
    await writeFile(path, `${JWT}${' '.repeat(MAX_JWT_FILE_BYTES)}`);
    const error = await diskErrorOf(readJwtFile(path));
    assert.equal(error.code, 'unreadable');
    assert.match(error.message, /larger than 65536 bytes/);
  });

  void it(`reads a file of exactly ${MAX_JWT_FILE_BYTES} bytes`, async () => {
    const path = join(await scratch.fresh(), 'jwt');
    await writeFile(path, `${JWT}${' '.repeat(MAX_JWT_FILE_BYTES - JWT.length)}`);
    assert.equal((await readJwtFile(path)).jwt, JWT);
  });
});

void describe('removeFile', () => {
  void it('removes a file and ignores one that is gone', async () => {
    const dir = await scratch.fresh();
    const path = join(dir, 'jwt');
    await writeFile(path, JWT);
    await removeFile(path);
    await removeFile(path);
    assert.deepEqual(await readdir(dir), []);
  });
});
