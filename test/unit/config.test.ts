import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../src/core/errors.ts';
import {
  isLoopbackHost,
  parseApiUrl,
  parseBoolean,
  parseDuration,
  parseJwtFormat,
  parseListen,
  parseLogLevel,
  parseMode,
  parseRateLimit,
  parseRefreshWindow,
  type Config,
} from '../../src/config/config.ts';
import { resolveConfig, type FlagValues } from '../../src/config/resolve-config.ts';

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** One table per parser: `accepts` maps input to the parsed value, `rejects` lists inputs that must fail. */
function parserTable<T>(name: string, parse: (text: string) => Parsed<T>, accepts: readonly (readonly [string, T])[], rejects: readonly string[]): void {
  void describe(name, () => {
    for (const [input, expected] of accepts) {
      void it(`accepts ${JSON.stringify(input)}`, () => {
        assert.deepEqual(parse(input), { ok: true, value: expected });
      });
    }
    for (const input of rejects) {
      void it(`rejects ${JSON.stringify(input)} with a message`, () => {
        const result = parse(input);
        assert.equal(result.ok, false);
        assert.ok(result.error.length > 0);
      });
    }
  });
}

parserTable(
  'parseDuration',
  parseDuration,
  [
    ['500ms', 500],
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['30', 30_000],
    ['1.5', 1_500],
    ['0', 0],
    [' 10s ', 10_000],
    // ms() reads long unit names too; a number with a unit is what the parser asks for.
    ['2 days', 172_800_000],
  ],
  ['abc', '-5s', '-5', '', '   ', '5x', 's', '1e3', '1.', '.5s', '5s5'],
);

parserTable(
  'parseMode',
  parseMode,
  [
    ['640', 0o640],
    ['0640', 0o640],
    ['0o640', 0o640],
    ['0O640', 0o640],
    ['600', 0o600],
    ['0444', 0o444],
    ['4755', 0o4755],
    [' 0640 ', 0o640],
  ],
  ['999', 'abc', '08', '', '64', '0x640', '0o9', '17777', '-640', '6 40'],
);

