import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/core/errors.ts';
import type { Config } from '../../src/config/config.ts';
import { OPTIONS, optionsOf } from '../../src/config/options.ts';
import { resolveConfig, type FlagValues } from '../../src/config/resolve-config.ts';
import { configErrorOf } from '../helpers/config-error.ts';

const GOOD_TOKEN = 'ek_live_localdev0123456789abcdef';

void describe('resolveConfig defaults', () => {
  void it("match SPEC.md's table (the metrics listener on every interface, dual-stack)", async () => {
    const expected: Config = {
      apiUrl: 'https://api.enkryptify.com',
      tokenFile: '/var/run/secrets/enkryptify/token',
      apiTokenFromEnv: undefined,
      jwtFile: '/var/run/enkryptify/jwt',
      jwtFileMode: 0o640,
      jwtFormat: 'raw',
      auth: 'api-token',
      oidcTokenFile: '/var/run/secrets/tokens/enkryptify',
      workspace: undefined,
      listen: { host: '127.0.0.1', port: 9731 },
      allowRemoteTokenAccess: false,
      allowedHosts: [],
      tls: undefined,
      proxy: 'verify',
      // SPEC says 0.0.0.0:9732; `:9732` also reaches IPv6-only pods (undefined host: IPv6 and IPv4).
      metricsListen: { host: undefined, port: 9732 },
      refreshWindow: [0.7, 0.85],
      minTtlMs: 60_000,
      rateLimit: { max: 10, windowMs: 60_000 },
      timeoutMs: 10_000,
      caFile: undefined,
      caPem: undefined,
      onRefresh: undefined,
      logLevel: 'info',
      logFormat: 'json',
      metricsRuntime: true,
      deleteOnExit: false,
    };
    assert.deepEqual(await resolveConfig({}, {}), expected);
  });

  void it('every command resolves the same defaults', async () => {
    const run = await resolveConfig({}, {}, 'run');
    for (const command of ['once', 'check'] as const) assert.deepEqual(await resolveConfig({}, {}, command), run);
  });

  void it('returns a deeply frozen object', async () => {
    const config = await resolveConfig({}, {});
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.listen) && Object.isFrozen(config.rateLimit) && Object.isFrozen(config.refreshWindow));
    assert.throws(() => {
      Object.assign(config, { apiUrl: 'https://evil.example.com' });
    }, TypeError);
  });
});

