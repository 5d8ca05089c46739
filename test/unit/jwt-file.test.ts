import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiskError } from '../../src/core/errors.ts';
import { parseJwtFile, probeJwtPath, readJwtFile, removeFile, removeStaleTemporaryFiles, writeFileAtomically, type StoredJwt } from '../../src/disk/jwt-file.ts';

const T0 = 1_700_000_000_000;
const T0_S = T0 / 1000;
const b64 = (text: string): string => Buffer.from(text).toString('base64url');
const jwtWith = (payload: object): string => `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(JSON.stringify(payload))}.${b64('file-test-signature')}`;
const JWT = jwtWith({ exp: T0_S + 900 });
const OPAQUE = 'opaque-header.opaque-payload.opaque-signature';
const RUNNING_AS_ROOT = process.getuid?.() === 0;

let root = '';
let cases = 0;
/** A fresh empty directory per test, so tests do not see each other's files. */
async function freshDir(): Promise<string> {
  const dir = join(root, `case-${String(++cases)}`);
  await mkdir(dir);
  return dir;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ek-sidecar-jwt-file-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The DiskError `promise` rejects with. */
async function jwtFileErrorOf(promise: Promise<unknown>): Promise<DiskError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DiskError, `expected a DiskError, got ${String(error)}`);
    return error;
  }
  assert.fail('no error');
}

void describe('writeFileAtomically', () => {
  for (const mode of [0o600, 0o640, 0o644, 0o400]) {
    void it(`writes the content with mode ${mode.toString(8)}`, async () => {
      const path = join(await freshDir(), 'jwt');
      await writeFileAtomically(path, JWT, mode);
      assert.equal(await readFile(path, 'utf8'), JWT);
      assert.equal((await stat(path)).mode & 0o777, mode);
    });
  }

  void it('replaces the content and applies the new mode, leaving no temporary files', async () => {
    const dir = await freshDir();
    const path = join(dir, 'jwt');
    await writeFileAtomically(path, 'first.jwt.value', 0o644);
    await writeFileAtomically(path, JWT, 0o640);
    assert.equal(await readFile(path, 'utf8'), JWT);
    assert.equal((await stat(path)).mode & 0o777, 0o640);
    assert.deepEqual(await readdir(dir), ['jwt']);
  });

  void it('serialises concurrent writes: the last one wins, nothing else is left', async () => {
    const dir = await freshDir();
    const path = join(dir, 'jwt');
    const values = Array.from({ length: 10 }, (_, index) => jwtWith({ exp: T0_S + index }));
    await Promise.all(values.map((value) => writeFileAtomically(path, value, 0o640)));
    assert.equal(await readFile(path, 'utf8'), values.at(-1));
    assert.deepEqual(await readdir(dir), ['jwt']);
  });

  void it('throws JwtFileError naming the path when the parent is a regular file', async () => {
    const dir = await freshDir();
    const parent = join(dir, 'not-a-directory');
    await writeFile(parent, 'plain');
    const path = join(parent, 'jwt');
    const error = await jwtFileErrorOf(writeFileAtomically(path, JWT, 0o640));
    assert.equal(error.path, path);
    assert.ok(error.message.includes(path));
    assert.ok(!error.message.includes(JWT), 'the content is not in the message');
    assert.deepEqual(await readdir(dir), ['not-a-directory']);
    assert.equal(await readFile(parent, 'utf8'), 'plain');
  });

  void it('leaves the old thing intact and no temporary file when the rename fails', async () => {
    // Root-proof failure after the temporary file exists: the target is a non-empty directory, so rename fails.
    const dir = await freshDir();
    const path = join(dir, 'jwt');
    await mkdir(path);
    await writeFile(join(path, 'keep'), 'old');
    const error = await jwtFileErrorOf(writeFileAtomically(path, JWT, 0o640));
    assert.ok(!error.message.includes(JWT));
    assert.equal(await readFile(join(path, 'keep'), 'utf8'), 'old');
    assert.deepEqual(await readdir(dir), ['jwt']);
  });

  void it('leaves the old file intact in a read-only directory', { skip: RUNNING_AS_ROOT ? 'running as root: chmod 0555 does not stop root from writing (covered by the parent-is-a-file and rename-fails cases)' : false }, async () => {
    const dir = await freshDir();
    const path = join(dir, 'jwt');
    await writeFileAtomically(path, 'old.jwt.value', 0o640);
    await chmod(dir, 0o555);
    try {
      await jwtFileErrorOf(writeFileAtomically(path, JWT, 0o640));
      assert.equal(await readFile(path, 'utf8'), 'old.jwt.value');
      assert.deepEqual(await readdir(dir), ['jwt']);
    } finally {
      await chmod(dir, 0o755);
    }
  });
});

