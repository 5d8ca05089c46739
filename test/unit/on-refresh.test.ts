import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHookRunner, hookTimingFromEnv, HOOK_DEADLINE_MS, type HookRunner, type HookRunnerOptions } from '../../src/hooks/on-refresh.ts';
import { createLogger } from '../../src/observe/log.ts';
import { tempDir, waitFor, type LogLine } from '../helpers/daemon.ts';
import { processGone, readPids } from '../helpers/processes.ts';

// Hooks here are real `sh` processes; they wait on files the test creates, never on the clock, except the ones
// whose point is to outlive their deadline (a few hundred ms).

let dir: Awaited<ReturnType<typeof tempDir>>;
before(async () => { dir = await tempDir(); });
after(async () => { await dir.remove(); });

let counter = 0;
/** A fresh path in the test directory. */
const path = (name: string): string => join(dir.path, `${name}-${String((counter += 1))}`);

async function runner(script: string, options: Partial<HookRunnerOptions> = {}): Promise<{ hook: HookRunner; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const log = await createLogger({ level: 'debug', destination: { write: (line: string) => { logs.push(JSON.parse(line) as LogLine); } } });
  const hook = createHookRunner({ argv: ['sh', '-c', script], jwtFile: '/run/jwt', log, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, ...options });
  return { hook, logs };
}

const messages = (logs: readonly LogLine[]): string[] => logs.map((line) => line.msg ?? '');

async function allGone(pids: readonly number[]): Promise<boolean> {
  return (await Promise.all(pids.map(processGone))).every(Boolean);
}

void describe('createHookRunner: runs', () => {
  void it('passes EK_JWT_FILE and never EK_API_TOKEN', async () => {
    const out = path('env');
    const { hook } = await runner(`env > ${out}`, { env: { PATH: process.env.PATH ?? '', EK_API_TOKEN: 'ek_live_x', KEEP: 'yes' } });
    hook.run();
    await hook.idle();
    const env = await readFile(out, 'utf8');
    assert.match(env, /^EK_JWT_FILE=\/run\/jwt$/m);
    assert.match(env, /^KEEP=yes$/m);
    assert.doesNotMatch(env, /EK_API_TOKEN/);
  });

  void it('never overlaps: calls during a run queue exactly one more run', async () => {
    const marks = path('marks');
    const go = path('go');
    const { hook } = await runner(`echo run >> ${marks}; while [ ! -e ${go} ]; do sleep 0.01; done`);
    hook.run();
    await waitFor(async () => (await readFile(marks, 'utf8').catch(() => '')) !== '');
    hook.run();
    hook.run();
    hook.run();
    assert.equal(await readFile(marks, 'utf8'), 'run\n', 'the queued run waits for the first');
    await writeFile(go, '');
    await hook.idle();
    assert.equal(await readFile(marks, 'utf8'), 'run\nrun\n');
  });

  void it('logs success at debug and a failure at error', async () => {
    const good = await runner('true');
    good.hook.run();
    await good.hook.idle();
    assert.equal(good.logs.find((line) => line.msg === '--on-refresh command succeeded')?.level, 'debug');
    const bad = await runner('exit 3');
    bad.hook.run();
    await bad.hook.idle();
    const failed = bad.logs.find((line) => line.msg === '--on-refresh command failed');
    assert.equal(failed?.level, 'error');
    assert.equal(failed.exitCode, 3);
  });

  void it('a command that cannot start is logged, and the next run is tried again', async () => {
    const { hook, logs } = await runner('', { argv: ['/nonexistent/hook', '--flag'] });
    hook.run();
    await hook.idle();
    hook.run();
    await hook.idle();
    const lost = logs.filter((line) => line.msg?.startsWith('--on-refresh command could not start'));
    assert.equal(lost.length, 2);
    assert.equal(lost[0]?.level, 'error');
  });
});

