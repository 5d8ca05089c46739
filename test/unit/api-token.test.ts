import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_TOKEN_FILE_BYTES, readApiTokenFile } from '../../src/credentials/api-token.ts';
import { MAX_TOKEN_BYTES, parseApiToken, type TokenProblem } from '../../src/credentials/api-token-text.ts';
import { fingerprint } from '../../src/core/fingerprint.ts';

const SOURCE = 'token file /secrets/token';
const KEY = 'Zq9SECRETv2'; // distinctive, so that a leak of any part of it shows

void describe('parseApiToken accepts', () => {
  const table: readonly { name: string; text: string; value: string }[] = [
    { name: 'a plain token', text: `ek_live_${KEY}`, value: `ek_live_${KEY}` },
    { name: 'a token with a trailing newline (as kubectl create secret writes it)', text: `ek_live_${KEY}\n`, value: `ek_live_${KEY}` },
    { name: 'a token with surrounding whitespace', text: ` \t\r\nek_live_${KEY} \r\n`, value: `ek_live_${KEY}` },
    { name: 'a token with punctuation', text: 'ek_live_a-b_c.d~e+f/g=', value: 'ek_live_a-b_c.d~e+f/g=' },
    { name: 'a token of exactly 4 KiB', text: `ek_live_${'a'.repeat(MAX_TOKEN_BYTES - 8)}`, value: `ek_live_${'a'.repeat(MAX_TOKEN_BYTES - 8)}` },
    { name: 'a 4 KiB token plus surrounding whitespace', text: `  ek_live_${'a'.repeat(MAX_TOKEN_BYTES - 8)}\n\n`, value: `ek_live_${'a'.repeat(MAX_TOKEN_BYTES - 8)}` },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const read = parseApiToken(row.text, SOURCE);
      assert.deepEqual(read, { ok: true, token: { value: row.value, fingerprint: fingerprint(row.value) } });
    });
  }
});

void describe('parseApiToken refuses, without the token in the message', () => {
  const table: readonly { name: string; text: string; problem: TokenProblem }[] = [
    { name: 'empty', text: '', problem: 'empty' },
    { name: 'only whitespace', text: ' \n\t ', problem: 'empty' },
    { name: 'a space inside', text: `ek_live_${KEY} ${KEY}`, problem: 'malformed' },
    { name: 'a tab inside', text: `ek_live_${KEY}\t${KEY}`, problem: 'malformed' },
    { name: 'a newline inside (two lines)', text: `ek_live_${KEY}\nek_live_${KEY}`, problem: 'malformed' },
    { name: 'a non-breaking space inside', text: `ek_live_${KEY}\u00a0${KEY}`, problem: 'malformed' },
    { name: 'a NUL inside', text: `ek_live_${KEY}\u0000${KEY}`, problem: 'malformed' },
    { name: 'an ESC inside', text: `ek_live_${KEY}\u001b[0m`, problem: 'malformed' },
    { name: 'a DEL inside', text: `ek_live_${KEY}\u007f`, problem: 'malformed' },
    { name: 'a C1 control inside', text: `ek_live_${KEY}\u0085x`, problem: 'malformed' },
    { name: 'no prefix', text: KEY, problem: 'malformed' },
    { name: 'a test-mode prefix', text: `ek_test_${KEY}`, problem: 'malformed' },
    { name: 'the prefix in capitals', text: `EK_LIVE_${KEY}`, problem: 'malformed' },
    { name: 'a Bearer prefix', text: `Bearer ek_live_${KEY}`, problem: 'malformed' },
    { name: 'the prefix only', text: 'ek_live_', problem: 'malformed' },
    { name: 'the prefix only, with a newline', text: 'ek_live_\n', problem: 'malformed' },
    { name: 'over 4 KiB', text: `ek_live_${KEY}${'a'.repeat(MAX_TOKEN_BYTES)}`, problem: 'malformed' },
    { name: '4 KiB + 1 byte', text: `ek_live_${'a'.repeat(MAX_TOKEN_BYTES - 7)}`, problem: 'malformed' },
    { name: 'over 4 KiB in UTF-8 bytes though not in characters', text: `ek_live_${'\u00e9'.repeat(2_100)}`, problem: 'malformed' },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const read = parseApiToken(row.text, SOURCE);
      assert.equal(read.ok, false);
      assert.equal(read.problem, row.problem);
      assert.ok(read.message.startsWith(SOURCE), read.message);
      assert.ok(!read.message.includes(KEY), 'the token text is not in the message');
      assert.ok(!read.message.includes('aaaaaaaa'), 'no run of the token is in the message');
      assert.ok(read.message.length < 200, 'the message describes, it does not quote');
    });
  }
});

