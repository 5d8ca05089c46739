import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { createExclusive, probeJwtPath, removeStaleTemporaryFiles, temporaryPathFor } from '../../src/disk/temporary-files.ts';
import { waitFor } from '../helpers/daemon.ts';
import type { DiskError } from '../../src/core/errors.ts';
import { diskErrorOf, scratchDirectories } from '../helpers/scratch.ts';

const scratch = scratchDirectories('ek-sidecar-temporary-files-');

const JWT = 'header.payload.signature';
const OUR_TEMP = /^\.jwt\.[0-9a-f]{16}\.tmp$/;

/** Age files so that the cleanup sees them as a dead process's. */
async function age(paths: readonly string[], ms: number): Promise<void> {
  const then = new Date(Date.now() - ms);
  for (const path of paths) await utimes(path, then, then);
}

void describe('temporaryPathFor', () => {
  void it('names a hidden file beside the target with 64 random bits', () => {
    const names = Array.from({ length: 100 }, () => temporaryPathFor('/v/run/jwt'));
    for (const name of names) {
      assert.ok(name.startsWith('/v/run/'), name);
      assert.match(basename(name), OUR_TEMP);
    }
    assert.equal(new Set(names).size, names.length, 'unpredictable: no two alike');
  });
});

void describe('createExclusive', () => {
  void it('never opens what is already there: a planted link is refused and its target untouched', async () => {
    const dir = await scratch.fresh();
    await writeFile(join(dir, 'victim'), 'victim');
    await symlink(join(dir, 'victim'), join(dir, 'tmp'));
    await assert.rejects(createExclusive(join(dir, 'tmp'), 0o600), { code: 'EEXIST' });
    assert.equal(await readFile(join(dir, 'victim'), 'utf8'), 'victim');
  });
});

void describe('probeJwtPath', () => {
  void it('accepts a writable directory and leaves nothing behind', async () => {
    const dir = await scratch.fresh();
    await probeJwtPath(join(dir, 'jwt'));
    assert.deepEqual(await readdir(dir), []);
  });

  void it('accepts a path where a JWT file already exists, without touching it', async () => {
    const dir = await scratch.fresh();
    const path = join(dir, 'jwt');
    await writeFile(path, JWT);
    await probeJwtPath(path);
    assert.equal(await readFile(path, 'utf8'), JWT);
    assert.deepEqual(await readdir(dir), ['jwt']);
  });

  void it('accepts a directory reached through a link', async () => {
    const dir = await scratch.fresh();
    await mkdir(join(dir, 'run'));
    await symlink('run', join(dir, 'var-run'));
    await probeJwtPath(join(dir, 'var-run', 'jwt'));
  });

  const table: readonly { name: string; setup: (dir: string) => Promise<string>; code: DiskError['code']; message: RegExp }[] = [
    { name: 'a missing directory', setup: (dir) => Promise.resolve(join(dir, 'missing', 'jwt')), code: 'unusable_directory', message: /not usable.*ENOENT/ },
    {
      name: 'a parent that is a file',
      setup: async (dir) => {
        await writeFile(join(dir, 'file'), 'x');
        return join(dir, 'file', 'jwt');
      },
      code: 'unusable_directory',
      message: /not a directory/,
    },
    {
      name: 'a path that is a directory',
      setup: async (dir) => {
        await mkdir(join(dir, 'jwt'));
        return join(dir, 'jwt');
      },
      code: 'unusable_directory',
      message: /is a directory/,
    },
    {
      name: 'a path that is a link',
      setup: async (dir) => {
        await writeFile(join(dir, 'elsewhere'), 'x');
        await symlink(join(dir, 'elsewhere'), join(dir, 'jwt'));
        return join(dir, 'jwt');
      },
      code: 'refused_link',
      message: /symbolic link/,
    },
    {
      name: 'a path that is a FIFO',
      setup: (dir) => {
        execFileSync('mkfifo', [join(dir, 'jwt')]);
        return Promise.resolve(join(dir, 'jwt'));
      },
      code: 'refused_link',
      message: /FIFO/,
    },
  ];
  for (const row of table) {
    void it(`refuses ${row.name}, naming the path`, async () => {
      const path = await row.setup(await scratch.fresh());
      const error = await diskErrorOf(probeJwtPath(path));
      assert.equal(error.code, row.code);
      assert.equal(error.path, path);
      assert.ok(error.message.includes(path));
      assert.match(error.message, row.message);
    });
  }
});

