// The startup snapshot (src/snapshot/): what a process started from it must not inherit from the build, dist/bin.js
// restarting itself from it, and every way it falls back to the plain bundle. The rest of the black-box tier runs
// against both builds (test/helpers/daemon.ts); this file runs once, in the snapshot pass.
import assert from 'node:assert/strict';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { buildSnapshot, snapshotBundle } from '../../deploy/build/build.ts';
import { BUILD, PROJECT_ROOT, baseArgs, findLeaks, runCli, startDaemon, tempDir, waitFor } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';

const TOKEN = 'ek_live_snapshot_test_0123456789abcdef';
const FALLBACK = /^ek-sidecar: startup snapshot not used \((.+)\); starting from the plain bundle$/m;
/** Node's own trace of what it deserializes: a start from a user snapshot runs its deserialize-main function. */
const TRACE = { NODE_DEBUG_NATIVE: 'mksnapshot' };
const FROM_SNAPSHOT = 'snapshot_deserialize_main';

interface StateJwt {
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly refreshAt: string;
}

/** Where in its lifetime the daemon planned the refresh of its JWT: its random draw, from the state file. */
async function refreshFraction(jwtFile: string): Promise<number> {
  const state = JSON.parse(await readFile(`${jwtFile}.state.json`, 'utf8')) as { jwt: StateJwt | null };
  assert.ok(state.jwt !== null);
  const [issued, expires, refresh] = [state.jwt.issuedAt, state.jwt.expiresAt, state.jwt.refreshAt].map((text) => Date.parse(text));
  return ((refresh ?? 0) - (issued ?? 0)) / ((expires ?? 0) - (issued ?? 0));
}

/**
 * Loaded first in a snapshot bundle built for the test: records each read of the environment and each clock or random
 * call while the bundle loads (that is, while the snapshot is built: what the snapshot then holds is frozen), with
 * its stack, and writes them out just before the snapshot is taken.
 */
const RECORDER = `(() => {
  const out = process.env.EK_TEST_RECORD_TO;
  const v8 = require('node:v8'), fs = require('node:fs'), os = require('node:os'), crypto = require('node:crypto');
  Error.stackTraceLimit = 200;
  const reads = [];
  const note = (what) => { reads.push([what, new Error().stack]); };
  const env = process.env;
  process.env = new Proxy(env, {
    get(target, key) { if (typeof key === 'string') note('env ' + key); return Reflect.get(target, key); },
    has(target, key) { if (typeof key === 'string') note('env ' + key); return Reflect.has(target, key); },
    ownKeys(target) { note('env (all)'); return Reflect.ownKeys(target); },
  });
  const undo = [];
  const wrap = (owner, key, what) => {
    const fn = owner[key];
    const wrapped = function (...args) { note(what); return fn.apply(this, args); };
    if (typeof fn.bigint === 'function') { const big = fn.bigint; wrapped.bigint = (...args) => { note(what + '.bigint'); return big(...args); }; }
    owner[key] = wrapped;
    undo.push(() => { owner[key] = fn; });
  };
  wrap(Date, 'now', 'Date.now'); wrap(process, 'hrtime', 'process.hrtime'); wrap(process, 'uptime', 'process.uptime');
  wrap(performance, 'now', 'performance.now'); wrap(Math, 'random', 'Math.random'); wrap(os, 'hostname', 'os.hostname');
  for (const key of ['randomBytes', 'randomUUID', 'randomInt', 'getRandomValues']) wrap(crypto, key, 'crypto.' + key);
  v8.startupSnapshot.addSerializeCallback(() => { process.env = env; for (const restore of undo) restore(); fs.writeFileSync(out, JSON.stringify(reads)); });
})();
`;

/**
 * What the bundle reads from outside while it loads, by module, and why each is harmless frozen at build time. A new
 * entry fails the test: decide whether it may be frozen (then list it) or must be read at run time (then defer it).
 */
const FROZEN_AT_BUILD: Readonly<Record<string, string>> = {
  'env YARGS_MIN_NODE_VERSION @ node_modules/yargs-parser/build/lib/index.js': 'yargs-parser checks once that Node.js is recent enough',
  'env FORCE_COLOR @ node_modules/yargs/lib/platform-shims/esm.mjs': 'node:assert, which yargs loads, decides once whether its failure messages are colored',
  'env NODE_V8_COVERAGE @ node_modules/thread-stream/index.js': 'pino\'s worker transports, which ek-sidecar does not use (it logs to stdout synchronously)',
  'Date.now @ node_modules/pino/lib/time.js': 'the origin of pino\'s isoTimeNano; ek-sidecar logs with isoTime, which reads the clock at each line',
  'process.hrtime.bigint @ node_modules/pino/lib/time.js': 'the same, for isoTimeNano',
  'os.hostname @ node_modules/pino/pino.js': 'pino\'s default `base`, which ek-sidecar replaces (its lines carry no hostname)',
};

