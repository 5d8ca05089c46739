// The API proxy's pure decisions (src/http/proxy-rules.ts, src/http/proxy-headers.ts), as tables.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProxyMode } from '../../src/config/config.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from '../../src/http/proxy-headers.ts';
import { decideProxyAccess, isProxiedTarget, methodLabel, type ProxyAccess } from '../../src/http/proxy-rules.ts';

const TOKEN = 'ek_live_rules_0123456789';
const ISSUED = 'eyJ.issued.jwt';
const checks = { isApiToken: (p: string) => p === TOKEN, isIssuedJwt: (p: string) => p === ISSUED };

void describe('decideProxyAccess(mode, presented, checks, peerIsLoopback)', () => {
  const cases: readonly (readonly [ProxyMode, string | undefined, boolean, ProxyAccess])[] = [
    ['verify', TOKEN, true, 'forward'],
    ['verify', ISSUED, true, 'forward'],
    // A broker's clients connect from the pod network and prove themselves the same way.
    ['verify', TOKEN, false, 'forward'],
    ['verify', ISSUED, false, 'forward'],
    ['verify', undefined, true, 'no-credential'],
    ['verify', undefined, false, 'no-credential'],
    ['verify', 'ek_live_other_0123456789', true, 'wrong-credential'],
    ['verify', 'eyJ.foreign.jwt', true, 'wrong-credential'],
    ['verify', `${TOKEN} `, true, 'wrong-credential'],
    // inject: no credential needed, any ignored; the peer is all that counts.
    ['inject', undefined, true, 'forward'],
    ['inject', 'anything', true, 'forward'],
    ['inject', TOKEN, false, 'remote-peer'],
    ['inject', undefined, false, 'remote-peer'],
    ['off', TOKEN, true, 'off'],
    ['off', undefined, false, 'off'],
  ];
  for (const [mode, presented, loopback, expected] of cases) {
    void it(`${mode}, ${presented ?? 'no credential'}, ${loopback ? 'loopback' : 'remote'} peer → ${expected}`, () => {
      assert.equal(decideProxyAccess(mode, presented, checks, loopback), expected);
    });
  }

  void it('compares an ek_live_ credential as an API token only, anything else as a JWT only', () => {
    const asked: string[] = [];
    const spy = { isApiToken: (p: string) => { asked.push(`token:${p}`); return false; }, isIssuedJwt: (p: string) => { asked.push(`jwt:${p}`); return true; } };
    assert.equal(decideProxyAccess('verify', 'ek_live_x', spy, true), 'wrong-credential');
    assert.equal(decideProxyAccess('verify', 'eyJ.a.b', spy, true), 'forward');
    assert.deepEqual(asked, ['token:ek_live_x', 'jwt:eyJ.a.b']);
  });
});

void describe('isProxiedTarget', () => {
  const cases: readonly (readonly [string | undefined, boolean])[] = [
    ['/v1/workspace/ws/project/p/secret/DATABASE_URL?environmentId=e&resolve=true', true],
    ['/v1/workspace/ws/project/p/secret?environmentId=e&resolve=true', true],
    ['/v1/workspace/my%20ws/project/p/secret/app.config.json', true],
    ['/v1/workspace/ws/project/p/secret/a%2Fb', true],
    ['/v1/echo?to=../x', true],
    ['/v1/x/...', true],
    ['/v1/', true],
    ['/v1', false],
    ['/v2/x', false],
    ['/', false],
    ['*', false],
    [undefined, false],
    ['http://evil.example/v1/x', false],
    ['//evil.example/v1/x', false],
    ['/v1/../admin', false],
    ['/v1/./x', false],
    ['/v1/x/..', false],
    ['/v1/%2e%2e/admin', false],
    ['/v1/%2E./admin', false],
    ['/v1/x/..%2fadmin', false],
    ['/v1/x/..%5Cadmin', false],
    ['/v1/x\\..\\admin', false],
  ];
  for (const [target, expected] of cases) {
    void it(`${String(target)} → ${String(expected)}`, () => {
      assert.equal(isProxiedTarget(target), expected);
    });
  }
});

void describe('methodLabel', () => {
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    void it(`${method} is its own label`, () => { assert.equal(methodLabel(method), method); });
  }
  for (const method of ['PROPFIND', 'MKCOL', 'get', 'TRACE', undefined]) {
    void it(`${String(method)} → other`, () => { assert.equal(methodLabel(method), 'other'); });
  }
});

