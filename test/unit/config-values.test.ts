import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { isLoopbackHost } from '../../src/config/config.ts';
import { parseHookCommand } from '../../src/config/hook-command.ts';
import {
  durationWithin,
  parseApiUrl,
  parseBoolean,
  parseChoice,
  parseDuration,
  parseHostList,
  parseJwtFileMode,
  parseJwtFormat,
  parseListen,
  parseListenOrOff,
  parseLogLevel,
  parseMode,
  parseOnOff,
  parsePath,
  parseRateLimit,
  parseRefreshWindow,
  parseWorkspace,
  type Parsed,
} from '../../src/config/values.ts';

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
    ['0s', 0],
    [' 10s ', 10_000],
    // Compound, Go-style: largest unit first, each at most once (what Go's Duration.String prints).
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['1h0m0s', 3_600_000],
    ['2h45m10s500ms', 9_910_500],
    ['1s500ms', 1_500],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['1.0005s', 1_001],
    ['100ms', 100],
  ],
  [
    'abc', '-5s', '-5', '+5s', '', '   ', '5x', 's', 'ms', '1e3', '1.', '.5s', '5s5', '1h30',
    // Out of order or repeated: surely a typo (1m30m for 1m30s), so refused rather than summed.
    '30s1m', '1m30m', '1s1s', '500ms1s',
    // Spaces inside, long unit names and units Go has but a sidecar never needs.
    '1m 30s', '1 m', '2 days', '5 minutes', '1d', '1w', '100us', '100ns', '1M', '1H',
    '9'.repeat(400), `${'9'.repeat(400)}h`,
  ],
);

void describe('durationWithin', () => {
  const timeout = durationWithin(1, 600_000, 'must be longer than 0 and at most 10m');
  void it('keeps the value inside the bounds', () => {
    assert.deepEqual(timeout('10m'), { ok: true, value: 600_000 });
    assert.deepEqual(timeout('1ms'), { ok: true, value: 1 });
  });
  for (const text of ['0', '0s', '10m1ms', '1h']) {
    void it(`refuses ${text} with the rule`, () => {
      assert.deepEqual(timeout(text), { ok: false, error: `"${text}" must be longer than 0 and at most 10m` });
    });
  }
  void it('passes a syntax error through', () => {
    assert.equal(timeout('soon').ok, false);
  });
});

parserTable(
  'parseMode (syntax)',
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
  'parseJwtFileMode (what a credential file may have)',
  parseJwtFileMode,
  [
    ['0640', 0o640],
    ['600', 0o600],
    ['0400', 0o400],
    ['0440', 0o440],
    ['0444', 0o444],
    ['0644', 0o644],
    ['0660', 0o660],
    ['0664', 0o664],
  ],
  ['7777', '0777', '0755', '0700', '0741', '4640', '2640', '1640', '0666', '0646', '0642', '0000', '0040', '0240', '0200', '0066', '999'],
);

void describe('parseJwtFileMode says why', () => {
  const table: readonly (readonly [string, RegExp])[] = [
    ['7777', /execute, setuid, setgid or sticky/],
    ['0750', /execute/],
    ['0666', /writable by every user/],
    ['0000', /owner read/],
  ];
  for (const [text, why] of table) {
    void it(text, () => {
      const result = parseJwtFileMode(text);
      assert.ok(!result.ok);
      assert.match(result.error, why);
    });
  }
});

