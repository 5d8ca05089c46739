import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RateLimit } from '../../src/config/config.ts';
import { DiskError } from '../../src/core/errors.ts';
import { parseState } from '../../src/disk/state-file.ts';
import { StateStore } from '../../src/disk/state-store.ts';
import { createMetrics } from '../../src/observe/metrics.ts';
import { fakeTime } from '../helpers/fake-timers.ts';
import { MemoryFiles } from '../helpers/memory-files.ts';

const T0 = Date.UTC(2030, 0, 1);
const PATH = '/volume/jwt.state.json';
const LIMIT: RateLimit = { max: 10, windowMs: 60_000 };
const BOOT = '0c4b8a1e-2f3d-4e5f-8a9b-0123456789ab';
const A = 'aaaa0001';
const B = 'bbbb0002';

function store(files: MemoryFiles, clock = fakeTime(T0).clock): StateStore {
  return new StateStore({ path: PATH, files, clock, bootId: BOOT, limit: LIMIT, metrics: createMetrics({ defaultMetrics: false }) });
}

void describe('StateStore.reserve: the budget on disk', () => {
  void it('records the attempt durably before granting it', async () => {
    const files = new MemoryFiles();
    const reservation = await store(files).reserve(A, []);
    assert.equal(reservation.granted, true);
    assert.equal(parseState(files.text(PATH) ?? '')?.exchanges.length, 1, 'on disk before the exchange is sent');
  });

  // Found: with the volume full, the attempt could not be recorded and was sent anyway (118 exchanges in 60 s).
  void it('fails closed: when the attempt cannot be written, it throws and nothing is granted', async () => {
    const files = new MemoryFiles();
    files.failNext = 1;
    await assert.rejects(store(files).reserve(A, []), (error: unknown) => error instanceof DiskError && error.code === 'write_failed');
  });

  // Found: two daemons on one JWT file each kept their own budget (20 in 60 s) and lost records (39 sent, 31 kept).
  void it('two processes on one state file share one budget and lose no record', async () => {
    const files = new MemoryFiles();
    const { clock, timers } = fakeTime(T0);
    const one = store(files, clock);
    const two = store(files, clock);
    let granted = 0;
    for (let i = 0; i < 30; i += 1) {
      const mine = i % 2 === 0 ? one : two;
      if ((await mine.reserve(A, [])).granted) granted += 1;
      await timers.advance(100);
    }
    assert.equal(granted, 10, 'ten for both together');
    assert.equal(parseState(files.text(PATH) ?? '')?.exchanges.length, 10, 'every granted attempt is on disk');
  });

  void it('refuses once the identity\'s cap is spent, and says when the next is allowed', async () => {
    const files = new MemoryFiles();
    const s = store(files);
    for (let i = 0; i < 10; i += 1) assert.equal((await s.reserve(A, [])).granted, true);
    const refused = await s.reserve(A, []);
    assert.equal(refused.granted, false);
    assert.ok(refused.nextAllowedAtMs > 0);
    assert.equal((await s.reserve(B, [])).granted, true, 'another identity has its own budget');
  });

  // Found: records read back were never pruned (5,000 year-old records survived; ~7,100 filled a 1 MiB volume).
  void it('stays small: after 10,000 attempts over a day the file holds only the last window', async () => {
    const files = new MemoryFiles();
    const { clock, timers } = fakeTime(T0);
    const s = store(files, clock);
    const ancient = JSON.stringify({ version: 2, bootId: BOOT, exchanges: Array.from({ length: 5_000 }, (_, i) => ({ key: A, at: T0 - 31_536_000_000 - i, mono: 1 })), jwt: null });
    files.tamper(PATH, ancient);
    let granted = 0;
    for (let i = 0; i < 10_000; i += 1) {
      const key = (i % 7).toString(16).padStart(8, '0');
      if ((await s.reserve(key, [])).granted) granted += 1;
      await timers.advance(8_640);
    }
    const text = files.text(PATH) ?? '';
    assert.ok(granted > 9_000, `${String(granted)} granted`);
    assert.ok(Buffer.byteLength(text) < 4_096, `the state file is ${String(Buffer.byteLength(text))} bytes`);
    assert.ok((parseState(text)?.exchanges.length ?? 0) <= 20);
  });

  void it('a damaged state file is started afresh, not trusted and not fatal', async () => {
    const files = new MemoryFiles();
    files.tamper(PATH, '{"version": 2, "exchanges": [');
    const s = store(files);
    assert.match((await s.load()).problem ?? '', /damaged/);
    assert.equal((await s.reserve(A, [])).granted, true);
  });
});

void describe('StateStore.saveEntry', () => {
  void it('keeps every record on disk while it replaces the entry', async () => {
    const files = new MemoryFiles();
    const s = store(files);
    await s.reserve(A, []);
    await s.reserve(A, []);
    const records = await s.saveEntry(undefined, []);
    assert.equal(records.length, 2);
    assert.equal(parseState(files.text(PATH) ?? '')?.exchanges.length, 2);
  });
});