/** The module of an unminified bundle that a stack's first frame in it belongs to (esbuild heads each with `// path`). */
function moduleOf(stack: string, bundle: string, lines: readonly string[]): string | undefined {
  for (const frame of stack.split('\n').slice(1)) {
    const at = frame.lastIndexOf(`${bundle}:`);
    if (at < 0) continue;
    const line = Number(frame.slice(at + bundle.length + 1).split(':')[0]);
    for (let i = line - 1; i >= 0; i--) {
      const path = /^\/\/ ((?:node_modules|src)\/\S+)$/.exec(lines[i] ?? '')?.[1];
      if (path !== undefined) return path;
    }
  }
  return undefined;
}

void describe('what the snapshot freezes', { skip: BUILD === 'plain' ? 'runs once, in the snapshot pass' : false }, () => {
  void test('loading the bundle reads from the environment, the clock and the random generators only what is listed', async () => {
    const dir = await tempDir();
    try {
      const bundle = join(dir.path, 'entry.cjs');
      await build({ ...snapshotBundle({ outfile: bundle, minify: false, prelude: RECORDER }), logLevel: 'error' });
      const config = join(dir.path, 'config.json');
      await writeFile(config, JSON.stringify({ builder: bundle, withoutCodeCache: true }));
      const record = join(dir.path, 'reads.json');
      process.env.EK_TEST_RECORD_TO = record;
      try {
        buildSnapshot({ blob: join(dir.path, 'snapshot.blob'), config });
      } finally {
        delete process.env.EK_TEST_RECORD_TO;
      }
      const lines = (await readFile(bundle, 'utf8')).split('\n');
      const reads = JSON.parse(await readFile(record, 'utf8')) as [string, string][];
      const found = new Set(reads.map(([what, stack]) => `${what} @ ${moduleOf(stack, bundle, lines) ?? '(Node.js itself)'}`));
      // The recorder's own reads, and the builder's before the bundle runs, are not the bundle's.
      found.delete('env EK_TEST_RECORD_TO @ (Node.js itself)');
      assert.deepEqual([...found].sort(), Object.keys(FROZEN_AT_BUILD).sort());
    } finally {
      await dir.remove();
    }
  });
});

