import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMissing, readBoundedFile } from '../../src/disk/bounded-read.ts';
import { diskErrorOf, scratchDirectories } from '../helpers/scratch.ts';

const scratch = scratchDirectories('ek-sidecar-bounded-read-');

const FOLLOW = { followLinks: true } as const;
const NO_FOLLOW = { followLinks: false } as const;

void describe('readBoundedFile reads regular files', () => {
  const table: readonly { name: string; size: number; max: number; expected: number }[] = [
    { name: 'an empty file', size: 0, max: 10, expected: 0 },
    { name: 'a file under the cap', size: 5, max: 10, expected: 5 },
    { name: 'a file of exactly the cap', size: 10, max: 10, expected: 10 },
    { name: 'a file one byte over: cap + 1 bytes, so the caller can say "too large"', size: 11, max: 10, expected: 11 },
    { name: 'a large file: still cap + 1 bytes', size: 1_000_000, max: 4_097, expected: 4_098 },
  ];
  for (const row of table) {
    void it(row.name, async () => {
      const path = join(await scratch.fresh(), 'file');
      const content = Buffer.alloc(row.size, 'a');
      await writeFile(path, content);
      const bytes = await readBoundedFile(path, row.max, NO_FOLLOW);
      assert.equal(bytes.length, row.expected);
      assert.deepEqual(bytes, content.subarray(0, row.expected));
    });
  }

  void it('follows a link when asked (the kubelet\'s ..data swap), and through linked directories either way', async () => {
    const dir = await scratch.fresh();
    await mkdir(join(dir, 'data'));
    await writeFile(join(dir, 'data', 'token'), 'content');
    await symlink('data', join(dir, '..data'));
    await symlink(join('..data', 'token'), join(dir, 'token'));
    assert.equal((await readBoundedFile(join(dir, 'token'), 100, FOLLOW)).toString(), 'content');
    assert.equal((await readBoundedFile(join(dir, '..data', 'token'), 100, NO_FOLLOW)).toString(), 'content');
  });
});

void describe('readBoundedFile refuses', () => {
  void it('a link at the path when not following, naming it', async () => {
    const dir = await scratch.fresh();
    await writeFile(join(dir, 'target'), 'content');
    await symlink(join(dir, 'target'), join(dir, 'link'));
    const error = await diskErrorOf(readBoundedFile(join(dir, 'link'), 100, NO_FOLLOW));
    assert.equal(error.code, 'refused_link');
    assert.match(error.message, /symbolic link; it is never followed/);
  });

  void it('a FIFO, at once, though no writer ever comes', async () => {
    const path = join(await scratch.fresh(), 'fifo');
    execFileSync('mkfifo', [path]);
    const error = await diskErrorOf(readBoundedFile(path, 100, FOLLOW));
    assert.equal(error.code, 'unreadable');
    assert.match(error.message, /is a FIFO \(named pipe\), not a regular file/);
  });

  void it('/dev/zero through a link, reading nothing from it', async () => {
    const dir = await scratch.fresh();
    await symlink('/dev/zero', join(dir, 'zero'));
    const error = await diskErrorOf(readBoundedFile(join(dir, 'zero'), 4_097, FOLLOW));
    assert.equal(error.code, 'unreadable');
    assert.match(error.message, /is a character device/);
  });

  void it('a directory', async () => {
    const dir = await scratch.fresh();
    const error = await diskErrorOf(readBoundedFile(dir, 100, FOLLOW));
    assert.match(error.message, /is a directory, not a regular file/);
  });

  void it('a socket', async () => {
    const path = join(await scratch.fresh(), 'socket');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const error = await diskErrorOf(readBoundedFile(path, 100, FOLLOW));
      assert.equal(error.code, 'unreadable');
      assert.match(error.message, /is a socket/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  void it('a missing file, recognisably', async () => {
    const path = join(await scratch.fresh(), 'missing');
    const error = await diskErrorOf(readBoundedFile(path, 100, FOLLOW));
    assert.equal(error.code, 'unreadable');
    assert.ok(isMissing(error));
    assert.match(error.message, /ENOENT/);
    assert.ok(error.message.startsWith(path));
  });

  void it('a file under a regular file: unreadable, not missing', async () => {
    const dir = await scratch.fresh();
    await writeFile(join(dir, 'plain'), 'x');
    const error = await diskErrorOf(readBoundedFile(join(dir, 'plain', 'file'), 100, FOLLOW));
    assert.ok(!isMissing(error));
    assert.match(error.message, /ENOTDIR/);
  });
});
