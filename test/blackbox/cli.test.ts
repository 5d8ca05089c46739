import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PROJECT_ROOT, runCli } from '../helpers/daemon.ts';

/** [what, argv, env, the option the one-line message must name] */
const BAD: readonly (readonly [string, readonly string[], Record<string, string>, string])[] = [
  ['unknown flag', ['--no-such-flag'], {}, '--no-such-flag'],
  ['unknown command', ['launch'], {}, 'launch'],
  ['bad duration', ['--timeout', '10 parsecs'], {}, '--timeout'],
  ['empty duration', ['--min-ttl='], {}, '--min-ttl'],
  ['negative duration', ['--min-ttl', '-5s'], {}, '--min-ttl'],
  ['bad mode', ['--jwt-file-mode', '0999'], {}, '--jwt-file-mode'],
  ['bad format', ['--jwt-format', 'yaml'], {}, '--jwt-format'],
  ['bad URL', ['--api-url', 'not a url'], {}, '--api-url'],
  ['non-http URL', ['--api-url', 'ftp://api.enkryptify.com'], {}, '--api-url'],
  ['port out of range', ['--listen', '127.0.0.1:65536'], {}, '--listen'],
  ['metrics port out of range', ['--metrics-listen', '0.0.0.0:99999'], {}, '--metrics-listen'],
  ['non-loopback token API', ['--listen', '0.0.0.0:9731'], {}, '--listen'],
  ['window a > b', ['--refresh-window', '0.8,0.6'], {}, '--refresh-window'],
  ['window b = 1', ['--refresh-window', '0.6,1'], {}, '--refresh-window'],
  ['window a = 0', ['--refresh-window', '0,0.5'], {}, '--refresh-window'],
  ['window one number', ['--refresh-window', '0.7'], {}, '--refresh-window'],
  ['bad rate limit', ['--rate-limit', 'ten/1m'], {}, '--rate-limit'],
  ['zero rate limit', ['--rate-limit', '0/1m'], {}, '--rate-limit'],
  ['bad log level', ['--log-level', 'loud'], {}, '--log-level'],
  ['bad boolean flag', ['--delete-on-exit=perhaps'], {}, '--delete-on-exit'],
  ['missing CA file', ['--ca-file', '/nonexistent/ca.pem'], {}, '--ca-file'],
  ['hook with a pipe', ['--on-refresh', 'echo a | tee b'], {}, '--on-refresh'],
  ['bad env duration', [], { EK_TIMEOUT: 'soon' }, 'EK_TIMEOUT'],
  ['bad env boolean', [], { EK_DELETE_ON_EXIT: 'yes please' }, 'EK_DELETE_ON_EXIT'],
  ['bad env mode', [], { EK_JWT_FILE_MODE: 'rw-r-----' }, 'EK_JWT_FILE_MODE'],
  ['bad env listen', [], { EK_LISTEN: '10.0.0.1:9731' }, 'EK_LISTEN'],
];

describe('bad configuration exits 2 with one line naming the option', { concurrency: 4 }, () => {
  for (const [what, argv, env, option] of BAD) {
    test(what, async () => {
      // `check` would exit 1 on the missing JWT file: a 2 can only come from the configuration.
      const command = argv[0] === 'launch' ? argv : ['check', '--jwt-file', '/nonexistent/jwt', ...argv];
      const result = await runCli(command, env);
      assert.equal(result.code, 2, `stderr: ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line: ${result.stderr}`);
      assert.ok(lines[0]?.includes(option), `"${lines[0] ?? ''}" names ${option}`);
      assert.equal(result.stdout, '');
    });
  }

  test('flags win over the environment', async () => {
    const result = await runCli(['check', '--jwt-file', '/nonexistent/jwt', '--timeout', '5s'], { EK_TIMEOUT: 'garbage' });
    assert.equal(result.code, 1, result.stderr);
  });

  test('unknown EK_* variables (Kubernetes service links) are ignored', async () => {
    const result = await runCli(['check', '--jwt-file', '/nonexistent/jwt'], { EK_PORT: 'tcp://10.96.0.12:9731', EK_SERVICE_HOST: '10.96.0.12', EK_PORT_9731_TCP: 'tcp://10.96.0.12:9731' });
    assert.equal(result.code, 1, result.stderr);
  });
});

describe('--help and --version', () => {
  test('--version prints the package version', async () => {
    const manifest = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await runCli(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), manifest.version);
  });

  test('--help lists every command, flag and variable of SPEC.md', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    for (const word of ['run', 'once', 'check', '--api-url', '--token-file', '--jwt-file', '--jwt-file-mode', '--jwt-format', '--listen',
      '--allow-remote-token-access', '--metrics-listen', '--refresh-window', '--min-ttl', '--rate-limit', '--timeout', '--ca-file',
      '--on-refresh', '--log-level', '--delete-on-exit', 'EK_API_URL', 'EK_TOKEN_FILE', 'EK_DELETE_ON_EXIT', 'EK_API_TOKEN']) {
      assert.ok(result.stdout.includes(word), `--help mentions ${word}`);
    }
  });
});
