import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OPTIONS, type OptionName } from '../../src/config/options.ts';
import { resolveConfig, type FlagValues } from '../../src/config/resolve-config.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { configErrorOf } from '../helpers/config-error.ts';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.Zq9SECRETv2sig';

void describe('resolveConfig errors name the option (and the variable it came from)', () => {
  const table: readonly { name: string; flags: FlagValues; env: NodeJS.ProcessEnv; option: OptionName; env_name?: string; says?: RegExp }[] = [
    { name: 'bad duration flag', flags: { 'min-ttl': '5x' }, env: {}, option: 'min-ttl' },
    { name: 'bad duration env', flags: {}, env: { EK_MIN_TTL: 'abc' }, option: 'min-ttl', env_name: 'EK_MIN_TTL' },
    { name: 'repeated unit', flags: { 'min-ttl': '1m30m' }, env: {}, option: 'min-ttl' },
    { name: 'min-ttl over 24h', flags: { 'min-ttl': '25h' }, env: {}, option: 'min-ttl', says: /at most 24h/ },
    { name: 'zero timeout', flags: { timeout: '0s' }, env: {}, option: 'timeout' },
    { name: 'zero timeout from env', flags: {}, env: { EK_TIMEOUT: '0' }, option: 'timeout', env_name: 'EK_TIMEOUT' },
    { name: 'timeout over 10m', flags: { timeout: '10m1s' }, env: {}, option: 'timeout' },
    { name: 'bad mode', flags: { 'jwt-file-mode': '999' }, env: {}, option: 'jwt-file-mode' },
    { name: 'bad mode env', flags: {}, env: { EK_JWT_FILE_MODE: '08' }, option: 'jwt-file-mode', env_name: 'EK_JWT_FILE_MODE' },
    { name: 'mode 7777', flags: { 'jwt-file-mode': '7777' }, env: {}, option: 'jwt-file-mode', says: /setuid/ },
    { name: 'mode 0000', flags: { 'jwt-file-mode': '0000' }, env: {}, option: 'jwt-file-mode', says: /owner read/ },
    { name: 'world-writable mode from env', flags: {}, env: { EK_JWT_FILE_MODE: '0666' }, option: 'jwt-file-mode', env_name: 'EK_JWT_FILE_MODE', says: /every user/ },
    { name: 'bad format', flags: { 'jwt-format': 'yaml' }, env: {}, option: 'jwt-format' },
    { name: 'bad URL', flags: { 'api-url': 'ftp://x' }, env: {}, option: 'api-url' },
    { name: 'URL with credentials from env', flags: {}, env: { EK_API_URL: 'https://u:p@x.example.com' }, option: 'api-url', env_name: 'EK_API_URL' },
    { name: 'port out of range', flags: { listen: '127.0.0.1:70000' }, env: {}, option: 'listen' },
    { name: 'garbage listen env', flags: {}, env: { EK_LISTEN: 'garbage' }, option: 'listen', env_name: 'EK_LISTEN' },
    { name: 'non-loopback listen', flags: { listen: '0.0.0.0:9731' }, env: {}, option: 'listen' },
    { name: 'every interface without the permission', flags: { listen: ':9731' }, env: {}, option: 'listen', says: /every interface/ },
    { name: 'non-loopback listen, remote access explicitly false', flags: { listen: '10.0.0.5:9731', 'allow-remote-token-access': false }, env: {}, option: 'listen' },
    { name: 'non-loopback listen from env', flags: {}, env: { EK_LISTEN: '[::]:9731' }, option: 'listen', env_name: 'EK_LISTEN' },
    { name: 'bad boolean env', flags: {}, env: { EK_ALLOW_REMOTE_TOKEN_ACCESS: 'yes' }, option: 'allow-remote-token-access', env_name: 'EK_ALLOW_REMOTE_TOKEN_ACCESS' },
    { name: 'bad metrics listen', flags: { 'metrics-listen': 'on' }, env: {}, option: 'metrics-listen' },
    { name: 'bad metrics listen env', flags: {}, env: { EK_METRICS_LISTEN: '0.0.0.0:99999' }, option: 'metrics-listen', env_name: 'EK_METRICS_LISTEN' },
    { name: 'bad metrics runtime', flags: { 'metrics-runtime': 'true' }, env: {}, option: 'metrics-runtime' },
    { name: 'bad metrics runtime env', flags: {}, env: { EK_METRICS_RUNTIME: 'ON' }, option: 'metrics-runtime', env_name: 'EK_METRICS_RUNTIME' },
    { name: 'bad refresh window', flags: { 'refresh-window': '0.9,0.5' }, env: {}, option: 'refresh-window' },
    { name: 'bad refresh window env', flags: {}, env: { EK_REFRESH_WINDOW: '0.5' }, option: 'refresh-window', env_name: 'EK_REFRESH_WINDOW' },
    { name: 'bad rate limit', flags: { 'rate-limit': '0/1m' }, env: {}, option: 'rate-limit' },
    { name: 'bad rate limit env', flags: {}, env: { EK_RATE_LIMIT: '10/abc' }, option: 'rate-limit', env_name: 'EK_RATE_LIMIT' },
    { name: 'rate limit window over 24h', flags: { 'rate-limit': '10/48h' }, env: {}, option: 'rate-limit' },
    { name: 'bad log level', flags: { 'log-level': 'verbose' }, env: {}, option: 'log-level' },
    { name: 'bad log format', flags: { 'log-format': 'yaml' }, env: {}, option: 'log-format' },
    { name: 'bad log format env', flags: {}, env: { EK_LOG_FORMAT: 'pretty' }, option: 'log-format', env_name: 'EK_LOG_FORMAT' },
    { name: 'bad delete-on-exit env', flags: {}, env: { EK_DELETE_ON_EXIT: 'maybe' }, option: 'delete-on-exit', env_name: 'EK_DELETE_ON_EXIT' },
    { name: 'empty jwt file flag', flags: { 'jwt-file': '' }, env: {}, option: 'jwt-file' },
    { name: 'blank jwt file env', flags: {}, env: { EK_JWT_FILE: '   ' }, option: 'jwt-file', env_name: 'EK_JWT_FILE' },
    { name: 'empty token file flag', flags: { 'token-file': '' }, env: {}, option: 'token-file' },
    { name: 'an API token where the token file belongs', flags: {}, env: { EK_TOKEN_FILE: 'ek_live_Zq9SECRETv2' }, option: 'token-file', env_name: 'EK_TOKEN_FILE', says: /^EK_TOKEN_FILE \(--token-file\): looks like an API token, not a path \(the value is not shown\)$/ },
    { name: 'a JWT where the OIDC token file belongs', flags: { 'oidc-token-file': JWT }, env: {}, option: 'oidc-token-file', says: /looks like a JWT, not a path/ },
    { name: 'a URL where the CA file belongs', flags: { 'ca-file': 'https://u:Zq9SECRETv2@x/ca.pem' }, env: {}, option: 'ca-file', says: /looks like a URL, not a path/ },
    { name: 'unknown auth', flags: { auth: 'password' }, env: {}, option: 'auth' },
    { name: 'auth in capitals from env', flags: {}, env: { EK_AUTH: 'OIDC' }, option: 'auth', env_name: 'EK_AUTH' },
    { name: 'oidc without a workspace', flags: { auth: 'oidc' }, env: {}, option: 'workspace', env_name: 'EK_WORKSPACE', says: /required with --auth oidc/ },
    { name: 'oidc from env without a workspace', flags: {}, env: { EK_AUTH: 'oidc' }, option: 'workspace', env_name: 'EK_WORKSPACE' },
    { name: 'oidc with an empty workspace', flags: { auth: 'oidc', workspace: ' ' }, env: {}, option: 'workspace' },
    { name: 'workspace with a space', flags: { auth: 'oidc', workspace: 'my workspace' }, env: {}, option: 'workspace' },
    { name: 'unknown proxy mode', flags: { proxy: 'on' }, env: {}, option: 'proxy' },
    { name: 'unknown proxy mode from env', flags: {}, env: { EK_PROXY: 'transparent' }, option: 'proxy', env_name: 'EK_PROXY' },
    { name: 'a wildcard host', flags: { 'allowed-hosts': '*.svc.cluster.local' }, env: {}, option: 'allowed-hosts', says: /wildcard/ },
    { name: 'a host with a port from env', flags: {}, env: { EK_ALLOWED_HOSTS: 'ek-broker:9731' }, option: 'allowed-hosts', env_name: 'EK_ALLOWED_HOSTS', says: /port/ },
    { name: 'TLS certificate without a key', flags: { 'tls-cert-file': '/tls/tls.crt' }, env: {}, option: 'tls-key-file', says: /required with --tls-cert-file/ },
    { name: 'TLS key without a certificate, from env', flags: {}, env: { EK_TLS_KEY_FILE: '/tls/tls.key' }, option: 'tls-cert-file', says: /required with --tls-key-file/ },
  ];
  for (const row of table) {
    void it(`${row.name}: a ConfigError naming --${row.option}${row.env_name === undefined ? '' : ` and ${row.env_name}`}`, async () => {
      const error = await configErrorOf(row.flags, row.env);
      assert.equal(error.option, row.option);
      assert.ok(error.message.includes(`--${row.option}`), error.message);
      if (row.env_name === undefined) assert.doesNotMatch(error.message, /\bEK_[A-Z_]+/);
      else assert.ok(error.message.includes(row.env_name), error.message);
      if (row.says !== undefined) assert.match(error.message, row.says);
      assert.doesNotMatch(error.message, /\n/, 'one line');
    });
  }
});

