import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PROJECT_ROOT, runCli } from '../helpers/daemon.ts';

const PEM = join(PROJECT_ROOT, 'test', 'fixtures', 'pem');
const SECRET = 'ek_live_Zq9SECRETv2cli';

type Command = 'run' | 'once' | 'check' | 'as given';

/**
 * [what, argv, env, the option the one-line message must name, the command]. Every row would exit 1 at once if its
 * configuration were accepted (the JWT directory does not exist, the API is a closed loopback port): a 2 can only
 * come from the configuration, and nothing is ever sent anywhere.
 *
 * These rows prove the wiring (the command line, each command, flags and variables, the files read at start-up):
 * exit 2, one line naming the option, no secret echoed. Each value's rules are the unit tier's, against the option
 * table without a process: test/unit/config-errors.test.ts (every option, by flag and by variable, and no secret
 * shape in any message), config-values.test.ts, config-files.test.ts (CA, TLS pairs) and config.test.ts (--on-refresh).
 */
const BAD: readonly (readonly [string, readonly string[], Record<string, string>, string, Command])[] = [
  ['unknown flag', ['--no-such-flag'], {}, '--no-such-flag', 'run'],
  ['unknown command', ['launch'], {}, 'launch', 'as given'],
  ['a second command after run', ['run', 'once'], {}, 'once', 'as given'],
  // `run` after a flag is still the command (it would be an unknown argument otherwise).
  ['run after a flag', ['--min-ttl', '5s', 'run', '--metrics-listen', 'nonsense'], {}, '--metrics-listen', 'as given'],
  ['bad duration', ['--timeout', '10 parsecs'], {}, '--timeout', 'once'],
  ['empty duration', ['--min-ttl='], {}, '--min-ttl', 'check'],
  ['world-writable mode', ['--jwt-file-mode', '0666'], {}, '--jwt-file-mode', 'run'],
  ['non-loopback token API', ['--listen', '0.0.0.0:9731'], {}, '--listen', 'run'],
  ['bad boolean flag', ['--delete-on-exit=perhaps'], {}, '--delete-on-exit', 'run'],
  ['missing CA file', ['--ca-file', '/nonexistent/ca.pem'], {}, '--ca-file', 'once'],
  ['a TLS key of another certificate', ['--tls-cert-file', join(PEM, 'a.crt'), '--tls-key-file', join(PEM, 'b.key')], {}, '--tls-key-file', 'run'],
  ['bad log format', [], { EK_LOG_FORMAT: 'pretty' }, 'EK_LOG_FORMAT', 'once'],
  ['bad env listen', [], { EK_LISTEN: '10.0.0.1:9731' }, 'EK_LISTEN', 'run'],
  ['an API token where the token file belongs', [], { EK_TOKEN_FILE: SECRET }, 'EK_TOKEN_FILE', 'once'],
];

/** A JWT directory that does not exist and an API nobody listens on: an accepted configuration exits 1, offline. */
const HARMLESS = ['--jwt-file', '/nonexistent/jwt'];
const OFFLINE: Readonly<Record<string, string>> = { '--api-url': 'http://127.0.0.1:9', '--token-file': '/nonexistent/token', '--listen': '127.0.0.1:0', '--metrics-listen': '127.0.0.1:0' };
const ONCE_OPTIONS = ['--api-url', '--token-file'];

/** The command line of a row; an offline flag is left out where the row sets that option itself (a flag would win). */
function argvFor(command: Command, argv: readonly string[], env: Record<string, string> = {}): string[] {
  if (command === 'as given') return [...argv];
  if (command === 'check') return ['check', ...HARMLESS, ...argv];
  const offline = Object.entries(OFFLINE)
    .filter(([flag]) => command === 'run' || ONCE_OPTIONS.includes(flag))
    .filter(([flag]) => !argv.includes(flag) && env[`EK_${flag.slice(2).toUpperCase().replaceAll('-', '_')}`] === undefined)
    .flat();
  return [command, ...HARMLESS, ...offline, ...argv];
}