void describe('the startup snapshot', { skip: BUILD === 'plain' ? 'runs once, in the snapshot pass' : false }, () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let tokenFile: string;
  before(async () => {
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, limit: 1000 });
    dir = await tempDir();
    tokenFile = await createSecretVolume(join(dir.path, 'secret'), TOKEN);
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  void test('a daemon from it logs and reports the time of its own start, not of the build', async () => {
    const jwtFile = join(dir.path, 'jwt-times');
    const spawnedAt = Date.now();
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }), {}, { launch: 'snapshot' });
    const { metrics } = await daemon.ports();
    const started = Date.parse(String(daemon.logs()[0]?.time));
    assert.ok(Math.abs(started - spawnedAt) < 10_000, `first log line at ${String(daemon.logs()[0]?.time)}`);
    const scrape = await (await fetch(`http://127.0.0.1:${String(metrics)}/metrics`)).text();
    const startTime = Number(/^ek_sidecar_process_start_time_seconds (\d+)/m.exec(scrape)?.[1]);
    assert.ok(Math.abs(startTime * 1000 - spawnedAt) < 10_000, `process_start_time_seconds ${String(startTime)} is this start's`);
    assert.equal((await daemon.stop()).code, 0);
    assert.equal(daemon.stderr(), '');
  });

  void test('every process draws its own refresh point (Math.random is seeded per process)', async () => {
    const files = [join(dir.path, 'jwt-random-1'), join(dir.path, 'jwt-random-2')];
    const daemons = files.map((jwtFile) => startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }), {}, { launch: 'snapshot' }));
    const fractions = await Promise.all(files.map((jwtFile) => waitFor(async () => refreshFraction(jwtFile).catch(() => undefined), 10_000)));
    for (const daemon of daemons) assert.equal((await daemon.stop()).code, 0);
    // The same draw gives fractions equal to within the millisecond rounding of the times (about 1e-6).
    assert.ok(Math.abs((fractions[0] ?? 0) - (fractions[1] ?? 0)) > 1e-5, `both drew ${String(fractions[0])}`);
  });

  void test('dist/bin.js restarts itself from it for run and once, not for check', async () => {
    const jwtFile = join(dir.path, 'jwt-launcher');
    const once = await runCli(['once', '--api-url', api.url, '--token-file', tokenFile, '--jwt-file', jwtFile], TRACE, { launch: 'launcher' });
    assert.equal(once.code, 0, once.stderr.slice(-2_000));
    assert.ok(once.stderr.includes(FROM_SNAPSHOT), 'once ran from the snapshot');
    assert.doesNotMatch(once.stderr, FALLBACK);

    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile }), TRACE, { launch: 'launcher' });
    await daemon.ports();
    assert.equal((await daemon.stop()).code, 0);
    assert.ok(daemon.stderr().includes(FROM_SNAPSHOT), 'run ran from the snapshot');

    const check = await runCli(['check', '--jwt-file', jwtFile], TRACE, { launch: 'launcher' });
    assert.equal(check.code, 0);
    assert.match(check.stdout, /^expiresAt=\S+ secondsLeft=\d+\n$/);
    assert.ok(!check.stderr.includes(FROM_SNAPSHOT), 'check starts from the plain bundle: no second start');
  });

  void describe('falls back to the plain bundle, saying why in one line', () => {
    /** A copy of dist/ beside which the snapshot is as `change` leaves it. */
    async function distCopy(name: string, change: (copy: string) => Promise<void>): Promise<string> {
      const copy = join(dir.path, name);
      await cp(join(PROJECT_ROOT, 'dist'), copy, { recursive: true });
      await change(copy);
      return join(copy, 'bin.js');
    }

    const cases: readonly { name: string; change: (copy: string) => Promise<void>; why: RegExp }[] = [
      { name: 'no-blob', change: (copy) => rm(join(copy, 'snapshot.blob')), why: /snapshot\.blob is missing/ },
      { name: 'no-stamp', change: (copy) => rm(join(copy, 'snapshot.json')), why: /snapshot\.json is missing/ },
      {
        name: 'other-node',
        change: async (copy) => {
          const stamp = JSON.parse(await readFile(join(copy, 'snapshot.json'), 'utf8')) as Record<string, unknown>;
          await writeFile(join(copy, 'snapshot.json'), JSON.stringify({ ...stamp, node: 'v24.0.0' }));
        },
        why: /built by Node\.js v24\.0\.0 \([\w-]+\), this is v\d+\.\d+\.\d+/,
      },
      {
        name: 'other-binary',
        change: async (copy) => {
          const stamp = JSON.parse(await readFile(join(copy, 'snapshot.json'), 'utf8')) as { binary: { size: number } };
          await writeFile(join(copy, 'snapshot.json'), JSON.stringify({ ...stamp, binary: { ...stamp.binary, size: stamp.binary.size + 1 } }));
        },
        why: /built by another Node\.js binary of the same version/,
      },
      { name: 'bad-stamp', change: (copy) => writeFile(join(copy, 'snapshot.json'), '{'), why: /JSON|stamp/ },
    ];
    for (const { name, change, why } of cases) {
      void test(name, async () => {
        const cli = await distCopy(name, change);
        const jwtFile = join(dir.path, `jwt-${name}`);
        const once = await runCli(['once', '--api-url', api.url, '--token-file', tokenFile, '--jwt-file', jwtFile], TRACE, { launch: 'launcher', cli });
        assert.equal(once.code, 0, once.stderr.slice(-2_000));
        const lines = once.stderr.split('\n').filter((line) => line.startsWith('ek-sidecar:'));
        assert.equal(lines.length, 1, lines.join('\n'));
        assert.match(lines[0] ?? '', FALLBACK);
        assert.match(FALLBACK.exec(lines[0] ?? '')?.[1] ?? '', why);
        assert.ok(!once.stderr.includes(FROM_SNAPSHOT), 'the plain bundle ran');
        assert.ok((await readFile(jwtFile, 'utf8')).length > 0);
        // check never looks for the snapshot, so it never says so.
        const check = await runCli(['check', '--jwt-file', jwtFile], {}, { launch: 'launcher', cli });
        assert.equal(check.code, 0);
        assert.equal(check.stderr, '');
      });
    }

    void test('EK_SIDECAR_SNAPSHOT=off: the plain bundle, nothing said', async () => {
      const jwtFile = join(dir.path, 'jwt-off');
      const once = await runCli(['once', '--api-url', api.url, '--token-file', tokenFile, '--jwt-file', jwtFile], { ...TRACE, EK_SIDECAR_SNAPSHOT: 'off' }, { launch: 'launcher' });
      assert.equal(once.code, 0);
      assert.doesNotMatch(once.stderr, FALLBACK);
      assert.ok(!once.stderr.includes(FROM_SNAPSHOT));
    });
  });

  void test('no token or JWT in anything printed', () => {
    assert.deepEqual(findLeaks([TOKEN, ...api.issued()]), []);
  });
});