void describe('readApiTokenFile', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ek-sidecar-api-token-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  void it('reads and trims a valid token file', async () => {
    const path = join(dir, 'token');
    await writeFile(path, `ek_live_${KEY}\n`);
    const read = await readApiTokenFile(path);
    assert.deepEqual(read, { ok: true, token: { value: `ek_live_${KEY}`, fingerprint: fingerprint(`ek_live_${KEY}`) } });
  });

  const problems: readonly { name: string; setup: (path: string) => Promise<void>; problem: TokenProblem }[] = [
    { name: 'a missing file', setup: () => Promise.resolve(), problem: 'missing' },
    { name: 'a directory', setup: (path) => mkdir(path), problem: 'unreadable' },
    { name: 'an empty file', setup: (path) => writeFile(path, ''), problem: 'empty' },
    { name: 'a malformed file', setup: (path) => writeFile(path, `token=${KEY}\n`), problem: 'malformed' },
    { name: 'a FIFO (read without blocking)', setup: (path) => { execFileSync('mkfifo', [path]); return Promise.resolve(); }, problem: 'unreadable' },
    { name: 'a link to /dev/zero (nothing read from it)', setup: (path) => symlink('/dev/zero', path), problem: 'unreadable' },
    { name: 'a file over 4 KiB + 1 byte', setup: (path) => writeFile(path, `ek_live_${KEY}${'a'.repeat(MAX_TOKEN_FILE_BYTES)}`), problem: 'malformed' },
    { name: 'a 1 MB file', setup: (path) => writeFile(path, `ek_live_${'a'.repeat(1_000_000)}`), problem: 'malformed' },
  ];
  for (const [index, row] of problems.entries()) {
    void it(`reports ${row.name} as ${row.problem}, naming the path`, async () => {
      const path = join(dir, `case-${String(index)}`);
      await row.setup(path);
      const read = await readApiTokenFile(path);
      assert.equal(read.ok, false);
      assert.equal(read.problem, row.problem);
      assert.ok(read.message.includes(path), read.message);
      assert.ok(!read.message.includes(KEY));
    });
  }

  void it('reads a 4 KiB token with its trailing newline (4 KiB + 1 byte)', async () => {
    const path = join(dir, 'full-size');
    const value = `ek_live_${'a'.repeat(MAX_TOKEN_BYTES - 8)}`;
    await writeFile(path, `${value}\n`);
    assert.deepEqual(await readApiTokenFile(path), { ok: true, token: { value, fingerprint: fingerprint(value) } });
  });

  void it('follows links (the kubelet\'s ..data swap)', async () => {
    const secret = join(dir, 'secret');
    await mkdir(join(secret, '..2024_01_01'), { recursive: true });
    await writeFile(join(secret, '..2024_01_01', 'token'), `ek_live_${KEY}`);
    await symlink('..2024_01_01', join(secret, '..data'));
    await symlink(join('..data', 'token'), join(secret, 'token'));
    const read = await readApiTokenFile(join(secret, 'token'));
    assert.equal(read.ok, true);
  });

  void it('names what a non-regular file is', async () => {
    const path = join(dir, 'named-fifo');
    execFileSync('mkfifo', [path]);
    const read = await readApiTokenFile(path);
    assert.equal(read.ok, false);
    assert.equal(read.message, `token file ${path}: is a FIFO (named pipe), not a regular file; it is not read`);
  });

  void it('reports a file under a regular file as unreadable, not missing', async () => {
    const file = join(dir, 'plain');
    await writeFile(file, 'x');
    const read = await readApiTokenFile(join(file, 'token'));
    assert.equal(read.ok, false);
    assert.equal(read.problem, 'unreadable');
  });
});