describe('bad configuration exits 2 with one line naming the option', { concurrency: 4 }, () => {
  for (const [what, argv, env, option, command] of BAD) {
    test(`${what} (${command})`, async () => {
      const result = await runCli(argvFor(command, argv, env), env);
      assert.equal(result.code, 2, `stderr: ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line: ${result.stderr}`);
      assert.ok(lines[0]?.includes(option), `"${lines[0] ?? ''}" names ${option}`);
      assert.ok(!result.stderr.includes('Zq9SECRET'), 'no secret echoed');
      assert.equal(result.stdout, '');
    });
  }

  test('an API token pasted as an argument is never echoed', async () => {
    const argvs = [[SECRET], ['check', SECRET], [`--delete-on-exit=${SECRET}`], ['--min-ttl', SECRET], ['check', `--${SECRET}`]];
    for (const result of await Promise.all(argvs.map((argv) => runCli(argv)))) {
      assert.equal(result.code, 2, result.stderr);
      assert.ok(!`${result.stdout}${result.stderr}`.includes('Zq9SECRET'), `echoed: ${result.stderr}`);
    }
  });

  test('flags win over the environment', async () => {
    const result = await runCli(argvFor('once', ['--timeout', '5s']), { EK_TIMEOUT: 'garbage' });
    assert.equal(result.code, 1, result.stderr);
  });

  test("check does not read the daemon's variables (they share the container with the probe)", async () => {
    const result = await runCli(argvFor('check', []), { EK_TIMEOUT: 'garbage', EK_LISTEN: '0.0.0.0:9731', EK_API_TOKEN: 'garbage', EK_AUTH: 'oidc', EK_TOKEN_FILE: SECRET });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /nonexistent/);
  });

  test('one argument list serves every command: options of another command are accepted and ignored', async () => {
    const check = await runCli(argvFor('check', ['--timeout', 'garbage', '--listen', '0.0.0.0:1']));
    assert.equal(check.code, 1, `check reads only the JWT file: ${check.stderr}`);
    assert.match(check.stderr, /nonexistent/);
    const once = await runCli(argvFor('once', ['--timeout', '5s', '--listen', '127.0.0.1:0', '--metrics-listen', 'garbage']));
    assert.equal(once.code, 1, `once ignores the listeners: ${once.stderr}`);
    assert.doesNotMatch(once.stderr, /--metrics-listen/);
  });

  test('unknown EK_* variables (Kubernetes service links) are ignored', async () => {
    const result = await runCli(argvFor('check', []), { EK_PORT: 'tcp://10.96.0.12:9731', EK_SERVICE_HOST: '10.96.0.12', EK_PORT_9731_TCP: 'tcp://10.96.0.12:9731' });
    assert.equal(result.code, 1, result.stderr);
  });

  test('a fatal start error is printed once', async () => {
    const result = await runCli(['run', '--jwt-file', '/nonexistent/start-error/jwt', ...Object.entries(OFFLINE).flat()]);
    assert.equal(result.code, 1, result.stderr);
    assert.ok(!result.stdout.includes('/nonexistent/start-error'), `not in the log too: ${result.stdout}`);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /^ek-sidecar: cannot write the JWT file \/nonexistent\/start-error\/jwt: /);
  });
});

describe('--help and --version', { concurrency: 4 }, () => {
  const SPEC_OPTIONS = ['--api-url', '--token-file', '--jwt-file', '--jwt-file-mode', '--jwt-format', '--listen', '--allow-remote-token-access',
    '--metrics-listen', '--refresh-window', '--min-ttl', '--rate-limit', '--timeout', '--ca-file', '--on-refresh', '--log-level', '--delete-on-exit',
    '--auth', '--oidc-token-file', '--workspace', '--proxy', '--allowed-hosts', '--tls-cert-file', '--tls-key-file', '--log-format', '--metrics-runtime'];

  test('--version prints the package version', async () => {
    const manifest = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await runCli(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), manifest.version);
  });

  test('--help lists every command, flag and variable of SPEC.md', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    for (const word of ['run', 'once', 'check', ...SPEC_OPTIONS, 'EK_API_URL', 'EK_TOKEN_FILE', 'EK_DELETE_ON_EXIT', 'EK_API_TOKEN', 'EK_METRICS_RUNTIME', 'EK_ALLOWED_HOSTS']) {
      assert.ok(result.stdout.includes(word), `--help mentions ${word}`);
    }
  });

  test('run --help is the same help', async () => {
    const [plain, run] = await Promise.all([runCli(['--help']), runCli(['run', '--help'])]);
    assert.equal(run.code, 0);
    assert.equal(run.stdout, plain.stdout);
  });

  test('check --help shows only what check uses', async () => {
    const result = await runCli(['check', '--help']);
    assert.equal(result.code, 0);
    for (const word of ['--jwt-file', '--min-ttl', 'EK_JWT_FILE', 'EK_MIN_TTL']) assert.ok(result.stdout.includes(word), `mentions ${word}`);
    for (const word of SPEC_OPTIONS.filter((option) => !['--jwt-file', '--min-ttl'].includes(option))) {
      assert.ok(!new RegExp(`${word}\\b(?!-)`).test(result.stdout), `does not mention ${word}`);
    }
    assert.ok(!result.stdout.includes('EK_API_TOKEN'));
  });

  test('once --help shows what once uses, not the listeners or the hook', async () => {
    const result = await runCli(['once', '--help']);
    assert.equal(result.code, 0);
    for (const word of ['--api-url', '--token-file', '--auth', '--workspace', '--timeout', '--rate-limit', '--log-format', 'EK_API_TOKEN']) assert.ok(result.stdout.includes(word), `mentions ${word}`);
    for (const word of ['--listen', '--metrics-listen', '--on-refresh', '--delete-on-exit', '--proxy', '--tls-cert-file']) {
      assert.ok(!new RegExp(`${word}\\b(?!-)`).test(result.stdout), `does not mention ${word}`);
    }
  });
});