void describe('resolveConfig precedence', () => {
  const table: readonly { name: string; flags: FlagValues; env: NodeJS.ProcessEnv; pick: (config: Config) => unknown; expected: unknown }[] = [
    { name: 'flag beats env', flags: { 'min-ttl': '2m' }, env: { EK_MIN_TTL: '30s' }, pick: (c) => c.minTtlMs, expected: 120_000 },
    { name: 'env is used when no flag', flags: {}, env: { EK_MIN_TTL: '30s' }, pick: (c) => c.minTtlMs, expected: 30_000 },
    { name: 'empty env var is treated as unset', flags: {}, env: { EK_MIN_TTL: '' }, pick: (c) => c.minTtlMs, expected: 60_000 },
    { name: 'compound duration', flags: { 'min-ttl': '1m30s' }, env: {}, pick: (c) => c.minTtlMs, expected: 90_000 },
    { name: 'flag beats env for the URL', flags: { 'api-url': 'http://127.0.0.1:8080/' }, env: { EK_API_URL: 'https://other.example.com' }, pick: (c) => c.apiUrl, expected: 'http://127.0.0.1:8080' },
    { name: 'env jwt-format', flags: {}, env: { EK_JWT_FORMAT: 'json' }, pick: (c) => c.jwtFormat, expected: 'json' },
    { name: 'env mode without leading 0', flags: {}, env: { EK_JWT_FILE_MODE: '600' }, pick: (c) => c.jwtFileMode, expected: 0o600 },
    { name: 'env boolean 1', flags: {}, env: { EK_DELETE_ON_EXIT: '1' }, pick: (c) => c.deleteOnExit, expected: true },
    { name: 'boolean flag true beats env false', flags: { 'delete-on-exit': true }, env: { EK_DELETE_ON_EXIT: 'false' }, pick: (c) => c.deleteOnExit, expected: true },
    { name: 'boolean flag false beats env true', flags: { 'delete-on-exit': false }, env: { EK_DELETE_ON_EXIT: 'true' }, pick: (c) => c.deleteOnExit, expected: false },
    { name: 'env rate limit', flags: {}, env: { EK_RATE_LIMIT: '5/30s' }, pick: (c) => c.rateLimit, expected: { max: 5, windowMs: 30_000 } },
    { name: 'env refresh window', flags: {}, env: { EK_REFRESH_WINDOW: '0.5,0.5' }, pick: (c) => c.refreshWindow, expected: [0.5, 0.5] },
    { name: 'env log level', flags: {}, env: { EK_LOG_LEVEL: 'debug' }, pick: (c) => c.logLevel, expected: 'debug' },
    { name: 'env log format', flags: {}, env: { EK_LOG_FORMAT: 'text' }, pick: (c) => c.logFormat, expected: 'text' },
    { name: 'relative jwt file is made absolute', flags: { 'jwt-file': 'run/jwt' }, env: {}, pick: (c) => c.jwtFile, expected: resolve('run/jwt') },
    { name: '--listen off', flags: { listen: 'off' }, env: {}, pick: (c) => c.listen, expected: undefined },
    { name: 'EK_LISTEN=off', flags: {}, env: { EK_LISTEN: 'off' }, pick: (c) => c.listen, expected: undefined },
    { name: '--metrics-listen off', flags: { 'metrics-listen': 'off' }, env: {}, pick: (c) => c.metricsListen, expected: undefined },
    { name: 'EK_METRICS_LISTEN=OFF', flags: {}, env: { EK_METRICS_LISTEN: 'OFF' }, pick: (c) => c.metricsListen, expected: undefined },
    { name: 'metrics on another port, every interface', flags: { 'metrics-listen': ':9090' }, env: {}, pick: (c) => c.metricsListen, expected: { host: undefined, port: 9090 } },
    { name: 'metrics on IPv4 only', flags: { 'metrics-listen': '0.0.0.0:9732' }, env: {}, pick: (c) => c.metricsListen, expected: { host: '0.0.0.0', port: 9732 } },
    { name: 'metrics on IPv6 (and IPv4 unless v6only)', flags: { 'metrics-listen': '[::]:9732' }, env: {}, pick: (c) => c.metricsListen, expected: { host: '::', port: 9732 } },
    { name: '--metrics-runtime off', flags: { 'metrics-runtime': 'off' }, env: {}, pick: (c) => c.metricsRuntime, expected: false },
    { name: 'EK_METRICS_RUNTIME=off', flags: {}, env: { EK_METRICS_RUNTIME: 'off' }, pick: (c) => c.metricsRuntime, expected: false },
    { name: 'loopback IPv6 listen', flags: { listen: '[::1]:9731' }, env: {}, pick: (c) => c.listen, expected: { host: '::1', port: 9731 } },
    { name: 'non-loopback listen with the flag', flags: { listen: '0.0.0.0:9731', 'allow-remote-token-access': true }, env: {}, pick: (c) => c.listen, expected: { host: '0.0.0.0', port: 9731 } },
    { name: 'every interface with the env var', flags: {}, env: { EK_LISTEN: ':9731', EK_ALLOW_REMOTE_TOKEN_ACCESS: 'true' }, pick: (c) => c.listen, expected: { host: undefined, port: 9731 } },
    { name: 'proxy inject', flags: { proxy: 'inject' }, env: {}, pick: (c) => c.proxy, expected: 'inject' },
    { name: 'EK_PROXY=off', flags: {}, env: { EK_PROXY: 'off' }, pick: (c) => c.proxy, expected: 'off' },
    { name: 'allowed hosts, lower-cased', flags: {}, env: { EK_ALLOWED_HOSTS: 'EK-Broker,ek-broker.platform.svc' }, pick: (c) => c.allowedHosts, expected: ['ek-broker', 'ek-broker.platform.svc'] },
    { name: 'oidc with a workspace', flags: { auth: 'oidc', workspace: 'ws_1' }, env: {}, pick: (c) => [c.auth, c.workspace, c.tokenFile], expected: ['oidc', 'ws_1', undefined] },
    { name: 'oidc from the environment', flags: {}, env: { EK_AUTH: 'oidc', EK_WORKSPACE: 'ws_1', EK_OIDC_TOKEN_FILE: '/t/sa' }, pick: (c) => [c.auth, c.workspace, c.oidcTokenFile], expected: ['oidc', 'ws_1', '/t/sa'] },
    { name: 'a workspace without oidc is not used', flags: { workspace: 'ws_1' }, env: {}, pick: (c) => c.workspace, expected: undefined },
  ];
  for (const row of table) {
    void it(row.name, async () => {
      assert.deepEqual(row.pick(await resolveConfig(row.flags, row.env)), row.expected);
    });
  }

  void it('ignores unknown EK_* variables such as Kubernetes service links', async () => {
    const env = {
      EK_PORT: 'tcp://10.0.0.1:80',
      EK_PORT_80_TCP: 'tcp://10.0.0.1:80',
      EK_PORT_80_TCP_ADDR: '10.0.0.1',
      EK_SERVICE_HOST: '10.0.0.1',
      EK_SERVICE_PORT: '80',
      EK_SOMETHING_ELSE: '!!!',
    };
    assert.deepEqual(await resolveConfig({}, env), await resolveConfig({}, {}));
  });
});

