import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { looksSecret, redact, REDACTED } from '../../src/core/redact.ts';

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const JWT = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'workload', exp: 1_900_000_000 })}.${b64('signature-bytes-0123456789')}`;
const [JWT_HEADER = '', JWT_PAYLOAD = '', JWT_SIGNATURE = ''] = JWT.split('.');
/** A header written with a newline after `{`: base64url `ew…` instead of `ey…`. */
const JWT_EW = `${b64('{\n  "alg": "RS256"\n}')}.${b64({ sub: 'x' })}.${b64('sig-sig-sig-sig')}`;
const JWE = `${b64({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.${b64('encrypted-key-bytes')}.${b64('iv-iv-iv-iv')}.${b64('ciphertext')}.${b64('tag-tag')}`;
const TOKEN = 'ek_live_0123456789abcdefSECRET';
const BASIC = Buffer.from('admin:hunter2-secret').toString('base64');
const PEM = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----';

/** Each row: the text, and the parts of it that must not survive. */
const SECRETS: readonly { name: string; text: string; gone: readonly string[]; kept?: readonly string[] }[] = [
  { name: 'an API token alone', text: TOKEN, gone: [TOKEN, 'SECRET'] },
  { name: 'an API token in a sentence', text: `token ${TOKEN} is revoked`, gone: ['SECRET'], kept: ['token ', ' is revoked'] },
  { name: 'an API token as an env assignment', text: `EK_TOKEN_FILE=${TOKEN}`, gone: ['SECRET'], kept: ['EK_TOKEN_FILE='] },
  { name: 'an API token with a comma inside', text: `t=ek_live_abc,def;ghi end`, gone: ['abc', ',def', 'ghi'], kept: [' end'] },
  { name: 'an API token in JSON', text: JSON.stringify({ msg: `got ${TOKEN}` }), gone: ['SECRET'] },
  { name: 'a JWT', text: `jwt ${JWT} expired`, gone: [JWT_HEADER, JWT_PAYLOAD, JWT_SIGNATURE], kept: ['jwt ', ' expired'] },
  { name: 'a JWT after =', text: `access_token_value=${JWT}`, gone: [JWT_PAYLOAD] },
  { name: 'a JWT after a JSON-escaped newline', text: JSON.stringify(`line one\n${JWT}`), gone: [JWT_PAYLOAD, JWT_SIGNATURE] },
  { name: 'a JWT after a JSON-escaped tab', text: JSON.stringify(`x\t${JWT}`), gone: [JWT_PAYLOAD] },
  { name: 'a JWT whose header starts with a newline (ew…)', text: JWT_EW, gone: [JWT_EW.split('.')[1] ?? 'x'] },
  { name: 'a JWT without a signature (alg none)', text: `${JWT_HEADER}.${JWT_PAYLOAD}.`, gone: [JWT_PAYLOAD] },
  { name: 'a JWT cut inside its payload', text: `${JWT_HEADER}.${JWT_PAYLOAD.slice(0, 12)}`, gone: [JWT_PAYLOAD.slice(0, 12)] },
  { name: 'a five-part JWE', text: `jwe ${JWE} end`, gone: JWE.split('.'), kept: [' end'] },
  { name: 'URL credentials', text: 'proxy https://user:p4ss@proxy.internal:3128/x', gone: ['user', 'p4ss'], kept: ['https://', '@proxy.internal:3128/x'] },
  { name: 'URL credentials in JSON', text: JSON.stringify({ url: 'http://u:pw@h/' }), gone: ['u:pw'], kept: ['"url":"http://', '@h/"'] },
  { name: 'a bearer of an unknown shape', text: 'Authorization: Bearer abcdefghijklmnop0123456789~+/=', gone: ['abcdefghijklmnop'], kept: ['Authorization: Bearer '] },
  { name: 'a bearer in capitals', text: 'AUTHORIZATION: BEARER abcdefghijklmnop0123456789', gone: ['abcdefghijklmnop'] },
  { name: 'a basic credential', text: `authorization: Basic ${BASIC}`, gone: [BASIC], kept: ['Basic '] },
  { name: 'a token in a query string', text: 'GET /v1/x?access_token=opaque-value-123&page=2', gone: ['opaque-value-123'], kept: ['&page=2'] },
  { name: 'a password in a query string', text: 'url /login?user=a&password=hunter2', gone: ['hunter2'], kept: ['user=a'] },
  { name: 'a PEM private key', text: `key: ${PEM} done`, gone: ['MIIEvQIBADAN', 'BKcwggSjAgEA'], kept: ['key: ', ' done'] },
  { name: 'a PEM private key inside a JSON string', text: JSON.stringify({ pem: PEM }), gone: ['MIIEvQIBADAN', 'BKcwggSjAgEA'] },
  { name: 'a PEM private key cut before its END line', text: PEM.slice(0, 60), gone: ['MIIEvQIBADAN'] },
  { name: 'several secrets in one line', text: `${TOKEN} gave ${JWT} via https://a:b@c`, gone: ['SECRET', JWT_PAYLOAD, 'a:b'] },
];

/** Text that looks a little like a secret and must come out unchanged. */
const NEAR_MISSES: readonly { name: string; text: string }[] = [
  { name: 'version strings', text: 'ek-sidecar 0.1.0 on node v24.21.0-rc.1, pino 10.4.0, undici 8.13.1' },
  { name: 'host names', text: 'api.enkryptify.com metrics-server.kube-system.svc.cluster.local ewr1-prod-cluster.us-east.example.com' },
  { name: 'a long host name starting with ey', text: 'eyewear-shop-frontend.checkout.example.com' },
  { name: 'fingerprints', text: 'token fingerprint 3fa9c2d1, sha256 ' + createHash('sha256').update('x').digest('hex') },
  { name: 'ISO dates and durations', text: 'expires 2026-04-30T12:00:00.000Z (in 899.5 s), next at 2026-04-30T11:45:00+02:00' },
  { name: 'a URL without credentials', text: 'POST https://api.enkryptify.com/v1/auth/exchange?page=2 (user@example.com asked)' },
  { name: 'prose about bearers and basics', text: 'a valid "Authorization: Bearer <API token>" header is required; Bearer (any case); Basic configuration' },
  { name: 'the token prefix alone in prose', text: 'the token does not start with ek_live_ followed by the key' },
  { name: 'a JSON log line', text: '{"level":"info","time":"2026-04-30T12:00:00.000Z","name":"ek-sidecar","msg":"ek-sidecar started","tokenApi":{"address":"127.0.0.1","port":9731}}' },
  { name: 'file paths', text: '/var/run/secrets/enkryptify/token /var/run/enkryptify/jwt.state.json' },
  { name: 'a query string without secrets', text: '/v1/secrets?environment=prod&tokenType=Bearer' },
  { name: 'the redaction marker', text: `already ${REDACTED}` },
];

void describe('redact: secrets are blanked', () => {
  for (const row of SECRETS) {
    void it(row.name, () => {
      const out = redact(row.text);
      assert.ok(out.includes(REDACTED), out);
      for (const secret of row.gone) assert.ok(!out.includes(secret), `${secret.slice(0, 8)}… survived in ${out}`);
      for (const part of row.kept ?? []) assert.ok(out.includes(part), `${part} was lost: ${out}`);
      assert.equal(looksSecret(row.text), true);
      assert.equal(redact(out), out, 'redacting twice changes nothing');
    });
  }
});

void describe('redact: near misses survive', () => {
  for (const row of NEAR_MISSES) {
    void it(row.name, () => {
      assert.equal(redact(row.text), row.text);
      assert.equal(looksSecret(row.text), false);
    });
  }
});

void describe('redact: JSON stays JSON', () => {
  // The logger redacts serialized lines: a replacement must never eat a quote or an escape.
  const values = [
    `"quoted ${TOKEN}" and \\ backslash`,
    `${TOKEN}\n${JWT}\t"${JWT}"`,
    `https://u:"p"@h ${PEM}`,
    `Bearer ${'x'.repeat(20)}"}, "next": "Bearer ${'y'.repeat(20)}\\`,
    `?token=a"b&secret=c\\d`,
  ];
  for (const value of values) {
    void it(JSON.stringify(value).slice(0, 40), () => {
      const line = JSON.stringify({ msg: value, nested: { list: [value, 1] } });
      const parsed = JSON.parse(redact(line)) as { msg: string; nested: { list: [string, number] } };
      assert.equal(parsed.nested.list[1], 1);
      assert.ok(!parsed.msg.includes('ek_live_0123'));
    });
  }
});