parserTable(
  'parseListen',
  parseListen,
  [
    ['127.0.0.1:9731', { host: '127.0.0.1', port: 9731 }],
    ['0.0.0.0:9732', { host: '0.0.0.0', port: 9732 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['[::1]:9731', { host: '::1', port: 9731 }],
    ['[::]:9731', { host: '::', port: 9731 }],
    [':9731', { host: '0.0.0.0', port: 9731 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['127.0.0.1:65535', { host: '127.0.0.1', port: 65535 }],
    ['ek-sidecar.example.com:443', { host: 'ek-sidecar.example.com', port: 443 }],
  ],
  ['127.0.0.1:65536', '127.0.0.1:99999999999999999999', '127.0.0.1:-1', '127.0.0.1', '127.0.0.1:', '9731', 'garbage', '::1:9731', '[127.0.0.1]:80', '[::1]', 'a b:80', 'a_b:80', 'http://127.0.0.1:80', ''],
);

parserTable(
  'parseRefreshWindow',
  parseRefreshWindow,
  [
    ['0.6,0.8', [0.6, 0.8]],
    ['0.5,0.5', [0.5, 0.5]],
    [' 0.1 , 0.9 ', [0.1, 0.9]],
    ['.2,.3', [0.2, 0.3]],
  ],
  ['0,0.5', '0.9,0.5', '0.5,1', '0.5,1.5', 'a,b', '0.5', '0.5,', ',0.5', '0.2,0.4,0.6', '-0.1,0.5', '', '1e-1,0.5'],
);

parserTable(
  'parseRateLimit',
  parseRateLimit,
  [
    ['10/1m', { max: 10, windowMs: 60_000 }],
    ['10', { max: 10, windowMs: 60_000 }],
    ['5/30s', { max: 5, windowMs: 30_000 }],
    ['5/30', { max: 5, windowMs: 30_000 }],
    ['1/1h', { max: 1, windowMs: 3_600_000 }],
  ],
  ['0/1m', '0', '10/0s', '10/0', 'x/1m', '10/abc', '1/2/3', '10/', '/1m', '-1/1m', '1.5/1m', ''],
);

parserTable(
  'parseApiUrl',
  parseApiUrl,
  [
    ['https://api.enkryptify.com', 'https://api.enkryptify.com'],
    ['https://api.enkryptify.com/', 'https://api.enkryptify.com'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['https://gateway.example.com/enkryptify/', 'https://gateway.example.com/enkryptify'],
  ],
  ['ftp://api.enkryptify.com', 'file:///etc/passwd', 'https://user:secret@api.enkryptify.com', 'https://user@api.enkryptify.com', 'https://api.enkryptify.com/?region=eu', 'https://api.enkryptify.com/#top', 'api.enkryptify.com', 'not a url', ''],
);

parserTable(
  'parseBoolean',
  parseBoolean,
  [
    ['true', true],
    ['1', true],
    ['TRUE', true],
    ['false', false],
    ['0', false],
    ['False', false],
  ],
  ['yes', 'no', 'on', '2', 'truthy'],
);

parserTable(
  'parseJwtFormat',
  parseJwtFormat,
  [
    ['raw', 'raw'],
    ['json', 'json'],
  ],
  ['', 'RAW', 'yaml', 'jwt'],
);

parserTable(
  'parseLogLevel',
  parseLogLevel,
  [
    ['fatal', 'fatal'],
    ['error', 'error'],
    ['warn', 'warn'],
    ['info', 'info'],
    ['debug', 'debug'],
    ['trace', 'trace'],
    ['silent', 'silent'],
    ['DEBUG', 'debug'],
  ],
  ['', 'verbose', 'warning', 'information'],
);

void describe('parseApiUrl keeps the exchange path intact', () => {
  // The exchange URL is `${apiUrl}/v1/auth/exchange`; a kept `?` or `#` would swallow the path into a query or fragment.
  for (const input of ['https://api.example.com?', 'https://api.example.com/#']) {
    void it(`${JSON.stringify(input)} is refused or normalised without its empty query or fragment`, () => {
      const result = parseApiUrl(input);
      if (result.ok) assert.doesNotMatch(result.value, /[?#]/);
    });
  }
});

void describe('isLoopbackHost', () => {
  const table: readonly (readonly [string, boolean])[] = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['app.localhost', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['192.168.1.10', false],
    ['::ffff:10.0.0.1', false],
    ['127.example.com', false],
    ['localhost.example.com', false],
    ['example.com', false],
    ['', false],
  ];
  for (const [host, expected] of table) {
    void it(`${JSON.stringify(host)} → ${String(expected)}`, () => {
      assert.equal(isLoopbackHost(host), expected);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// resolveConfig(flags, env)

const scratch = mkdtempSync(join(tmpdir(), 'ek-sidecar-config-'));
after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function scratchFile(name: string, content: string): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
}

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTest\n-----END CERTIFICATE-----\n';
const GOOD_TOKEN = 'ek_live_localdev0123456789abcdef';

/** The ConfigError resolveConfig throws for these inputs. */
function configErrorOf(flags: FlagValues, env: NodeJS.ProcessEnv): ConfigError {
  try {
    resolveConfig(flags, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.code, 'bad_config');
    return error;
  }
  assert.fail('resolveConfig accepted the input');
}

void describe('resolveConfig defaults', () => {
  void it("match SPEC.md's table exactly", () => {
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
      metricsListen: { host: '0.0.0.0', port: 9732 },
      refreshWindow: [0.6, 0.8],
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
    assert.deepEqual(resolveConfig({}, {}), expected);
  });

  void it('returns a frozen object', () => {
    const config = resolveConfig({}, {});
    assert.ok(Object.isFrozen(config));
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
    { name: 'flag beats env for the URL', flags: { 'api-url': 'http://127.0.0.1:8080/' }, env: { EK_API_URL: 'https://other.example.com' }, pick: (c) => c.apiUrl, expected: 'http://127.0.0.1:8080' },
    { name: 'env jwt-format', flags: {}, env: { EK_JWT_FORMAT: 'json' }, pick: (c) => c.jwtFormat, expected: 'json' },
    { name: 'env mode without leading 0', flags: {}, env: { EK_JWT_FILE_MODE: '600' }, pick: (c) => c.jwtFileMode, expected: 0o600 },
    { name: 'env boolean 1', flags: {}, env: { EK_DELETE_ON_EXIT: '1' }, pick: (c) => c.deleteOnExit, expected: true },
    { name: 'boolean flag true beats env false', flags: { 'delete-on-exit': true }, env: { EK_DELETE_ON_EXIT: 'false' }, pick: (c) => c.deleteOnExit, expected: true },
    { name: 'boolean flag false beats env true', flags: { 'delete-on-exit': false }, env: { EK_DELETE_ON_EXIT: 'true' }, pick: (c) => c.deleteOnExit, expected: false },
    { name: 'env rate limit', flags: {}, env: { EK_RATE_LIMIT: '5/30s' }, pick: (c) => c.rateLimit, expected: { max: 5, windowMs: 30_000 } },
    { name: 'env refresh window', flags: {}, env: { EK_REFRESH_WINDOW: '0.5,0.5' }, pick: (c) => c.refreshWindow, expected: [0.5, 0.5] },
    { name: 'env log level', flags: {}, env: { EK_LOG_LEVEL: 'debug' }, pick: (c) => c.logLevel, expected: 'debug' },
    { name: 'relative jwt file is made absolute', flags: { 'jwt-file': 'run/jwt' }, env: {}, pick: (c) => c.jwtFile, expected: resolve('run/jwt') },
    { name: '--metrics-listen off', flags: { 'metrics-listen': 'off' }, env: {}, pick: (c) => c.metricsListen, expected: undefined },
    { name: 'EK_METRICS_LISTEN=OFF', flags: {}, env: { EK_METRICS_LISTEN: 'OFF' }, pick: (c) => c.metricsListen, expected: undefined },
    { name: 'metrics on another port', flags: { 'metrics-listen': ':9090' }, env: {}, pick: (c) => c.metricsListen, expected: { host: '0.0.0.0', port: 9090 } },
    { name: 'loopback IPv6 listen', flags: { listen: '[::1]:9731' }, env: {}, pick: (c) => c.listen, expected: { host: '::1', port: 9731 } },
    { name: 'non-loopback listen with the flag', flags: { listen: '0.0.0.0:9731', 'allow-remote-token-access': true }, env: {}, pick: (c) => c.listen, expected: { host: '0.0.0.0', port: 9731 } },
    { name: 'non-loopback listen with the env var', flags: {}, env: { EK_LISTEN: ':9731', EK_ALLOW_REMOTE_TOKEN_ACCESS: 'true' }, pick: (c) => c.listen, expected: { host: '0.0.0.0', port: 9731 } },
  ];
  for (const row of table) {
    void it(row.name, () => {
      assert.deepEqual(row.pick(resolveConfig(row.flags, row.env)), row.expected);
    });
  }

  void it('ignores unknown EK_* variables such as Kubernetes service links', () => {
    const env = {
      EK_PORT: 'tcp://10.0.0.1:80',
      EK_PORT_80_TCP: 'tcp://10.0.0.1:80',
      EK_PORT_80_TCP_ADDR: '10.0.0.1',
      EK_SERVICE_HOST: '10.0.0.1',
      EK_SERVICE_PORT: '80',
      EK_SOMETHING_ELSE: '!!!',
    };
    assert.deepEqual(resolveConfig({}, env), resolveConfig({}, {}));
  });
});

void describe('resolveConfig API token source', () => {
  void it('uses EK_API_TOKEN when no token file is given', () => {
    const config = resolveConfig({}, { EK_API_TOKEN: `  ${GOOD_TOKEN}\n` });
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
    void it(`ignores EK_API_TOKEN when the token file comes from ${row.name}`, () => {
      const config = resolveConfig(row.flags, row.env);
      assert.equal(config.apiTokenFromEnv, undefined);
      assert.equal(config.tokenFile, row.tokenFile);
    });
  }

  void it('uses EK_API_TOKEN when EK_TOKEN_FILE is empty (unset)', () => {
    const config = resolveConfig({}, { EK_TOKEN_FILE: '', EK_API_TOKEN: GOOD_TOKEN });
    assert.equal(config.apiTokenFromEnv, GOOD_TOKEN);
    assert.equal(config.tokenFile, undefined);
  });

  for (const secret of ['not_a_token_s3cr3t_value', 'ek_live_has whitespace_s3cr3t', 'ek_live_ctrl\u0001s3cr3t']) {
    void it(`refuses a malformed EK_API_TOKEN (${JSON.stringify(secret.slice(0, 8))}…) without echoing it`, () => {
      const error = configErrorOf({}, { EK_API_TOKEN: secret });
      assert.match(error.message, /EK_API_TOKEN/);
      assert.match(error.message, /--token-file/);
      assert.ok(!error.message.includes(secret), 'the value is not in the message');
      assert.ok(!error.message.includes('s3cr3t'), 'no fragment of the value is in the message');
    });
  }
});

void describe('resolveConfig --ca-file', () => {
  void it('reads a PEM bundle', () => {
    const path = scratchFile('ca.pem', PEM);
    const config = resolveConfig({ 'ca-file': path }, {});
    assert.equal(config.caFile, path);
    assert.equal(config.caPem, PEM);
  });

  void it('reads it from EK_CA_FILE too', () => {
    const path = scratchFile('ca-env.pem', PEM);
    assert.equal(resolveConfig({}, { EK_CA_FILE: path }).caPem, PEM);
  });

  void it('refuses a missing file, naming the option and the path', () => {
    const path = join(scratch, 'missing.pem');
    const error = configErrorOf({ 'ca-file': path }, {});
    assert.equal(error.option, 'ca-file');
    assert.match(error.message, /--ca-file/);
    assert.ok(error.message.includes(path));
  });

  void it('refuses a file that holds no PEM certificate', () => {
    const path = scratchFile('not-pem.txt', 'hello\n');
    const error = configErrorOf({}, { EK_CA_FILE: path });
    assert.equal(error.option, 'ca-file');
    assert.match(error.message, /EK_CA_FILE/);
    assert.match(error.message, /PEM/);
  });
});

void describe('resolveConfig --on-refresh', () => {
  const accepted: readonly (readonly [string, readonly string[]])[] = [
    ['/bin/reload-app', ['/bin/reload-app']],
    ['kill -HUP 1', ['kill', '-HUP', '1']],
    ['notify --file "my file" \'a b\'', ['notify', '--file', 'my file', 'a b']],
    ['echo "it\'s"', ['echo', "it's"]],
    ['echo $EK_JWT_FILE', ['echo', '$EK_JWT_FILE']],
  ];
  for (const [command, argv] of accepted) {
    void it(`splits ${JSON.stringify(command)}`, () => {
      assert.deepEqual(resolveConfig({ 'on-refresh': command }, {}).onRefresh, argv);
    });
  }
  for (const command of ['reload | tee log', 'reload > /tmp/out', 'reload; rm -rf /', 'reload && curl x', 'reload &', '']) {
    void it(`refuses ${JSON.stringify(command)}`, () => {
      const error = configErrorOf({ 'on-refresh': command }, {});
      assert.equal(error.option, 'on-refresh');
      assert.match(error.message, /--on-refresh/);
    });
  }
  void it('names EK_ON_REFRESH when the command came from there', () => {
    assert.match(configErrorOf({}, { EK_ON_REFRESH: 'a | b' }).message, /EK_ON_REFRESH/);
  });
});

void describe('resolveConfig --timeout fits a timer', () => {
  // Node timers (and AbortSignal.timeout) hold at most 2^31 - 1 ms; a longer delay fires after 1 ms instead,
  // so an accepted `--timeout 30d` would make every exchange time out at once.
  const MAX_TIMER_MS = 2 ** 31 - 1;
  for (const timeout of ['30d', '2592000']) {
    void it(`--timeout ${timeout} is refused or kept within ${String(MAX_TIMER_MS)} ms`, () => {
      let timeoutMs: number | undefined;
      try {
        timeoutMs = resolveConfig({ timeout }, {}).timeoutMs;
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.option, 'timeout');
        return;
      }
      assert.ok(timeoutMs <= MAX_TIMER_MS, `accepted ${String(timeoutMs)} ms`);
    });
  }
});

void describe('resolveConfig errors', () => {
  const table: readonly { name: string; flags: FlagValues; env: NodeJS.ProcessEnv; option: string; env_name?: string }[] = [
    { name: 'bad duration flag', flags: { 'min-ttl': '5x' }, env: {}, option: 'min-ttl' },
    { name: 'bad duration env', flags: {}, env: { EK_MIN_TTL: 'abc' }, option: 'min-ttl', env_name: 'EK_MIN_TTL' },
    { name: 'zero timeout', flags: { timeout: '0s' }, env: {}, option: 'timeout' },
    { name: 'zero timeout from env', flags: {}, env: { EK_TIMEOUT: '0' }, option: 'timeout', env_name: 'EK_TIMEOUT' },
    { name: 'bad mode', flags: { 'jwt-file-mode': '999' }, env: {}, option: 'jwt-file-mode' },
    { name: 'bad mode env', flags: {}, env: { EK_JWT_FILE_MODE: '08' }, option: 'jwt-file-mode', env_name: 'EK_JWT_FILE_MODE' },
    { name: 'bad format', flags: { 'jwt-format': 'yaml' }, env: {}, option: 'jwt-format' },
    { name: 'bad URL', flags: { 'api-url': 'ftp://x' }, env: {}, option: 'api-url' },
    { name: 'URL with credentials from env', flags: {}, env: { EK_API_URL: 'https://u:p@x.example.com' }, option: 'api-url', env_name: 'EK_API_URL' },
    { name: 'port out of range', flags: { listen: '127.0.0.1:70000' }, env: {}, option: 'listen' },
    { name: 'garbage listen env', flags: {}, env: { EK_LISTEN: 'garbage' }, option: 'listen', env_name: 'EK_LISTEN' },
    { name: 'non-loopback listen', flags: { listen: '0.0.0.0:9731' }, env: {}, option: 'listen' },
    { name: 'non-loopback listen, remote access explicitly false', flags: { listen: '10.0.0.5:9731', 'allow-remote-token-access': false }, env: {}, option: 'listen' },
    { name: 'non-loopback listen from env', flags: {}, env: { EK_LISTEN: ':9731' }, option: 'listen', env_name: 'EK_LISTEN' },
    { name: 'bad boolean env', flags: {}, env: { EK_ALLOW_REMOTE_TOKEN_ACCESS: 'yes' }, option: 'allow-remote-token-access', env_name: 'EK_ALLOW_REMOTE_TOKEN_ACCESS' },
    { name: 'bad metrics listen', flags: { 'metrics-listen': 'on' }, env: {}, option: 'metrics-listen' },
    { name: 'bad metrics listen env', flags: {}, env: { EK_METRICS_LISTEN: '0.0.0.0:99999' }, option: 'metrics-listen', env_name: 'EK_METRICS_LISTEN' },
    { name: 'bad refresh window', flags: { 'refresh-window': '0.9,0.5' }, env: {}, option: 'refresh-window' },
    { name: 'bad refresh window env', flags: {}, env: { EK_REFRESH_WINDOW: '0.5' }, option: 'refresh-window', env_name: 'EK_REFRESH_WINDOW' },
    { name: 'bad rate limit', flags: { 'rate-limit': '0/1m' }, env: {}, option: 'rate-limit' },
    { name: 'bad rate limit env', flags: {}, env: { EK_RATE_LIMIT: '10/abc' }, option: 'rate-limit', env_name: 'EK_RATE_LIMIT' },
    { name: 'bad log level', flags: { 'log-level': 'verbose' }, env: {}, option: 'log-level' },
    { name: 'bad delete-on-exit env', flags: {}, env: { EK_DELETE_ON_EXIT: 'maybe' }, option: 'delete-on-exit', env_name: 'EK_DELETE_ON_EXIT' },
    { name: 'empty jwt file flag', flags: { 'jwt-file': '' }, env: {}, option: 'jwt-file' },
    { name: 'blank jwt file env', flags: {}, env: { EK_JWT_FILE: '   ' }, option: 'jwt-file', env_name: 'EK_JWT_FILE' },
    { name: 'empty token file flag', flags: { 'token-file': '' }, env: {}, option: 'token-file' },
  ];
  for (const row of table) {
    void it(`${row.name}: a ConfigError naming --${row.option}${row.env_name === undefined ? '' : ` and ${row.env_name}`}`, () => {
      const error = configErrorOf(row.flags, row.env);
      assert.equal(error.option, row.option);
      assert.ok(error.message.includes(`--${row.option}`), error.message);
      if (row.env_name === undefined) assert.doesNotMatch(error.message, /\bEK_[A-Z_]+/);
      else assert.ok(error.message.includes(row.env_name), error.message);
    });
  }
});
