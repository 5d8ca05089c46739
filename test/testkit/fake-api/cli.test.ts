// The fake API as its own process (testkit/fake-api/cli.ts), driven through its control API, as the demo, the
// benchmarks and black-box tests of the sidecar use it. Never a token on its stdout or stderr.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { OIDC_EXCHANGE_PATH, type LogEntry } from '../../../testkit/fake-api/server.ts';
import { createProjectedTokenIssuer, serviceAccountSubject } from '../../../testkit/projected-token.ts';
import { tempDir } from '../../helpers/daemon.ts';
import { assertMessage, call, json, object, type Answer } from '../../helpers/fake-api-client.ts';

const CLI = join(import.meta.dirname, '..', '..', '..', 'testkit', 'fake-api', 'cli.ts');
const SUB = serviceAccountSubject('default', 'app');

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(cleanups.map((c) => c()));
});

interface Running {
  readonly child: ChildProcessWithoutNullStreams;
  readonly ready: { url: string; port: number; oidc?: { issuer: string; audience: string; alg: string; kid: string } };
  output(): string;
  stop(): Promise<number | null>;
}

async function run(args: readonly string[]): Promise<Running> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  output += line;
  const stop = async (): Promise<number | null> => {
    if (child.exitCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    return code;
  };
  cleanups.push(async () => { await stop(); });
  return { child, ready: JSON.parse(line) as Running['ready'], output: () => output, stop };
}

async function control(url: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  return object(await call(url, `/__control${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) }));
}

function oidc(url: string, token: string, workspaceId: string): Promise<Answer> {
  return call(url, OIDC_EXCHANGE_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, workspaceId }) });
}

void describe('fake API CLI', () => {
  void test('--oidc-test-issuer: the ready line names the key; control mints tokens, binds, seeds secrets and sets read faults', async () => {
    const dir = await tempDir();
    cleanups.push(() => dir.remove());
    const seed = join(dir.path, 'secrets.json');
    await writeFile(seed, JSON.stringify({ 'ws-1': { 'prj-1': { 'env-1': { DB_URL: 'postgres://seeded' } } } }));
    const fake = await run(['--oidc-test-issuer', '--oidc-bind', `${SUB}=ws-1`, '--secrets', seed]);
    const { url, oidc: issuer } = fake.ready;
    assert.ok(issuer !== undefined, 'the ready line names the test issuer');
    assert.equal(issuer.alg, 'ES256');
    assert.match(issuer.kid, /^[0-9a-f-]{36}$/);
    assert.equal(issuer.audience, 'enkryptify');

    const token = String((await control(url, '/oidc/token', {})).token);
    const granted = await oidc(url, token, 'ws-1');
    assert.equal(granted.status, 200);
    assertMessage(await oidc(url, token, 'ws-2'), 403);
    await control(url, '/bind', { sub: SUB, workspaceId: 'ws-2' });
    assert.equal((await oidc(url, token, 'ws-2')).status, 200);
    assertMessage(await oidc(url, String((await control(url, '/oidc/token', { flaw: 'expired' })).token), 'ws-1'), 401);
    assert.match(String((await control(url, '/oidc/token', { flaw: 'nope' })).message), /flaw/);

    const jwt = String(object(granted).accessToken);
    const path = '/v1/workspace/ws-1/project/prj-1/secret?environmentId=env-1&resolve=true';
    const headers = { authorization: `Bearer ${jwt}` };
    assert.equal((json(await call(url, path, { headers })) as { values: { value: string }[] }[])[0]?.values[0]?.value, 'postgres://seeded');
    await control(url, '/secret', { workspace: 'ws-1', project: 'prj-1', environment: 'env-1', name: 'DB_URL', value: null });
    assert.deepEqual(json(await call(url, path, { headers })), []);
    await control(url, '/mode', { fault: '401', route: 'reads' });
    assertMessage(await call(url, path, { headers }), 401);
    await control(url, '/mode', { fault: 'ok', route: 'reads' });
    assert.equal((await call(url, path, { headers })).status, 200);
    assert.match(String((await control(url, '/mode', { fault: 'not-json', route: 'reads' })).message), /exchange answer/);

    const log = await control(url, '/log');
    assert.deepEqual(log.subCounts, { [SUB]: 3 });
    const entries = log.entries as LogEntry[];
    assert.deepEqual(entries.filter((e) => e.route === 'secrets').map((e) => e.credential), ['jwt', 'jwt', 'jwt', 'jwt']);
    assert.equal(await fake.stop(), 0);
    for (const secret of [token, jwt, 'postgres://seeded']) assert.ok(!fake.output().includes(secret), 'nothing secret on stdout or stderr');
  });

  void test('--oidc-issuer with --oidc-public-key trusts an outside issuer, from a PEM or a JWK file', async () => {
    const dir = await tempDir();
    cleanups.push(() => dir.remove());
    const issuer = await createProjectedTokenIssuer({ issuer: 'https://oidc.example/cluster' });
    const pem = join(dir.path, 'key.pem');
    const jwk = join(dir.path, 'key.json');
    await writeFile(pem, issuer.publicPem);
    await writeFile(jwk, JSON.stringify(issuer.publicJwk));
    for (const file of [pem, jwk]) {
      const fake = await run(['--oidc-issuer', issuer.issuer, '--oidc-public-key', file, '--oidc-audience', 'ek-test']);
      assert.equal(fake.ready.oidc, undefined);
      assert.equal((await oidc(fake.ready.url, await issuer.mint({ audience: ['ek-test'] }), 'ws')).status, 200, file);
      assertMessage(await oidc(fake.ready.url, await issuer.mint(), 'ws'), 401);
      assert.equal((await control(fake.ready.url, '/oidc/token', {})).message !== undefined, true, 'no minting without a test issuer');
      assert.equal(await fake.stop(), 0);
    }
  });

  void test('bad flags exit 2 with one line naming the flag', async () => {
    for (const [args, pattern] of [
      [['--oidc-issuer', 'x'], /--oidc-issuer and --oidc-public-key go together/],
      [['--oidc-test-issuer', '--oidc-bind', 'app=ws'], /--oidc-bind/],
      [['--accept-any-token', '--secrets', '/nonexistent/secrets.json'], /--secrets: cannot read/],
      [[], /at least one --token/],
    ] as const) {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, pattern);
    }
  });
});