void describe('probeJwtPath', () => {
  void it('accepts a writable directory and leaves nothing behind', async () => {
    const dir = await freshDir();
    await probeJwtPath(join(dir, 'jwt'));
    assert.deepEqual(await readdir(dir), []);
  });

  void it('accepts a path where a JWT file already exists, without touching it', async () => {
    const dir = await freshDir();
    const path = join(dir, 'jwt');
    await writeFile(path, JWT);
    await probeJwtPath(path);
    assert.equal(await readFile(path, 'utf8'), JWT);
    assert.deepEqual(await readdir(dir), ['jwt']);
  });

  const table: readonly { name: string; setup: (dir: string) => Promise<string>; message: RegExp }[] = [
    { name: 'a missing directory', setup: (dir) => Promise.resolve(join(dir, 'missing', 'jwt')), message: /missing.*not usable|not usable.*ENOENT/ },
    {
      name: 'a parent that is a file',
      setup: async (dir) => {
        await writeFile(join(dir, 'file'), 'x');
        return join(dir, 'file', 'jwt');
      },
      message: /not a directory/,
    },
    {
      name: 'a path that is a directory',
      setup: async (dir) => {
        await mkdir(join(dir, 'jwt'));
        return join(dir, 'jwt');
      },
      message: /is a directory/,
    },
  ];
  for (const row of table) {
    void it(`refuses ${row.name}, naming the path`, async () => {
      const path = await row.setup(await freshDir());
      const error = await jwtFileErrorOf(probeJwtPath(path));
      assert.equal(error.path, path);
      assert.ok(error.message.includes(path));
      assert.match(error.message, row.message);
    });
  }
});

void describe('removeStaleTemporaryFiles', () => {
  void it('removes <name>.<digits> beside the JWT file and nothing else', async () => {
    const dir = await freshDir();
    const names = ['jwt', 'jwt.12345', 'jwt.4294967295', 'jwt.state.json', 'jwt.state.json.777', 'other.123', 'jwt.12a', 'jwt.', 'xjwt.123', 'jwt.123.bak'];
    for (const name of names) await writeFile(join(dir, name), 'x');
    await removeStaleTemporaryFiles(join(dir, 'jwt'));
    assert.deepEqual((await readdir(dir)).sort(), ['jwt', 'jwt.', 'jwt.12a', 'jwt.123.bak', 'jwt.state.json', 'jwt.state.json.777', 'other.123', 'xjwt.123'].sort());
  });

  void it('treats the file name literally, not as a pattern', async () => {
    const dir = await freshDir();
    for (const name of ['j.t.1', 'jwt.t.1', 'j.t']) await writeFile(join(dir, name), 'x');
    await removeStaleTemporaryFiles(join(dir, 'j.t'));
    assert.deepEqual((await readdir(dir)).sort(), ['j.t', 'jwt.t.1']);
  });

  void it('does not fail when the directory is missing', async () => {
    await removeStaleTemporaryFiles(join(root, 'no-such-dir', 'jwt'));
  });
});

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
    const path = join(await freshDir(), 'jwt');
    await writeFile(path, JWT);
    assert.deepEqual(await readJwtFile(path), { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 });
  });

  void it('reads a json file', async () => {
    const path = join(await freshDir(), 'jwt');
    await writeFile(path, JSON.stringify({ accessToken: JWT, tokenType: 'Bearer', expiresAt: new Date(T0 + 600_000).toISOString(), expiresIn: 600 }));
    assert.deepEqual(await readJwtFile(path), { jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 600_000 });
  });

  void it('throws JwtFileError for a missing file', async () => {
    const path = join(await freshDir(), 'jwt');
    const error = await jwtFileErrorOf(readJwtFile(path));
    assert.match(error.message, /ENOENT/);
    assert.ok(error.message.includes(path));
  });

  void it('throws JwtFileError for a file without a JWT, without quoting it', async () => {
    const path = join(await freshDir(), 'jwt');
    await writeFile(path, 'ek_live_DoNotQuoteMe');
    const error = await jwtFileErrorOf(readJwtFile(path));
    assert.match(error.message, /does not hold a JWT/);
    assert.ok(!error.message.includes('DoNotQuoteMe'));
  });
});

void describe('removeFile', () => {
  void it('removes a file and ignores one that is gone', async () => {
    const dir = await freshDir();
    const path = join(dir, 'jwt');
    await writeFile(path, JWT);
    await removeFile(path);
    await removeFile(path);
    assert.deepEqual(await readdir(dir), []);
  });
});