void describe('resolveConfig reads only the options of the command', () => {
  // The daemon's variables sit in the same container as a `check` exec probe: they must not fail it.
  const daemonOnly = { EK_LISTEN: '0.0.0.0:9731', EK_TIMEOUT: 'soon', EK_CA_FILE: '/nonexistent/ca.pem', EK_API_TOKEN: 'garbage', EK_AUTH: 'oidc', EK_ON_REFRESH: 'a | b' };
  void it('check reads --jwt-file and --min-ttl only', async () => {
    assert.deepEqual(optionsOf('check'), ['jwt-file', 'min-ttl']);
    const config = await resolveConfig({}, { ...daemonOnly, EK_JWT_FILE: '/j/jwt', EK_MIN_TTL: '2m' }, 'check');
    assert.equal(config.jwtFile, '/j/jwt');
    assert.equal(config.minTtlMs, 120_000);
    assert.equal(config.timeoutMs, 10_000, 'the default, not the variable');
  });

  void it('once does not read the listeners, the hook or the broker options', async () => {
    const config = await resolveConfig({}, { EK_LISTEN: '0.0.0.0:9731', EK_METRICS_LISTEN: 'nonsense', EK_ON_REFRESH: 'a | b', EK_TLS_CERT_FILE: '/x', EK_PROXY: 'maybe' }, 'once');
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 9731 });
    assert.equal(config.onRefresh, undefined);
    assert.equal(config.tls, undefined);
  });

  void it('run reads every option', () => {
    assert.deepEqual(optionsOf('run'), Object.keys(OPTIONS));
  });
});