void describe('removeStaleTemporaryFiles', () => {
  void it('removes the three kinds of leftovers beside the file and nothing else', async () => {
    const dir = await scratch.fresh();
    const leftovers = ['.jwt.0123456789abcdef.tmp', '.jwt.probe-42', 'jwt.12345', 'jwt.4294967295'];
    const keep = [
      'jwt', 'jwt.state.json', 'jwt.state.json.777', '.jwt.state.json.0123456789abcdef.tmp', 'other.123', 'jwt.12a', 'jwt.', 'xjwt.123', 'jwt.123.bak',
      '.jwt.0123456789ABCDEF.tmp', '.jwt.0123456789abcde.tmp', '.jwt.0123456789abcdef.tmp.bak', '.jwt.probe-', 'jwt.12345678901',
    ];
    for (const name of [...leftovers, ...keep]) await writeFile(join(dir, name), 'x');
    await age([...leftovers, ...keep].map((name) => join(dir, name)), 60_000);
    const removed = await removeStaleTemporaryFiles(join(dir, 'jwt'));
    assert.deepEqual(removed.sort(), [...leftovers].sort());
    assert.deepEqual((await readdir(dir)).sort(), [...keep].sort());
  });

  void it('treats the file name literally, not as a pattern', async () => {
    const dir = await scratch.fresh();
    for (const name of ['j.t.1', 'jwt.t.1', 'j.t']) await writeFile(join(dir, name), 'x');
    await age(['j.t.1', 'jwt.t.1', 'j.t'].map((name) => join(dir, name)), 60_000);
    await removeStaleTemporaryFiles(join(dir, 'j.t'));
    assert.deepEqual((await readdir(dir)).sort(), ['j.t', 'jwt.t.1']);
  });

  void it('keeps leftovers young enough to be another live process\'s write in flight, and ones stamped in the future', async () => {
    const dir = await scratch.fresh();
    await writeFile(join(dir, '.jwt.00000000000000aa.tmp'), 'x');
    await writeFile(join(dir, '.jwt.00000000000000bb.tmp'), 'x');
    const future = new Date(Date.now() + 5_000);
    await utimes(join(dir, '.jwt.00000000000000bb.tmp'), future, future);
    assert.deepEqual(await removeStaleTemporaryFiles(join(dir, 'jwt')), []);
    assert.deepEqual((await removeStaleTemporaryFiles(join(dir, 'jwt'), { minAgeMs: 0 })).sort(), ['.jwt.00000000000000aa.tmp', '.jwt.00000000000000bb.tmp'], 'with minAgeMs 0 both go');
  });

  void it('removes a leftover stamped far in the future (a clock stepped back)', async () => {
    const dir = await scratch.fresh();
    const path = join(dir, '.jwt.00000000000000cc.tmp');
    await writeFile(path, 'x');
    const future = new Date(Date.now() + 3_600_000);
    await utimes(path, future, future);
    assert.deepEqual(await removeStaleTemporaryFiles(join(dir, 'jwt')), ['.jwt.00000000000000cc.tmp']);
  });

  void it('never removes or follows a link, a directory or a FIFO with a leftover\'s name', async () => {
    const dir = await scratch.fresh();
    await writeFile(join(dir, 'victim'), 'victim');
    await symlink(join(dir, 'victim'), join(dir, '.jwt.00000000000000dd.tmp'));
    await mkdir(join(dir, 'jwt.1'));
    execFileSync('mkfifo', [join(dir, 'jwt.2')]);
    assert.deepEqual(await removeStaleTemporaryFiles(join(dir, 'jwt'), { minAgeMs: 0 }), []);
    assert.deepEqual((await readdir(dir)).sort(), ['.jwt.00000000000000dd.tmp', 'jwt.1', 'jwt.2', 'victim']);
    assert.equal(await readFile(join(dir, 'victim'), 'utf8'), 'victim');
  });

  void it('does not fail when the directory is missing', async () => {
    assert.deepEqual(await removeStaleTemporaryFiles(join(scratch.root(), 'no-such-dir', 'jwt')), []);
  });

  void it('removes what a writer killed with SIGKILL between create and rename left behind', async () => {
    // A child creates a temporary file the way the writer does, reports it, and is killed before it renames.
    const dir = await scratch.fresh();
    const script = `
      import { createExclusive, temporaryPathFor } from ${JSON.stringify(new URL('../../src/disk/temporary-files.ts', import.meta.url).href)};
      const handle = await createExclusive(temporaryPathFor(${JSON.stringify(join(dir, 'jwt'))}), 0o640);
      await handle.write('half a JWT');
      process.stdout.write('written');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
    await waitFor(() => out === 'written', 10_000, () => 'the child to write its temporary file');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const [leftover] = await readdir(dir);
    assert.match(leftover ?? '', OUR_TEMP);
    await age([join(dir, leftover ?? '')], 60_000);
    assert.deepEqual(await removeStaleTemporaryFiles(join(dir, 'jwt')), [leftover]);
    assert.deepEqual(await readdir(dir), []);
  });
});
