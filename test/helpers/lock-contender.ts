// A process contending for a file lock, for test/unit/file-lock.test.ts. Run with the project's node:
//   count <lockPath> <counterPath> <iterations> <staleMs>: increment a counter file under the lock `iterations`
//     times; an `overlap` file beside the counter records any moment two holders were inside at once.
//   hold <lockPath> <staleMs>: take the lock, print "holding", and never let go (the test kills it with SIGKILL).
//   exit <lockPath>: take the lock and call process.exit(0) inside fn (a clean shutdown in the middle).
import { readFile, writeFile, rm, appendFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createExclusive } from '../../src/disk/temporary-files.ts';
import { withFileLock } from '../../src/disk/file-lock.ts';

const [mode, lockPath = '', ...rest] = process.argv.slice(2);

if (mode === 'count') {
  const [counterPath = '', iterations = '0', staleMs = '5000'] = rest;
  const inside = join(dirname(counterPath), 'inside');
  for (let i = 0; i < Number(iterations); i++) {
    await withFileLock(lockPath, async () => {
      const marker = await createExclusive(inside, 0o600).catch(async () => {
        await appendFile(join(dirname(counterPath), 'overlap'), `${String(process.pid)}\n`);
        return undefined;
      });
      const count = Number(await readFile(counterPath, 'utf8').catch(() => '0'));
      await new Promise((resolve) => setImmediate(resolve));
      await writeFile(counterPath, String(count + 1));
      await marker?.close();
      if (marker !== undefined) await rm(inside);
    }, { staleMs: Number(staleMs), waitMs: 30_000 });
  }
  process.stdout.write('done');
} else if (mode === 'hold') {
  const [staleMs = '5000'] = rest;
  // A live process: the lock's own heartbeat timer does not keep the event loop alive.
  setInterval(() => undefined, 1_000);
  await withFileLock(lockPath, async () => {
    process.stdout.write('holding');
    await new Promise(() => undefined);
  }, { staleMs: Number(staleMs) });
} else if (mode === 'exit') {
  await withFileLock(lockPath, () => process.exit(0));
} else {
  process.stderr.write(`unknown mode ${String(mode)}\n`);
  process.exit(2);
}