void describe('resolveConfig API token source', () => {
  void it('uses EK_API_TOKEN when no token file is given', async () => {
    const config = await resolveConfig({}, { EK_API_TOKEN: `  ${GOOD_TOKEN}\n` });
    assert.equal(config.apiTokenFromEnv, GOOD_TOKEN);
    assert.equal(config.tokenFile, undefined);
  });

  const explicit: readonly { name: string; flags: FlagValues; env: NodeJS.ProcessEnv; tokenFile: string }[] = [
    { name: '--token-file', flags: { 'token-file': '/secrets/token' }, env: { EK_API_TOKEN: GOOD_TOKEN }, tokenFile: '/secrets/token' },
    { name: 'EK_TOKEN_FILE', flags: {}, env: { EK_TOKEN_FILE: '/secrets/token', EK_API_TOKEN: GOOD_TOKEN }, tokenFile: '/secrets/token' },
    // An explicit file makes EK_API_TOKEN irrelevant, so even a malformed one is not looked at.
    { name: 'EK_TOKEN_FILE with a malformed EK_API_TOKEN', flags: {}, env: { EK_TOKEN_FILE: '/secrets/token', EK_API_TOKEN: 'garbage' }, tokenFile: '/secrets/token' },
  ];
  for (const row of explicit) {
    void it(`ignores EK_API_TOKEN when the token file comes from ${row.name}`, async () => {
      const config = await resolveConfig(row.flags, row.env);
      assert.equal(config.apiTokenFromEnv, undefined);
      assert.equal(config.tokenFile, row.tokenFile);
    });
  }

  void it('uses EK_API_TOKEN when EK_TOKEN_FILE is empty (unset)', async () => {
    const config = await resolveConfig({}, { EK_TOKEN_FILE: '', EK_API_TOKEN: GOOD_TOKEN });
    assert.equal(config.apiTokenFromEnv, GOOD_TOKEN);
    assert.equal(config.tokenFile, undefined);
  });

  void it('with --auth oidc neither the token file nor EK_API_TOKEN is used (not even checked)', async () => {
    const config = await resolveConfig({ auth: 'oidc', workspace: 'ws_1' }, { EK_API_TOKEN: 'garbage' });
    assert.equal(config.tokenFile, undefined);
    assert.equal(config.apiTokenFromEnv, undefined);
  });

  for (const secret of ['not_a_token_s3cr3t_value', 'ek_live_has whitespace_s3cr3t', 'ek_live_ctrl\u0001s3cr3t']) {
    void it(`refuses a malformed EK_API_TOKEN (${JSON.stringify(secret.slice(0, 8))}…) without echoing it`, async () => {
      const error = await configErrorOf({}, { EK_API_TOKEN: secret });
      assert.match(error.message, /EK_API_TOKEN/);
      assert.match(error.message, /--token-file/);
      assert.ok(!error.message.includes(secret), 'the value is not in the message');
      assert.ok(!error.message.includes('s3cr3t'), 'no fragment of the value is in the message');
    });
  }
});

void describe('resolveConfig --on-refresh', () => {
  void it('splits the command like a shell', async () => {
    assert.deepEqual((await resolveConfig({ 'on-refresh': 'notify --file "my file"' }, {})).onRefresh, ['notify', '--file', 'my file']);
  });
  for (const command of ['reload | tee log', 'reload; rm -rf /', '']) {
    void it(`refuses ${JSON.stringify(command)}`, async () => {
      const error = await configErrorOf({ 'on-refresh': command }, {});
      assert.equal(error.option, 'on-refresh');
      assert.match(error.message, /--on-refresh/);
    });
  }
  void it('names EK_ON_REFRESH when the command came from there', async () => {
    assert.match((await configErrorOf({}, { EK_ON_REFRESH: 'a | b' })).message, /EK_ON_REFRESH/);
  });
});

void describe('resolveConfig --timeout fits a timer', () => {
  // Node timers (and AbortSignal.timeout) hold at most 2^31 - 1 ms; a longer delay fires after 1 ms instead,
  // so an accepted `--timeout 30d` would make every exchange time out at once.
  const MAX_TIMER_MS = 2 ** 31 - 1;
  for (const timeout of ['30d', '2592000', '720h']) {
    void it(`--timeout ${timeout} is refused or kept within ${String(MAX_TIMER_MS)} ms`, async () => {
      let timeoutMs: number;
      try {
        timeoutMs = (await resolveConfig({ timeout }, {})).timeoutMs;
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.option, 'timeout');
        return;
      }
      assert.ok(timeoutMs <= MAX_TIMER_MS, `accepted ${String(timeoutMs)} ms`);
    });
  }
});