/** The names of a raw header list, lower case, in order. */
const names = (raw: readonly string[]): string[] => raw.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
const valueOf = (raw: readonly string[], name: string): string | undefined => raw[raw.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === name) + 1];

void describe('upstreamRequestHeaders(rawHeaders, jwt)', () => {
  const JWT = 'eyJ.held.jwt';
  void it('keeps what the SDK and ordinary clients send end to end, case and repeats preserved', () => {
    const raw = ['Host', '127.0.0.1:9731', 'Content-Type', 'application/json', 'Accept', 'application/json', 'Accept', 'text/plain',
      'User-Agent', 'node', 'Accept-Encoding', 'gzip, br', 'Content-Length', '12', 'If-None-Match', '"abc"'];
    const out = upstreamRequestHeaders(raw, JWT);
    assert.deepEqual(out, ['Content-Type', 'application/json', 'Accept', 'application/json', 'Accept', 'text/plain', 'User-Agent', 'node',
      'Accept-Encoding', 'gzip, br', 'Content-Length', '12', 'If-None-Match', '"abc"', 'authorization', `Bearer ${JWT}`]);
  });

  const dropped: readonly (readonly [string, readonly string[]])[] = [
    ['the caller\'s Authorization (any scheme, any case, repeated)', ['Authorization', `Bearer ${TOKEN}`, 'authorization', 'Basic eDp5']],
    ['Cookie', ['Cookie', 'session=1']],
    ['Proxy-Authorization', ['Proxy-Authorization', 'Basic eDp5']],
    ['Host', ['Host', 'localhost']],
    ['hop-by-hop headers', ['Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Trailer', 'X-Sum', 'Transfer-Encoding', 'chunked', 'Upgrade', 'h2c', 'Proxy-Connection', 'keep-alive']],
    ['Expect', ['Expect', '100-continue']],
    ['the token API\'s marker', ['Ek-Sidecar-Request', 'true']],
    ['forwarding headers (never added either)', ['Forwarded', 'for=1.2.3.4', 'X-Forwarded-For', '1.2.3.4', 'X-Forwarded-Host', 'a', 'X-Real-IP', '1.2.3.4', 'Via', '1.1 x']],
    ['Origin', ['Origin', 'http://x']],
    ['headers the Connection header names', ['Connection', 'X-Hop, x-other', 'X-Hop', '1', 'X-Other', '2']],
  ];
  for (const [what, raw] of dropped) {
    void it(`drops ${what}; the held JWT is the only credential`, () => {
      const out = upstreamRequestHeaders([...raw, 'Accept', '*/*'], JWT);
      assert.deepEqual(names(out), ['accept', 'authorization']);
      assert.equal(valueOf(out, 'authorization'), `Bearer ${JWT}`);
    });
  }

  void it('does not drop a header that merely resembles a dropped one', () => {
    const out = upstreamRequestHeaders(['X-Forwarded', '1', 'Connection-Id', '7', 'X-Authorization-Hint', 'no', 'Cookie2', 'x'], JWT);
    assert.deepEqual(names(out), ['x-forwarded', 'connection-id', 'x-authorization-hint', 'cookie2', 'authorization']);
  });
});

void describe('clientResponseHeaders(upstream)', () => {
  void it('passes status-related, rate-limit, content and other end-to-end headers unchanged', () => {
    const upstream = {
      'content-type': 'application/json; charset=utf-8', 'content-length': '42', 'content-encoding': 'gzip',
      'ratelimit-limit': '200', 'ratelimit-remaining': '199', 'ratelimit-reset': '60', 'retry-after': '7',
      location: 'https://elsewhere.example/x', 'www-authenticate': 'Bearer error="invalid_token"', etag: '"e"',
      'set-cookie': ['a=1', 'b=2'], date: 'Tue, 01 Jan 2030 00:00:00 GMT', 'cache-control': 'private',
    };
    assert.deepEqual(clientResponseHeaders(upstream), upstream);
  });

  void it('drops hop-by-hop headers and those the upstream\'s Connection header names', () => {
    const out = clientResponseHeaders({
      connection: 'keep-alive, X-Hop', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', trailer: 'x', upgrade: 'h2c',
      'proxy-authenticate': 'Basic', te: 'trailers', 'x-hop': '1', 'content-type': 'text/plain', 'ratelimit-remaining': '3',
    });
    assert.deepEqual(out, { 'content-type': 'text/plain', 'ratelimit-remaining': '3' });
  });
});
