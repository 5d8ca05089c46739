import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isStaleLock, withFileLock } from '../../src/disk/file-lock.ts';
import { waitFor } from '../helpers/daemon.ts';
import { diskErrorOf, scratchDirectories } from '../helpers/scratch.ts';

const scratch = scratchDirectories('ek-sidecar-file-lock-');

const CONTENDER = fileURLToPath(new URL('../helpers/lock-contender.ts', import.meta.url));

function contender(args: readonly string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CONTENDER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, out: () => out, exited };
}

async function stampLock(path: string, offsetMs: number): Promise<void> {
  await writeFile(path, '');
  const when = new Date(Date.now() + offsetMs);
  await utimes(path, when, when);
}

void describe('isStaleLock', () => {
  const NOW = 1_700_000_000_000;
  const table: readonly { name: string; mtimeMs: number; stale: boolean }[] = [
    { name: 'just refreshed', mtimeMs: NOW, stale: false },
    { name: 'refreshed within the bound', mtimeMs: NOW - 4_999, stale: false },
    { name: 'exactly at the bound', mtimeMs: NOW - 5_000, stale: false },
    { name: 'not refreshed for longer than the bound: its holder died', mtimeMs: NOW - 5_001, stale: true },
    { name: 'slightly in the future (coarse file system clock)', mtimeMs: NOW + 1_000, stale: false },
    { name: 'stamped in the future by more than the bound: the clock stepped back', mtimeMs: NOW + 5_001, stale: true },
    { name: 'a day old', mtimeMs: NOW - 86_400_000, stale: true },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.equal(isStaleLock(row.mtimeMs, NOW, 5_000), row.stale);
    });
  }
});

void describe('withFileLock', () => {
  void it('holds a private lock file only while fn runs and returns its result', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    const result = await withFileLock(lockPath, async () => {
      const info = await lstat(lockPath);
      assert.ok(info.isFile());
      assert.equal(info.mode & 0o777, 0o600);
      return 42;
    });
    assert.equal(result, 42);
    assert.deepEqual(await readdir(dir), []);
  });

  void it('releases the lock when fn throws, and passes the error on', async () => {
    const dir = await scratch.fresh();
    await assert.rejects(withFileLock(join(dir, 'state.lock'), () => Promise.reject(new Error('inside'))), /inside/);
    assert.deepEqual(await readdir(dir), []);
  });

  void it('a live holder keeps its lock past the stale bound; a contender gives up with locked', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    // Not re-entrant: the nested call contends through the file like another process would.
    const error = await withFileLock(lockPath, () => diskErrorOf(withFileLock(lockPath, () => Promise.resolve(), { staleMs: 150, waitMs: 500 })), { staleMs: 150 });
    assert.equal(error.code, 'locked');
    assert.equal(error.path, lockPath);
    assert.match(error.message, /held by another process .*gave up after 500 ms/);
    assert.deepEqual(await readdir(dir), []);
  });

  void it('two processes contending never hold it at once and lose no update', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    const counter = join(dir, 'counter');
    // A stale lock to start with: both judge it stale at the same moment and must still not both get in.
    await stampLock(lockPath, -60_000);
    const contenders = [contender(['count', lockPath, counter, '40', '5000']), contender(['count', lockPath, counter, '40', '5000'])];
    const codes = await Promise.all(contenders.map((c) => c.exited));
    assert.deepEqual(codes, [0, 0]);
    assert.equal(await readFile(join(dir, 'overlap'), 'utf8').catch(() => ''), '', 'never two holders inside at once');
    assert.equal(await readFile(counter, 'utf8'), '80');
    assert.deepEqual((await readdir(dir)).sort(), ['counter'], 'no lock or aside file left');
  });

  void it('takes over the lock of a holder killed with SIGKILL inside fn, after the stale bound', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    const holder = contender(['hold', lockPath, '300']);
    await waitFor(() => holder.out() === 'holding', 10_000, () => 'the holder to take the lock');
    holder.child.kill('SIGKILL');
    await holder.exited;
    assert.ok((await lstat(lockPath)).isFile(), 'the killed holder left its lock file');
    assert.equal(await withFileLock(lockPath, () => Promise.resolve('taken over'), { staleMs: 300, waitMs: 5_000 }), 'taken over');
    assert.deepEqual(await readdir(dir), []);
  });

  void it('a process that exits inside fn leaves no lock behind', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    assert.equal(await contender(['exit', lockPath]).exited, 0);
    assert.deepEqual(await readdir(dir), []);
  });

  for (const [name, offsetMs] of [['left long ago', -3_600_000], ['stamped an hour in the future (a clock step)', 3_600_000]] as const) {
    void it(`takes over at once a lock file ${name}`, async () => {
      const dir = await scratch.fresh();
      const lockPath = join(dir, 'state.lock');
      await stampLock(lockPath, offsetMs);
      assert.equal(await withFileLock(lockPath, () => Promise.resolve('ok'), { staleMs: 5_000, waitMs: 0 }), 'ok');
      assert.deepEqual(await readdir(dir), []);
    });
  }

  void it('refuses a planted link at the lock path: never followed, never removed, fn not run', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    await writeFile(join(dir, 'victim'), 'victim');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(join(dir, 'victim'), old, old);
    await symlink(join(dir, 'victim'), lockPath);
    let ran = false;
    const error = await diskErrorOf(withFileLock(lockPath, () => { ran = true; return Promise.resolve(); }, { waitMs: 0 }));
    assert.equal(error.code, 'refused_link');
    assert.match(error.message, /symbolic link/);
    assert.equal(ran, false);
    assert.equal(await readlink(lockPath), join(dir, 'victim'));
    assert.equal(await readFile(join(dir, 'victim'), 'utf8'), 'victim');
  });

  void it('refuses a directory at the lock path', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    await mkdir(lockPath);
    const error = await diskErrorOf(withFileLock(lockPath, () => Promise.resolve(), { waitMs: 0 }));
    assert.equal(error.code, 'refused_link');
    assert.match(error.message, /directory/);
  });

  void it('write_failed when the lock file cannot be created', async () => {
    const dir = await scratch.fresh();
    const error = await diskErrorOf(withFileLock(join(dir, 'missing', 'state.lock'), () => Promise.resolve()));
    assert.equal(error.code, 'write_failed');
    assert.match(error.message, /ENOENT/);
  });

  void it('an aborted wait rejects without running fn', async () => {
    const dir = await scratch.fresh();
    const lockPath = join(dir, 'state.lock');
    await stampLock(lockPath, 0);
    const controller = new AbortController();
    let ran = false;
    const waiting = withFileLock(lockPath, () => { ran = true; return Promise.resolve(); }, { signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, { name: 'AbortError' });
    assert.equal(ran, false);
    assert.ok((await lstat(lockPath)).isFile(), 'the other holder\'s lock is left alone');
  });
});
