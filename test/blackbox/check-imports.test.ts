import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PROJECT_ROOT, tempDir } from '../helpers/daemon.ts';

const RECORDER = join(PROJECT_ROOT, 'test', 'helpers', 'record-imports.ts');
const BIN = join(PROJECT_ROOT, 'src', 'bin.ts');

/**
 * What `check` may load: it runs as an exec probe every few seconds, so it must not pay for the daemon's runtime.
 * Yes: yargs (the command line), the option table and its pure parsers, the JWT file reader (jose's decoder).
 * No: the libraries and modules below, which only `run` and `once` reach, through dynamic imports.
 */
const FORBIDDEN: readonly (readonly [string, RegExp])[] = [
  ['chokidar', /\/node_modules\/chokidar\//],
  ['undici', /\/node_modules\/undici\//],
  ['prom-client', /\/node_modules\/prom-client\//],
  ['pino', /\/node_modules\/pino[^/]*\//],
  ['shell-quote', /\/node_modules\/shell-quote\//],
  ['node:child_process', /^node:child_process$/],
  ['node:http', /^node:https?$/],
  ['the hook runner', /\/src\/hooks\//],
  ['the --on-refresh parser', /\/src\/config\/hook-command\.ts$/],
  ['the token file watcher', /\/src\/credentials\/api-token\.ts$/],
  ['the upstream client', /\/src\/upstream\/exchange-client\.ts$/],
  ['the http layer', /\/src\/http\//],
  ['logs and metrics', /\/src\/observe\//],
  ['the refresher', /\/src\/refresh\/refresher\.ts$/],
  ['run and once', /\/src\/commands\/(run|once|core)\.ts$/],
];

/** Run `node src/bin.ts check …` (TypeScript as it is, unbundled) with the recorder; resolve with the exit code and what it loaded. */
async function recordCheck(args: readonly string[], env: Record<string, string>, record: string): Promise<{ code: number | null; loaded: string[] }> {
  const child = spawn(process.execPath, ['--import', RECORDER, BIN, 'check', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, RECORD_IMPORTS_TO: record },
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, loaded: JSON.parse(await readFile(record, 'utf8')) as string[] };
}

/** A JWT (unsigned, as check never verifies) that expires in an hour. */
function jwtExpiringIn(seconds: number): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ exp: Math.floor(Date.now() / 1000) + seconds })}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk`;
}

describe('check loads no runtime module it does not need', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    dir = await tempDir();
  });
  after(async () => {
    await dir.remove();
  });

  // Every daemon variable set, as in the sidecar's own container: none of them may pull its parser in.
  const DAEMON_ENV = { EK_ON_REFRESH: 'kill -HUP 1', EK_CA_FILE: '/nonexistent/ca.pem', EK_LISTEN: '0.0.0.0:9731', EK_API_TOKEN: 'ek_live_x', EK_AUTH: 'oidc', EK_LOG_FORMAT: 'text' };
  const cases: readonly (readonly [string, () => Promise<string[]>, number])[] = [
    ['a valid JWT file', async () => {
      const jwtFile = join(dir.path, 'jwt');
      await writeFile(jwtFile, jwtExpiringIn(3600));
      return ['--jwt-file', jwtFile];
    }, 0],
    ['a missing JWT file', () => Promise.resolve(['--jwt-file', join(dir.path, 'missing')]), 1],
    ['a bad flag', () => Promise.resolve(['--min-ttl', 'soon']), 2],
  ];
  for (const [what, args, expectedCode] of cases) {
    test(`${what}: exit ${String(expectedCode)}`, async () => {
      const { code, loaded } = await recordCheck(await args(), DAEMON_ENV, join(dir.path, `loaded-${String(expectedCode)}.json`));
      assert.equal(code, expectedCode);
      // The recorder works: what check needs is there.
      assert.ok(loaded.some((url) => url.endsWith('/src/commands/check.ts')), 'commands/check.ts recorded');
      assert.ok(loaded.some((url) => url.includes('/node_modules/yargs/')), 'yargs recorded');
      for (const [name, pattern] of FORBIDDEN) {
        const found = loaded.filter((url) => pattern.test(url));
        assert.deepEqual(found, [], `check loaded ${name}`);
      }
    });
  }
});