parserTable(
  'parseListen',
  parseListen,
  [
    ['127.0.0.1:9731', { host: '127.0.0.1', port: 9731 }],
    ['0.0.0.0:9732', { host: '0.0.0.0', port: 9732 }],
    ['localhost:80', { host: 'localhost', port: 80 }],
    ['[::1]:9731', { host: '::1', port: 9731 }],
    ['[::]:9731', { host: '::', port: 9731 }],
    // Every interface, dual-stack where the kernel has IPv6: the host is left to Node.
    [':9731', { host: undefined, port: 9731 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['127.0.0.1:65535', { host: '127.0.0.1', port: 65535 }],
    ['ek-sidecar.example.com:443', { host: 'ek-sidecar.example.com', port: 443 }],
  ],
  ['127.0.0.1:65536', '127.0.0.1:99999999999999999999', '127.0.0.1:-1', '127.0.0.1', '127.0.0.1:', '9731', 'garbage', '::1:9731', '[127.0.0.1]:80', '[::1]', 'a b:80', 'a_b:80', 'http://127.0.0.1:80', '', 'off', '-a.example.com:80'],
);

parserTable(
  'parseListenOrOff',
  parseListenOrOff,
  [
    ['off', undefined],
    ['OFF', undefined],
    [' Off ', undefined],
    [':9732', { host: undefined, port: 9732 }],
  ],
  ['no', 'none', 'disabled', ''],
);

parserTable(
  'parseHostList',
  parseHostList,
  [
    ['ek-broker', ['ek-broker']],
    ['ek-broker,ek-broker.platform,ek-broker.platform.svc,ek-broker.platform.svc.cluster.local', ['ek-broker', 'ek-broker.platform', 'ek-broker.platform.svc', 'ek-broker.platform.svc.cluster.local']],
    [' EK-Broker , ek-broker.Platform ', ['ek-broker', 'ek-broker.platform']],
    ['a,a,A', ['a']],
    ['10.96.0.12', ['10.96.0.12']],
    ['', []],
  ],
  ['*.svc', 'ek-broker.*', 'ek-broker:9731', 'ek-broker,', ',ek-broker', 'a,,b', '[fd00::1]', 'fd00::1', 'ek_broker', '-ek', 'ek-', 'a b', 'ek-broker.', '10.96.0.300', 'http://ek-broker', `${'a'.repeat(64)}.svc`],
);

parserTable(
  'parsePath',
  parsePath,
  [
    ['/var/run/enkryptify/jwt', '/var/run/enkryptify/jwt'],
    ['  /secrets/token \n', '/secrets/token'],
    ['run/jwt', resolve('run/jwt')],
    // Dotted file names are paths, although a generic secret scan would call them JWT-shaped.
    ['/etc/tls/broker-tls.my-namespace.crt', '/etc/tls/broker-tls.my-namespace.crt'],
    ['eyJ-but-a-file.txt', resolve('eyJ-but-a-file.txt')],
  ],
  ['', '   ', 'ek_live_Zq9SECRETv2', '/secrets/ek_live_Zq9SECRETv2', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'],
);

void describe('parsePath refuses a credential without showing it', () => {
  for (const [text, what] of [['ek_live_Zq9SECRETv2', 'API token'], ['eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.Zq9SECRETv2', 'JWT']] as const) {
    void it(what, () => {
      const result = parsePath(text);
      assert.deepEqual(result, { ok: false, error: `looks like a${what === 'API token' ? 'n' : ''} ${what}, not a path (the value is not shown)` });
    });
  }
});

parserTable(
  'parseWorkspace',
  parseWorkspace,
  [
    ['ws_123', 'ws_123'],
    [' 5f0c6a8e-1b2c-4d5e-8f90-a1b2c3d4e5f6 ', '5f0c6a8e-1b2c-4d5e-8f90-a1b2c3d4e5f6'],
  ],
  ['', '  ', 'two words', 'tab\there', 'nul\u0000', 'x'.repeat(257), 'ek_live_Zq9SECRETv2'],
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
    ['10/1m30s', { max: 10, windowMs: 90_000 }],
    ['100/24h', { max: 100, windowMs: 86_400_000 }],
  ],
  ['0/1m', '0', '10/0s', '10/0', 'x/1m', '10/abc', '1/2/3', '10/', '/1m', '-1/1m', '1.5/1m', '', '10/25h', '10/24h1ms', '99999999999999999999/1m'],
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

void describe('parseApiUrl keeps the exchange path intact', () => {
  // The exchange URL is `${apiUrl}/v1/auth/exchange`; a kept `?` or `#` would swallow the path into a query or fragment.
  for (const input of ['https://api.example.com?', 'https://api.example.com/#']) {
    void it(`${JSON.stringify(input)} is refused or normalised without its empty query or fragment`, () => {
      const result = parseApiUrl(input);
      if (result.ok) assert.doesNotMatch(result.value, /[?#]/);
    });
  }
});

parserTable('parseBoolean', parseBoolean, [['true', true], ['1', true], ['TRUE', true], ['false', false], ['0', false], ['False', false]], ['yes', 'no', 'on', '2', 'truthy']);
parserTable('parseOnOff', parseOnOff, [['on', true], ['off', false]], ['', 'ON', 'true', '1', 'yes', 'enabled']);
parserTable('parseJwtFormat', parseJwtFormat, [['raw', 'raw'], ['json', 'json']], ['', 'RAW', 'yaml', 'jwt']);
parserTable('parseChoice (auth)', parseChoice(['api-token', 'oidc']), [['api-token', 'api-token'], ['oidc', 'oidc']], ['', 'OIDC', 'token', 'api_token', 'workload-identity']);
parserTable('parseChoice (proxy)', parseChoice(['verify', 'inject', 'off']), [['verify', 'verify'], ['inject', 'inject'], ['off', 'off']], ['', 'on', 'pass', 'Verify']);
parserTable(
  'parseLogLevel',
  parseLogLevel,
  [['fatal', 'fatal'], ['error', 'error'], ['warn', 'warn'], ['info', 'info'], ['debug', 'debug'], ['trace', 'trace'], ['silent', 'silent'], ['DEBUG', 'debug']],
  ['', 'verbose', 'warning', 'information'],
);

parserTable(
  'parseHookCommand',
  parseHookCommand,
  [
    ['/bin/reload-app', ['/bin/reload-app']],
    ['kill -HUP 1', ['kill', '-HUP', '1']],
    ['notify --file "my file" \'a b\'', ['notify', '--file', 'my file', 'a b']],
    ['echo "it\'s"', ['echo', "it's"]],
    ['echo $EK_JWT_FILE', ['echo', '$EK_JWT_FILE']],
    ['ls *.jwt', ['ls', '*.jwt']],
  ],
  ['reload | tee log', 'reload > /tmp/out', 'reload; rm -rf /', 'reload && curl x', 'reload &', '', '   ', '# only a comment'],
);

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