void describe('createHookRunner: containment', () => {
  void it('kills the whole group at the deadline, even a hook that ignores SIGTERM, and later runs still happen', async () => {
    const pids = path('pids');
    const marks = path('marks');
    // `trap "" TERM` is inherited by the background sleep too: only SIGKILL ends either.
    const { hook, logs } = await runner(`trap "" TERM; echo run >> ${marks}; sleep 30 & echo $! >> ${pids}; echo $$ >> ${pids}; wait`, { deadlineMs: 200, graceMs: 100 });
    hook.run();
    hook.run();
    await hook.idle();
    assert.equal(await readFile(marks, 'utf8'), 'run\nrun\n', 'the queued run was not blocked');
    const seen = await readPids(pids);
    assert.equal(seen.length, 4);
    await waitFor(() => allGone(seen), 2_000, () => 'no process of either run to be left');
    assert.equal(messages(logs).filter((msg) => msg.includes('exceeded its deadline')).length, 2);
  });

  void it('stops what a finished hook left running in its group', async () => {
    const pids = path('pids');
    const { hook } = await runner(`sleep 30 & echo $! > ${pids}`, { graceMs: 200 });
    hook.run();
    await hook.idle();
    const [grandchild] = await readPids(pids);
    assert.ok(grandchild !== undefined);
    await waitFor(() => processGone(grandchild), 2_000, () => 'the forked sleep to be stopped after the hook exited');
  });

  void it('close() stops the running group within its grace, and no run starts after it', async () => {
    const pids = path('pids');
    const marks = path('marks');
    const { hook } = await runner(`trap "" TERM; echo run >> ${marks}; sleep 30 & echo $! >> ${pids}; echo $$ >> ${pids}; wait`);
    hook.run();
    await waitFor(async () => (await readPids(pids)).length === 2);
    hook.run(); // queued, then dropped by close()
    await hook.close(100);
    // close() resolves once the group is empty or has been sent SIGKILL, which the kernel completes at once.
    await waitFor(async () => allGone(await readPids(pids)), 1_000, () => 'the group to be gone');
    hook.run();
    await hook.idle();
    assert.equal(await readFile(marks, 'utf8'), 'run\n');
  });

  void it('a hook still running when the process exits is killed by the exit net', async () => {
    const pids = path('pids');
    const module = fileURLToPath(new URL('../../src/hooks/on-refresh.ts', import.meta.url));
    const logModule = fileURLToPath(new URL('../../src/observe/log.ts', import.meta.url));
    // A separate Node process that starts a hook and exits without close(): only the 'exit' net can stop it.
    const script = `
      const { createHookRunner } = await import(${JSON.stringify(module)});
      const { createLogger } = await import(${JSON.stringify(logModule)});
      const hook = createHookRunner({ argv: ['sh', '-c', 'trap "" TERM; sleep 30 & echo $! >> ${pids}; echo $$ >> ${pids}; wait'], jwtFile: '/x', log: await createLogger({ level: 'silent' }) });
      hook.run();
      const { readFile } = await import('node:fs/promises');
      while ((await readFile(${JSON.stringify(pids)}, 'utf8').catch(() => '')).split('\\n').length < 3) await new Promise((r) => setTimeout(r, 10));
      process.exit(0);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve) => { child.once('exit', resolve); });
    assert.equal(code, 0);
    const seen = await readPids(pids);
    assert.equal(seen.length, 2);
    await waitFor(() => allGone(seen), 2_000, () => 'the exit net to have killed the group');
  });
});

void describe('createHookRunner: output', () => {
  void it('logs stdout at info and stderr at warn, line by line, through the redactor', async () => {
    const jwt = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from('{"sub":"s"}').toString('base64url')}.c2lnbmF0dXJl`;
    const { hook, logs } = await runner(`echo "reloaded"; echo "jwt ${jwt}"; echo "oops ek_live_secret_value" >&2; printf 'no newline'`);
    hook.run();
    await hook.idle();
    const output = logs.filter((line) => line.hookOutput !== undefined).map((line) => [line.level, line.hookOutput, line.msg]);
    assert.deepEqual(output.filter(([, stream]) => stream === 'stdout'), [
      ['info', 'stdout', 'reloaded'], ['info', 'stdout', 'jwt [redacted]'], ['info', 'stdout', 'no newline'],
    ]);
    assert.deepEqual(output.filter(([, stream]) => stream === 'stderr'), [['warn', 'stderr', 'oops [redacted]']]);
    assert.ok(!JSON.stringify(logs).includes(jwt.split('.')[1] ?? 'x'));
  });

  void it('bounds line length and lines per run', async () => {
    const { hook, logs } = await runner(`i=0; while [ $i -lt 50 ]; do echo "line $i"; i=$((i+1)); done; head -c 10000 /dev/zero | tr '\\0' x`, { maxLinesPerRun: 10, maxLineBytes: 64 });
    hook.run();
    await hook.idle();
    const lines = logs.filter((line) => line.hookOutput === 'stdout');
    assert.equal(lines.length, 10);
    assert.deepEqual(lines.map((line) => line.msg), Array.from({ length: 10 }, (_, i) => `line ${String(i)}`));
    const summary = logs.find((line) => line.msg?.startsWith('--on-refresh output beyond 10 lines'));
    assert.equal(summary?.dropped, 41);
  });

  void it('marks a truncated line', async () => {
    const { hook, logs } = await runner(`head -c 5000 /dev/zero | tr '\\0' y; echo`, { maxLineBytes: 100 });
    hook.run();
    await hook.idle();
    const line = logs.find((entry) => entry.hookOutput === 'stdout');
    assert.equal(line?.msg, 'y'.repeat(100));
    assert.equal(line.truncated, true);
  });
});

void describe('hookTimingFromEnv', () => {
  const table: readonly { value: string | undefined; deadlineMs: number; graceMs: number }[] = [
    { value: undefined, deadlineMs: HOOK_DEADLINE_MS, graceMs: 5_000 },
    { value: '300', deadlineMs: 300, graceMs: 300 },
    { value: '10000', deadlineMs: 10_000, graceMs: 5_000 },
    { value: '999999999', deadlineMs: HOOK_DEADLINE_MS, graceMs: 5_000 },
    { value: '0', deadlineMs: HOOK_DEADLINE_MS, graceMs: 5_000 },
    { value: '-5', deadlineMs: HOOK_DEADLINE_MS, graceMs: 5_000 },
    { value: '1.5', deadlineMs: HOOK_DEADLINE_MS, graceMs: 5_000 },
    { value: 'soon', deadlineMs: HOOK_DEADLINE_MS, graceMs: 5_000 },
  ];
  for (const row of table) {
    void it(`EK_TEST_HOOK_DEADLINE_MS=${String(row.value)}`, () => {
      const env = row.value === undefined ? {} : { EK_TEST_HOOK_DEADLINE_MS: row.value };
      assert.deepEqual(hookTimingFromEnv(env), { deadlineMs: row.deadlineMs, graceMs: row.graceMs });
    });
  }
});
