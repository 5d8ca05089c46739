// The volume helpers must lay files out as the kubelet's AtomicWriter does, or the rotation tests test nothing.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createProjectedTokenVolume, createSecretVolume, rotateProjectedTokenVolume, rotateSecretVolume } from '../../../testkit/kubelet-volume.ts';
import { tempDir } from '../../helpers/daemon.ts';

const dirs: { remove(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => d.remove()));
});

async function layout(dir: string): Promise<{ entries: string[]; data: string; link: string }> {
  const entries = (await readdir(dir)).sort();
  return { entries, data: await readlink(join(dir, '..data')), link: await readlink(join(dir, 'token')) };
}

void describe('kubelet volumes', () => {
  for (const [kind, create, rotate, mode] of [
    ['secret', createSecretVolume, rotateSecretVolume, 0o644],
    ['projected token', createProjectedTokenVolume, rotateProjectedTokenVolume, 0o644],
  ] as const) {
    void test(`${kind}: token → ..data/token → ..<stamp>/token; rotation swaps ..data and removes the old directory`, async () => {
      const tmp = await tempDir();
      dirs.push(tmp);
      const dir = join(tmp.path, 'vol');
      const path = await create(dir, 'first');
      assert.equal(path, join(dir, 'token'));
      const before = await layout(dir);
      assert.deepEqual(before.entries, [before.data, '..data', 'token'].sort());
      assert.match(before.data, /^\.\.\d{4}_/);
      assert.equal(before.link, join('..data', 'token'));
      assert.ok((await lstat(join(dir, 'token'))).isSymbolicLink());
      assert.equal((await lstat(join(dir, before.data, 'token'))).mode & 0o777, mode);
      assert.equal(await readFile(path, 'utf8'), 'first');
      await rotate(dir, 'second');
      const afterRotation = await layout(dir);
      assert.notEqual(afterRotation.data, before.data);
      assert.deepEqual(afterRotation.entries, [afterRotation.data, '..data', 'token'].sort(), 'the old directory and ..data_tmp are gone');
      assert.equal(await readFile(path, 'utf8'), 'second');
    });
  }

  void test('a projected token may have another file name and mode', async () => {
    const tmp = await tempDir();
    dirs.push(tmp);
    const dir = join(tmp.path, 'tokens');
    const path = await createProjectedTokenVolume(dir, 'jwt-1', { file: 'enkryptify', mode: 0o600 });
    assert.equal(path, join(dir, 'enkryptify'));
    await rotateProjectedTokenVolume(dir, 'jwt-2', { file: 'enkryptify', mode: 0o600 });
    assert.equal(await readFile(path, 'utf8'), 'jwt-2');
    assert.equal((await lstat(join(dir, await readlink(join(dir, '..data')), 'enkryptify'))).mode & 0o777, 0o600);
  });
});