void describe('configuration errors never show a secret', () => {
  // Every option, given each secret shape by flag and by variable: whatever the error says, no part of the secret.
  const MARK = 'Zq9SECRETv2';
  const shapes = [
    `ek_live_${MARK}`,
    ` ek_live_${MARK} `,
    `ek_live_${MARK} with words`,
    `ek_live_${MARK}:9731`,
    `ek_live_${MARK},ek-broker`,
    `"ek_live_${MARK}"`,
    `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.${MARK}`,
    `Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.${MARK}`,
    `https://user:${MARK}@api.example.com`,
    `ftp://user:${MARK}@api.example.com`,
    `/secrets/ek_live_${MARK}/token`,
  ];
  for (const name of Object.keys(OPTIONS) as OptionName[]) {
    void it(`--${name} (${OPTIONS[name].env})`, async () => {
      for (const secret of shapes) {
        for (const [flags, env] of [[{ [name]: secret }, {}], [{}, { [OPTIONS[name].env]: secret }]] as const) {
          try {
            await resolveConfig(flags, env);
          } catch (error) {
            assert.ok(error instanceof ConfigError, String(error));
            assert.ok(!error.message.includes(MARK), `${JSON.stringify(secret)} shown: ${error.message}`);
            assert.ok(!error.message.includes('SECRET'), `part of ${JSON.stringify(secret)} shown: ${error.message}`);
          }
        }
      }
    });
  }
});
