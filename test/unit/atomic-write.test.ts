import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeAll, writeFileAtomically, type PositionalWriter } from '../../src/disk/atomic-write.ts';
import { withSmallVolume } from '../helpers/small-volume.ts';
import { diskErrorOf, scratchDirectories } from '../helpers/scratch.ts';

const scratch = scratchDirectories('ek-sidecar-atomic-write-');

const b64 = (text: string): string => Buffer.from(text).toString('base64url');
const jwtWith = (payload: object): string => `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(JSON.stringify(payload))}.${b64('atomic-write-signature')}`;
const JWT = jwtWith({ exp: 1_700_000_900 });
/** The size of the JWT that write-file-atomic truncated to one page on a nearly full volume. */
const BIG_JWT = jwtWith({ exp: 1_700_000_900, pad: 'p'.repeat(6_000) }).slice(0, 6_140);
const RUNNING_AS_ROOT = process.getuid?.() === 0;

function chattrWorks(path: string): boolean {
  try {
    execFileSync('chattr', ['+i', path], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', path], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

void describe('writeFileAtomically', () => {
  for (const mode of [0o600, 0o640, 0o644, 0o400]) {
    void it(`writes the content with mode ${mode.toString(8)}`, async () => {
      const path = join(await scratch.fresh(), 'jwt');
      await writeFileAtomically(path, JWT, mode);
      assert.equal(await readFile(path, 'utf8'), JWT);
      assert.equal((await stat(path)).mode & 0o777, mode);
    });
  }

  void it('gives the exact mode whatever the umask', async () => {
    const path = join(await scratch.fresh(), 'jwt');
    const previous = process.umask(0o077);
    try {
      await writeFileAtomically(path, JWT, 0o644);
    } finally {
      process.umask(previous);
    }
    assert.equal((await stat(path)).mode & 0o777, 0o644);
  });

  void it('replaces the content and applies the new mode, leaving no temporary files', async () => {
    const dir = await scratch.fresh();
    const path = join(dir, 'jwt');
    await writeFileAtomically(path, 'first.jwt.value', 0o644);
    await writeFileAtomically(path, JWT, 0o640);
    assert.equal(await readFile(path, 'utf8'), JWT);
    assert.equal((await stat(path)).mode & 0o777, 0o640);
    assert.deepEqual(await readdir(dir), ['jwt']);
  });

  void it('returns the identity of the file it installed', async () => {
    const path = join(await scratch.fresh(), 'jwt');
    const written = await writeFileAtomically(path, Buffer.from(JWT), 0o640);
    const info = await lstat(path);
    assert.deepEqual({ dev: written.dev, ino: written.ino, size: written.size }, { dev: info.dev, ino: info.ino, size: JWT.length });
  });

  void it('serialises concurrent writes: the last one wins, nothing else is left', async () => {
    const dir = await scratch.fresh();
    const path = join(dir, 'jwt');
    const values = Array.from({ length: 10 }, (_, index) => jwtWith({ exp: index }));
    await Promise.all(values.map((value) => writeFileAtomically(path, value, 0o640)));
    assert.equal(await readFile(path, 'utf8'), values.at(-1));
    assert.deepEqual(await readdir(dir), ['jwt']);
  });

  void it('writes through a linked parent directory (/var/run is a link to /run on Debian)', async () => {
    const dir = await scratch.fresh();
    await mkdir(join(dir, 'run'));
    await symlink('run', join(dir, 'var-run'));
    await writeFileAtomically(join(dir, 'var-run', 'jwt'), JWT, 0o640);
    assert.equal(await readFile(join(dir, 'run', 'jwt'), 'utf8'), JWT);
  });

  void it('owns the new file even when someone else pre-created the path (root keeps no foreign owner)', { skip: RUNNING_AS_ROOT ? false : 'needs root to chown' }, async () => {
    const path = join(await scratch.fresh(), 'jwt');
    await writeFile(path, 'planted');
    await chown(path, 12_345, 12_345);
    await writeFileAtomically(path, JWT, 0o640);
    const info = await stat(path);
    assert.deepEqual([info.uid, info.gid], [process.getuid?.(), process.getgid?.()]);
  });

  void describe('refuses, never follows, what is not a regular file at the path', () => {
    const table: readonly { name: string; plant: (dir: string, path: string) => Promise<void>; kind: RegExp }[] = [
      { name: 'a link to a file outside the directory', plant: async (dir, path) => { await symlink(join(dir, 'outside', 'victim'), path); }, kind: /symbolic link/ },
      { name: 'a dangling link', plant: async (dir, path) => { await symlink(join(dir, 'outside', 'nothing'), path); }, kind: /symbolic link/ },
      { name: 'a link to a directory', plant: async (dir, path) => { await symlink(join(dir, 'outside'), path); }, kind: /symbolic link/ },
      { name: 'a FIFO', plant: (_dir, path) => { execFileSync('mkfifo', [path]); return Promise.resolve(); }, kind: /FIFO/ },
      { name: 'a directory', plant: async (_dir, path) => { await mkdir(path); await writeFile(join(path, 'keep'), 'old'); }, kind: /directory/ },
    ];
    for (const row of table) {
      void it(row.name, async () => {
        const dir = await scratch.fresh();
        await mkdir(join(dir, 'outside'));
        await writeFile(join(dir, 'outside', 'victim'), 'victim');
        const path = join(dir, 'jwt');
        await row.plant(dir, path);
        const before = (await readdir(dir)).sort();
        const error = await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
        assert.equal(error.code, 'refused_link');
        assert.equal(error.path, path);
        assert.match(error.message, row.kind);
        assert.ok(!error.message.includes(JWT));
        assert.equal(await readFile(join(dir, 'outside', 'victim'), 'utf8'), 'victim', 'nothing outside was written');
        assert.deepEqual((await readdir(dir)).sort(), before, 'the planted thing is left as it was, no temporary file');
      });
    }

    void it('a link keeps pointing where it pointed', async () => {
      const dir = await scratch.fresh();
      const path = join(dir, 'jwt');
      await symlink('/etc/hostname', path);
      await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
      assert.equal(await readlink(path), '/etc/hostname');
    });
  });

  void it('throws write_failed naming the path when the parent is a regular file', async () => {
    const dir = await scratch.fresh();
    const parent = join(dir, 'not-a-directory');
    await writeFile(parent, 'plain');
    const path = join(parent, 'jwt');
    const error = await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
    assert.equal(error.code, 'write_failed');
    assert.equal(error.path, path);
    assert.ok(error.message.includes(path));
    assert.ok(!error.message.includes(JWT), 'the content is not in the message');
    assert.deepEqual(await readdir(dir), ['not-a-directory']);
    assert.equal(await readFile(parent, 'utf8'), 'plain');
  });

  void it('leaves the old file intact and no temporary file when the rename fails', async (t) => {
    // Root-proof failure after the temporary file is written: an immutable target cannot be replaced.
    const dir = await scratch.fresh();
    const path = join(dir, 'jwt');
    await writeFileAtomically(path, 'old.jwt.value', 0o640);
    if (!chattrWorks(path)) {
      t.skip('chattr +i is not available on this file system');
      return;
    }
    execFileSync('chattr', ['+i', path]);
    try {
      const error = await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
      assert.equal(error.code, 'write_failed');
      assert.match(error.message, /EPERM/);
      assert.equal(await readFile(path, 'utf8'), 'old.jwt.value');
      assert.deepEqual(await readdir(dir), ['jwt']);
    } finally {
      execFileSync('chattr', ['-i', path]);
    }
  });

  void it('a temporary file the failed write could not remove is removed by the next write', async (t) => {
    // An append-only directory accepts the new temporary file but refuses both the rename and the unlink.
    const dir = await scratch.fresh();
    const path = join(dir, 'jwt');
    await writeFileAtomically(path, 'old.jwt.value', 0o640);
    if (!chattrWorks(dir)) {
      t.skip('chattr is not available on this file system');
      return;
    }
    execFileSync('chattr', ['+a', dir]);
    try {
      const error = await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
      assert.equal(error.code, 'write_failed');
      assert.equal((await readdir(dir)).length, 2, 'the temporary file is stuck for now');
    } finally {
      execFileSync('chattr', ['-a', dir]);
    }
    await writeFileAtomically(join(dir, 'other'), JWT, 0o640);
    assert.deepEqual((await readdir(dir)).sort(), ['jwt', 'other']);
    assert.equal(await readFile(path, 'utf8'), 'old.jwt.value');
  });

  void it('leaves the old file intact in a read-only directory', { skip: RUNNING_AS_ROOT ? 'running as root: chmod 0555 does not stop root (the read-only volume case covers it)' : false }, async () => {
    const dir = await scratch.fresh();
    const path = join(dir, 'jwt');
    await writeFileAtomically(path, 'old.jwt.value', 0o640);
    await chmod(dir, 0o555);
    try {
      await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
      assert.equal(await readFile(path, 'utf8'), 'old.jwt.value');
      assert.deepEqual(await readdir(dir), ['jwt']);
    } finally {
      await chmod(dir, 0o755);
    }
  });
});

void describe('writeFileAtomically interrupted by process exit', () => {
  void it('a clean exit in the middle of a write leaves no temporary file', async () => {
    // The child exits as soon as it sees its temporary file, while the (large) write is still going on.
    const dir = await scratch.fresh();
    const script = `
      import { readdirSync } from 'node:fs';
      import { writeFileAtomically } from ${JSON.stringify(new URL('../../src/disk/atomic-write.ts', import.meta.url).href)};
      void writeFileAtomically(${JSON.stringify(join(dir, 'jwt'))}, Buffer.alloc(64 * 1024 * 1024, 'x'), 0o640);
      const poll = setInterval(() => {
        if (readdirSync(${JSON.stringify(dir)}).some((name) => name.endsWith('.tmp'))) { clearInterval(poll); process.stdout.write('seen'); process.exit(0); }
      }, 1);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 0);
    assert.equal(out, 'seen', 'the child exited while its temporary file existed');
    assert.deepEqual(await readdir(dir), []);
  });
});

void describe('writeFileAtomically on a small real volume', () => {
  void it('a nearly full volume: no truncated file is installed, the old one stays, then the write succeeds once space is freed', (t) => withSmallVolume(t, 64 * 1024, async (volume) => {
    const path = join(volume.path, 'jwt');
    await writeFileAtomically(path, 'old.jwt.value', 0o640);
    // One page free: the first 4,096 bytes of the temporary file fit, the rest does not (a short write, then ENOSPC).
    await volume.fillLeaving(4_096);
    const error = await diskErrorOf(writeFileAtomically(path, BIG_JWT, 0o640));
    assert.equal(error.code, 'write_failed');
    assert.match(error.message, /ENOSPC/);
    assert.ok(!error.message.includes(BIG_JWT.slice(0, 40)));
    assert.equal(await readFile(path, 'utf8'), 'old.jwt.value');
    assert.deepEqual((await readdir(volume.path)).sort(), ['filler', 'jwt'], 'the temporary file is removed');
    assert.equal(await volume.free(), 4_096, 'its space is given back');
    await volume.drain();
    await writeFileAtomically(path, BIG_JWT, 0o640);
    assert.equal(await readFile(path, 'utf8'), BIG_JWT);
  }));

  void it('a full volume: ENOSPC before the first byte', (t) => withSmallVolume(t, 64 * 1024, async (volume) => {
    const path = join(volume.path, 'jwt');
    await writeFileAtomically(path, 'old.jwt.value', 0o640);
    await volume.fillLeaving(0);
    const error = await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
    assert.equal(error.code, 'write_failed');
    assert.equal(await readFile(path, 'utf8'), 'old.jwt.value');
    assert.deepEqual((await readdir(volume.path)).sort(), ['filler', 'jwt']);
  }));

  void it('a read-only volume (EROFS): write_failed, the old file intact', (t) => withSmallVolume(t, 64 * 1024, async (volume) => {
    const path = join(volume.path, 'jwt');
    await writeFileAtomically(path, 'old.jwt.value', 0o640);
    volume.readOnly(true);
    const error = await diskErrorOf(writeFileAtomically(path, JWT, 0o640));
    assert.equal(error.code, 'write_failed');
    assert.match(error.message, /EROFS/);
    assert.equal(await readFile(path, 'utf8'), 'old.jwt.value');
    assert.deepEqual(await readdir(volume.path), ['jwt']);
  }));
});

void describe('writeAll', () => {
  /** A handle whose write(2) takes at most `chunk` bytes per call, then none once `capacity` is reached. */
  function shortHandle(chunk: number, capacity = Infinity): PositionalWriter & { written: number[] } {
    const written: number[] = [];
    return {
      written,
      write(buffer: Uint8Array, offset: number, length: number, position: number) {
        const count = Math.max(0, Math.min(chunk, length, capacity - written.length));
        assert.equal(position, offset, 'bytes go to their own offset');
        written.push(...buffer.subarray(offset, offset + count));
        return Promise.resolve({ bytesWritten: count, buffer });
      },
    };
  }

  void it('resumes after short counts until every byte is written', async () => {
    const bytes = Buffer.from(BIG_JWT);
    const handle = shortHandle(1_000);
    await writeAll(handle, bytes);
    assert.deepEqual(Buffer.from(handle.written), bytes);
  });

  void it('fails when a write makes no progress', async () => {
    const handle = shortHandle(1_000, 4_096);
    await assert.rejects(writeAll(handle, Buffer.from(BIG_JWT)), /short write: 4096 of 6140 bytes/);
  });
});
