import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { ExchangeError } from '../../src/core/errors.ts';
import { interpretExchangeResponse, parseRetryAfter, type RawResponse } from '../../src/upstream/exchange-response.ts';

const T0 = 1_700_000_000_000;
const T0_S = T0 / 1000;
const MIN_TTL_MS = 60_000;
const URL = 'https://api.example.com/v1/auth/exchange';
const JSON_HEADERS = { 'content-type': 'application/json' };

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS built by hand, so that claims of any shape (or none) can be tested. */
function handJwt(payload: unknown): string {
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}.${b64('not-a-real-signature')}`;
}

/** A real HS256 JWT as an upstream would issue it, exp 15 minutes after T0. */
let signedJwt = '';
before(async () => {
  signedJwt = await new SignJWT({ scope: 'secrets:read' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('workspace-1234')
    .setIssuedAt(T0_S)
    .setExpirationTime(T0_S + 900)
    .sign(new TextEncoder().encode('a test key that is long enough for HS256'));
});

function ok200(body: unknown, headers: RawResponse['headers'] = JSON_HEADERS): RawResponse {
  return { url: URL, status: 200, headers, body: typeof body === 'string' ? body : JSON.stringify(body) };
}

function failure(status: number, body = '{"message":"nope"}', headers: RawResponse['headers'] = JSON_HEADERS): RawResponse {
  return { url: URL, status, headers, body };
}

/** The ExchangeError interpretExchangeResponse throws for `response`. */
function errorOf(response: RawResponse, minTtlMs = MIN_TTL_MS): ExchangeError {
  try {
    interpretExchangeResponse(response, T0, minTtlMs);
  } catch (error) {
    assert.ok(error instanceof ExchangeError, `expected an ExchangeError, got ${String(error)}`);
    return error;
  }
  assert.fail('the response was accepted');
}

void describe('interpretExchangeResponse: a valid 200', () => {
  void it('accepts a real signed JWT; its exp equals now + expiresIn', () => {
    const result = interpretExchangeResponse(ok200({ accessToken: signedJwt, expiresIn: 900, tokenType: 'Bearer' }), T0, MIN_TTL_MS);
    assert.deepEqual(result, {
      issued: { jwt: signedJwt, tokenType: 'Bearer', expiresAtMs: T0 + 900_000 },
      rateLimit: { remaining: undefined, resetMs: undefined },
      anomalies: [],
    });
  });

  const table: readonly { name: string; accessToken: string; expiresIn: number; tokenType?: string; contentType?: string; expected: number }[] = [
    { name: 'exp earlier than now + expiresIn → exp', accessToken: handJwt({ exp: T0_S + 600 }), expiresIn: 900, expected: T0 + 600_000 },
    { name: 'now + expiresIn earlier than exp → now + expiresIn', accessToken: handJwt({ exp: T0_S + 3_600 }), expiresIn: 900, expected: T0 + 900_000 },
    { name: 'no exp claim → now + expiresIn', accessToken: handJwt({ sub: 'x' }), expiresIn: 900, expected: T0 + 900_000 },
    { name: 'non-numeric exp → now + expiresIn', accessToken: handJwt({ exp: String(T0_S + 60) }), expiresIn: 900, expected: T0 + 900_000 },
    { name: 'opaque JWT whose payload does not decode → now + expiresIn', accessToken: 'opaque-header.opaque-payload.opaque-signature', expiresIn: 900, expected: T0 + 900_000 },
    { name: 'fractional expiresIn', accessToken: handJwt({}), expiresIn: 90.5, expected: T0 + 90_500 },
    { name: 'tokenType bearer', accessToken: handJwt({}), expiresIn: 900, tokenType: 'bearer', expected: T0 + 900_000 },
    { name: 'tokenType BEARER', accessToken: handJwt({}), expiresIn: 900, tokenType: 'BEARER', expected: T0 + 900_000 },
    { name: 'content-type with charset', accessToken: handJwt({}), expiresIn: 900, contentType: 'application/json; charset=utf-8', expected: T0 + 900_000 },
    { name: 'content-type in capitals', accessToken: handJwt({}), expiresIn: 900, contentType: 'Application/JSON', expected: T0 + 900_000 },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const tokenType = row.tokenType ?? 'Bearer';
      const headers = { 'content-type': row.contentType ?? 'application/json' };
      const result = interpretExchangeResponse(ok200({ accessToken: row.accessToken, expiresIn: row.expiresIn, tokenType }, headers), T0, MIN_TTL_MS);
      assert.deepEqual(result.issued, { jwt: row.accessToken, tokenType, expiresAtMs: row.expected });
      assert.deepEqual(result.anomalies, []);
    });
  }

  void it('reports the upstream budget from RateLimit-* headers', () => {
    const headers = { 'content-type': 'application/json', 'ratelimit-limit': '10', 'ratelimit-remaining': '7', 'ratelimit-reset': '42' };
    const result = interpretExchangeResponse(ok200({ accessToken: handJwt({}), expiresIn: 900, tokenType: 'Bearer' }, headers), T0, MIN_TTL_MS);
    assert.deepEqual(result.rateLimit, { remaining: 7, resetMs: 42_000 });
  });
});

void describe('interpretExchangeResponse: a 200 that is rejected as invalid_response', () => {
  const jwt = handJwt({ exp: T0_S + 900, sub: 'secret-subject' });
  const valid = { accessToken: jwt, expiresIn: 900, tokenType: 'Bearer' };
  const table: readonly { name: string; response: () => RawResponse; minTtlMs?: number; message?: RegExp }[] = [
    { name: 'not JSON', response: () => ok200(`{"accessToken":"${jwt}"`) },
    { name: 'an array', response: () => ok200([valid]) },
    { name: 'null', response: () => ok200('null') },
    { name: 'a string', response: () => ok200(JSON.stringify(jwt)) },
    { name: 'an extra property', response: () => ok200({ ...valid, refreshToken: 'x' }), message: /refreshToken/ },
    { name: 'accessToken missing', response: () => ok200({ expiresIn: 900, tokenType: 'Bearer' }) },
    { name: 'expiresIn missing', response: () => ok200({ accessToken: jwt, tokenType: 'Bearer' }) },
    { name: 'tokenType missing', response: () => ok200({ accessToken: jwt, expiresIn: 900 }) },
    { name: 'tokenType not Bearer', response: () => ok200({ ...valid, tokenType: 'MAC' }), message: /tokenType/ },
    { name: 'tokenType not a string', response: () => ok200({ ...valid, tokenType: 1 }) },
    { name: 'accessToken in two parts', response: () => ok200({ ...valid, accessToken: jwt.split('.').slice(0, 2).join('.') }), message: /three-part/ },
    { name: 'accessToken with an empty part', response: () => ok200({ ...valid, accessToken: `${jwt.split('.')[0] ?? ''}..${jwt.split('.')[2] ?? ''}` }) },
    { name: 'accessToken in four parts', response: () => ok200({ ...valid, accessToken: `${jwt}.extra` }) },
    { name: 'accessToken empty', response: () => ok200({ ...valid, accessToken: '' }) },
    { name: 'accessToken not a string', response: () => ok200({ ...valid, accessToken: 42 }) },
    { name: 'expiresIn 0', response: () => ok200({ ...valid, expiresIn: 0 }), message: /expiresIn/ },
    { name: 'expiresIn -1', response: () => ok200({ ...valid, expiresIn: -1 }) },
    { name: "expiresIn '900'", response: () => ok200({ ...valid, expiresIn: '900' }) },
    { name: 'expiresIn null', response: () => ok200({ ...valid, expiresIn: null }) },
    { name: 'expiresIn 1e999 (Infinity)', response: () => ok200(`{"accessToken":"${jwt}","expiresIn":1e999,"tokenType":"Bearer"}`) },
    { name: 'exp already passed', response: () => ok200({ ...valid, accessToken: handJwt({ exp: T0_S - 1 }) }), message: /expired/ },
    { name: 'exp exactly now', response: () => ok200({ ...valid, accessToken: handJwt({ exp: T0_S }) }), message: /expired/ },
    { name: 'lifetime under --min-ttl', response: () => ok200({ ...valid, expiresIn: 30 }), message: /--min-ttl/ },
    { name: 'lifetime exactly --min-ttl', response: () => ok200({ ...valid, expiresIn: 60 }), message: /--min-ttl/ },
    { name: 'exp under --min-ttl though expiresIn is long', response: () => ok200({ ...valid, accessToken: handJwt({ exp: T0_S + 59 }) }), message: /--min-ttl/ },
    { name: 'lifetime under a larger --min-ttl', response: () => ok200(valid), minTtlMs: 900_000, message: /--min-ttl/ },
    { name: 'content-type text/html', response: () => ok200(valid, { 'content-type': 'text/html' }), message: /content-type/ },
    { name: 'content-type text/plain', response: () => ok200(valid, { 'content-type': 'text/plain; charset=utf-8' }) },
    { name: 'content-type application/jsonp', response: () => ok200(valid, { 'content-type': 'application/jsonp' }) },
  ];
  for (const row of table) {
    void it(`${row.name}, without the JWT in the message`, () => {
      const error = errorOf(row.response(), row.minTtlMs);
      assert.equal(error.code, 'invalid_response');
      assert.equal(error.status, 200);
      assert.ok(error.message.includes(URL), 'names the URL');
      if (row.message !== undefined) assert.match(error.message, row.message);
      for (const part of jwt.split('.').slice(1)) assert.ok(!error.message.includes(part), 'no part of the JWT in the message');
    });
  }
});

void describe('interpretExchangeResponse: status mapping', () => {
  const table: readonly { status: number; code: ExchangeError['code'] }[] = [
    { status: 401, code: 'unauthorized' },
    { status: 403, code: 'forbidden' },
    { status: 429, code: 'rate_limited' },
    { status: 500, code: 'server_error' },
    { status: 502, code: 'server_error' },
    { status: 503, code: 'server_error' },
    { status: 504, code: 'server_error' },
    { status: 301, code: 'invalid_response' },
    { status: 302, code: 'invalid_response' },
    { status: 307, code: 'invalid_response' },
    { status: 400, code: 'invalid_response' },
    { status: 404, code: 'invalid_response' },
    { status: 201, code: 'invalid_response' },
    { status: 204, code: 'invalid_response' },
  ];
  for (const row of table) {
    void it(`${String(row.status)} → ${row.code}`, () => {
      const error = errorOf(failure(row.status));
      assert.equal(error.code, row.code);
      assert.equal(error.status, row.status);
      assert.ok(error.message.includes(URL));
      assert.ok(error.message.includes(String(row.status)));
      assert.equal(error.retryAfterMs, undefined);
    });
  }

  void it('reads a broker\'s mark (Ek-Sidecar-Broker: 1) on a 401/403 only', () => {
    const marked = { ...JSON_HEADERS, 'ek-sidecar-broker': '1' };
    const table: readonly { status: number; headers: RawResponse['headers']; fromBroker: boolean }[] = [
      { status: 401, headers: JSON_HEADERS, fromBroker: false },
      { status: 403, headers: JSON_HEADERS, fromBroker: false },
      { status: 401, headers: marked, fromBroker: true },
      { status: 403, headers: marked, fromBroker: true },
      { status: 401, headers: { ...JSON_HEADERS, 'ek-sidecar-broker': 'yes' }, fromBroker: false },
      { status: 503, headers: marked, fromBroker: false },
      { status: 429, headers: marked, fromBroker: false },
    ];
    for (const row of table) assert.equal(errorOf(failure(row.status, '{"message":"nope"}', row.headers)).fromBroker, row.fromBroker, `${String(row.status)} ${JSON.stringify(row.headers)}`);
    assert.match(errorOf(failure(401, '{"message":"nope"}', marked)).message, /ek-sidecar broker/);
  });

  void it('says that a redirect is not followed', () => {
    assert.match(errorOf(failure(302, '', { location: 'https://evil.example.com/' })).message, /redirect/);
  });

  void it('accepts a body that is not JSON', () => {
    const error = errorOf(failure(502, '<html>Bad Gateway</html>', { 'content-type': 'text/html' }));
    assert.equal(error.code, 'server_error');
  });
});

void describe('interpretExchangeResponse: retry hints', () => {
  const table: readonly { name: string; status: number; headers: RawResponse['headers']; expected: number | undefined }[] = [
    { name: '429 Retry-After: 7', status: 429, headers: { 'retry-after': '7' }, expected: 7_000 },
    { name: '429 Retry-After: 0', status: 429, headers: { 'retry-after': '0' }, expected: 0 },
    { name: '429 Retry-After as an HTTP-date', status: 429, headers: { 'retry-after': new Date(T0 + 30_000).toUTCString() }, expected: 30_000 },
    { name: '429 Retry-After as a past HTTP-date', status: 429, headers: { 'retry-after': new Date(T0 - 30_000).toUTCString() }, expected: 0 },
    { name: '429 Retry-After repeated: the first one', status: 429, headers: { 'retry-after': ['5', '9'] }, expected: 5_000 },
    { name: '429 unreadable Retry-After', status: 429, headers: { 'retry-after': 'soon' }, expected: undefined },
    { name: '429 without hints', status: 429, headers: {}, expected: undefined },
    { name: '503 Retry-After: 120', status: 503, headers: { 'retry-after': '120' }, expected: 120_000 },
    { name: 'no Retry-After, RateLimit-Remaining 0 and Reset 12', status: 429, headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': '12' }, expected: 12_000 },
    { name: 'no Retry-After, RateLimit-Remaining 3 and Reset 12: no hint', status: 429, headers: { 'ratelimit-remaining': '3', 'ratelimit-reset': '12' }, expected: undefined },
    { name: 'Retry-After wins over RateLimit-Reset', status: 429, headers: { 'retry-after': '7', 'ratelimit-remaining': '0', 'ratelimit-reset': '12' }, expected: 7_000 },
    { name: 'RateLimit-Reset that is not a number', status: 429, headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': 'later' }, expected: undefined },
    // Found: Reset 1800000000 (an epoch, not a delta) parked the next refresh in 2083. Clamped to 15 minutes.
    { name: 'RateLimit-Reset of an epoch is clamped to 15 min', status: 429, headers: { 'ratelimit-remaining': '0', 'ratelimit-reset': '1800000000' }, expected: 900_000 },
    { name: 'Retry-After of a day is clamped to 15 min', status: 429, headers: { 'retry-after': '86400' }, expected: 900_000 },
    { name: 'Retry-After far beyond a number is not read', status: 503, headers: { 'retry-after': '9'.repeat(400) }, expected: undefined },
  ];
  for (const row of table) {
    void it(`${row.name} → ${String(row.expected)}`, () => {
      assert.equal(errorOf(failure(row.status, '{"message":"slow down"}', row.headers)).retryAfterMs, row.expected);
    });
  }
});

void describe('interpretExchangeResponse: upstream messages are redacted', () => {
  const apiToken = 'ek_live_0123456789abcdefSECRET';
  const jwt = handJwt({ exp: T0_S + 900, sub: 'secret-subject' });
  // Rows are functions: the signed JWT exists only once before() has run.
  const table: readonly { name: string; message: () => string; secrets: () => readonly string[] }[] = [
    { name: 'an API token', message: () => `token ${apiToken} is revoked`, secrets: () => [apiToken, 'SECRET'] },
    { name: 'an API token in quotes', message: () => `token "${apiToken}" is revoked`, secrets: () => [apiToken, 'SECRET'] },
    { name: 'a JWT', message: () => `jwt ${jwt} expired`, secrets: () => [jwt, ...jwt.split('.')] },
    { name: 'a real signed JWT', message: () => `Bearer ${signedJwt}`, secrets: () => signedJwt.split('.') },
    { name: 'both', message: () => `${apiToken} gave ${jwt}`, secrets: () => [apiToken, ...jwt.split('.')] },
    { name: 'a JWT after a longer message (still under 200 characters)', message: () => `${'why '.repeat(10)}${jwt}`, secrets: () => jwt.split('.') },
  ];
  for (const row of table) {
    void it(`removes ${row.name}`, () => {
      const error = errorOf(failure(401, JSON.stringify({ message: row.message() })));
      assert.equal(error.code, 'unauthorized');
      assert.match(error.message, /\[redacted\]/);
      for (const secret of row.secrets()) assert.ok(!error.message.includes(secret), `${secret.slice(0, 6)}… leaked`);
    });
  }

  void it('keeps a harmless message', () => {
    assert.match(errorOf(failure(403, '{"message":"insufficient permissions"}')).message, /insufficient permissions/);
  });

  void it('does not leak a JWT cut by the 200-character limit', () => {
    const [header = '', payload = ''] = jwt.split('.');
    // The cut falls 12 characters into the payload: header.payload-prefix no longer has the two dots the pattern needs.
    const message = `${'x'.repeat(200 - header.length - 1 - 12)}${jwt}`;
    const error = errorOf(failure(401, JSON.stringify({ message })));
    assert.ok(!error.message.includes(`${header}.${payload.slice(0, 12)}`), 'the JWT header and payload start are in the message');
  });
});

void describe('parseRetryAfter', () => {
  const table: readonly { input: string | undefined; expected: number | undefined }[] = [
    { input: undefined, expected: undefined },
    { input: '7', expected: 7_000 },
    { input: ' 7 ', expected: 7_000 },
    { input: '0', expected: 0 },
    { input: '86400', expected: 86_400_000 },
    { input: new Date(T0 + 90_000).toUTCString(), expected: 90_000 },
    { input: 'Tue, 14 Nov 2023 22:13:50 GMT', expected: 30_000 },
    { input: new Date(T0 - 1_000).toUTCString(), expected: 0 },
    { input: 'soon', expected: undefined },
    { input: '', expected: undefined },
  ];
  for (const row of table) {
    void it(`${JSON.stringify(row.input)} → ${String(row.expected)}`, () => {
      assert.equal(parseRetryAfter(row.input, T0), row.expected);
    });
  }
});

void describe('upstream numbers out of range are clamped, noted, never a crash (nothing planned beyond 24 h)', () => {
  const DAY = 24 * 3_600_000;
  const table: readonly { name: string; accessToken: string; expiresIn: number; expected: number; anomaly: RegExp }[] = [
    // Found: expiresIn 1e13 without exp threw a RangeError (the daemon exited 1); 1e9 scheduled a refresh in 2051.
    { name: 'expiresIn 1e13 without exp', accessToken: handJwt({}), expiresIn: 1e13, expected: T0 + DAY, anomaly: /expiresIn .* beyond 24 h/ },
    { name: 'expiresIn 1e9 without exp', accessToken: handJwt({}), expiresIn: 1e9, expected: T0 + DAY, anomaly: /expiresIn .* beyond 24 h/ },
    { name: 'an exp a year ahead and a huge expiresIn', accessToken: handJwt({ exp: T0_S + 31_536_000 }), expiresIn: 1e9, expected: T0 + DAY, anomaly: /beyond 24 h/ },
    { name: 'an exp two days ahead and a normal expiresIn: expiresIn decides, nothing to note', accessToken: handJwt({ exp: T0_S + 172_800 }), expiresIn: 900, expected: T0 + 900_000, anomaly: /^$/ },
  ];
  for (const row of table) {
    void it(row.name, () => {
      const result = interpretExchangeResponse(ok200({ accessToken: row.accessToken, expiresIn: row.expiresIn, tokenType: 'Bearer' }), T0, MIN_TTL_MS);
      assert.equal(result.issued.expiresAtMs, row.expected);
      assert.match(result.anomalies.join('; '), row.anomaly);
    });
  }

  void it('a 200 whose RateLimit-Reset is an epoch: the reset is clamped and noted', () => {
    const result = interpretExchangeResponse(ok200({ accessToken: signedJwt, expiresIn: 900, tokenType: 'Bearer' }, { 'content-type': 'application/json', 'ratelimit-remaining': '0', 'ratelimit-reset': '1800000000' }), T0, MIN_TTL_MS);
    assert.deepEqual(result.rateLimit, { remaining: 0, resetMs: 900_000 });
    assert.match(result.anomalies.join(';'), /RateLimit-Reset of 1800000000 s is beyond 15 min/);
  });
});
