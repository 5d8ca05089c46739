import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { FSWatcher } from 'chokidar';
import { WatchedFile, watchLostMessage, type FileRead } from '../../src/credentials/watched-file.ts';
import { scratchDirectories } from '../helpers/scratch.ts';

const dirs = scratchDirectories('ek-watched-file-');

/** A watcher as chokidar leaves it when inotify cannot be had: an `error` event, then nothing. */
function failingWatch(code: string): { watch: () => FSWatcher; fail(): void } {
  const emitter = new EventEmitter();
  const watcher = Object.assign(emitter, { close: () => Promise.resolve() }) as unknown as FSWatcher;
  return {
    // chokidar still says it is ready once its first scan is done; the failure comes as an event of its own.
    watch: () => {
      setImmediate(() => emitter.emit('ready'));
      return watcher;
    },
    fail: () => { emitter.emit('error', Object.assign(new Error(`${code}: too many open files, watch`), { code })); },
  };
}

interface Seen {
  values: string[];
  lost: { reason: string; rereadMs: number }[];
}

async function follow(path: string, options: ConstructorParameters<typeof WatchedFile>[3]): Promise<{ file: WatchedFile<string, { code: string }>; seen: Seen }> {
  const seen: Seen = { values: [], lost: [] };
  const read = async (): Promise<FileRead<string, { code: string }>> => {
    const text = await readFile(path, 'utf8');
    return { ok: true, value: text, text };
  };
  const file = new WatchedFile(path, read, {
    onValue: (value) => { seen.values.push(value); },
    onProblem: () => undefined,
    onWatchLost: (reason, rereadMs) => { seen.lost.push({ reason, rereadMs }); },
  }, options);
  await file.start();
  return { file, seen };
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

void describe('WatchedFile without a watch (inotify exhausted)', () => {
  void it('reports the lost watch once and sees a change by re-reading at the short interval', async () => {
    const path = join(await dirs.fresh(), 'token');
    await writeFile(path, 'first');
    const failing = failingWatch('EMFILE');
    // The 30 s net alone would miss the change within this test; the short re-read must find it.
    const { file, seen } = await follow(path, { watch: failing.watch, rereadIntervalMs: 60_000, unwatchedRereadIntervalMs: 50 });
    try {
      assert.deepEqual(seen.values, ['first']);
      failing.fail();
      failing.fail();
      assert.deepEqual(seen.lost, [{ reason: 'EMFILE', rereadMs: 50 }], 'reported once');
      await writeFile(path, 'second');
      await until(() => seen.values.includes('second'));
    } finally {
      await file.close();
    }
  });

  void it('a working watch reports nothing lost and keeps the long net', async () => {
    const path = join(await dirs.fresh(), 'token');
    await writeFile(path, 'first');
    const { file, seen } = await follow(path, { rereadIntervalMs: 60_000, unwatchedRereadIntervalMs: 50 });
    try {
      await writeFile(path, 'second');
      await until(() => seen.values.includes('second'));
      assert.deepEqual(seen.lost, []);
    } finally {
      await file.close();
    }
  });

  void it('the warning names the inotify limit to raise', () => {
    assert.match(watchLostMessage('token file', 'EMFILE', 1_000), /max_user_instances.*every 1 s/);
    assert.match(watchLostMessage('token file', 'ENOSPC', 1_000), /max_user_watches/);
    assert.equal(watchLostMessage('token file', 'EACCES', 1_000), 'cannot watch the token file: EACCES; re-reading it every 1 s instead');
  });
});
