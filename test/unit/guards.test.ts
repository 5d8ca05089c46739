// The token listener's guards (src/http/guards.ts), as tables.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { headerRefusal, hostAllowed, hostGuard, hostName, isLoopbackPeer, normaliseAllowedHost, type HeaderRefusal } from '../../src/http/guards.ts';

void describe('headerRefusal', () => {
  const cases: ReadonlyArray<readonly [IncomingHttpHeaders, HeaderRefusal | undefined]> = [
    [{}, undefined],
    [{ host: 'localhost', 'ek-sidecar-request': 'true', accept: '*/*', 'user-agent': 'curl/8' }, undefined],
    // Fetch metadata is sent by Node's own fetch (undici): not a browser marker.
    [{ 'sec-fetch-mode': 'cors', 'accept-language': '*' }, undefined],
    [{ 'x-forwarded-for': '10.0.0.1' }, 'forwarded'],
    [{ 'x-forwarded-host': 'evil.example' }, 'forwarded'],
    [{ 'x-forwarded-proto': 'https' }, 'forwarded'],
    [{ 'x-forwarded-port': '443' }, 'forwarded'],
    [{ 'x-forwarded-prefix': '/x' }, 'forwarded'],
    [{ forwarded: 'for=10.0.0.1' }, 'forwarded'],
    [{ 'x-real-ip': '10.0.0.1' }, 'forwarded'],
    [{ via: '1.1 proxy' }, 'forwarded'],
    [{ origin: 'http://rebind.example' }, 'origin'],
    [{ origin: 'null' }, 'origin'],
    [{ host: 'localhost', origin: '' }, 'origin'],
    // Names that merely resemble one are not refused.
    [{ 'x-forwarded': '1', 'x-realip': '1', 'via-x': '1', 'origin-x': '1', 'x-original-url': '/' }, undefined],
  ];
  for (const [headers, expected] of cases) {
    void it(`${JSON.stringify(headers)} → ${String(expected)}`, () => {
      assert.equal(headerRefusal(headers), expected);
    });
  }
});

void describe('hostName', () => {
  const cases: ReadonlyArray<readonly [string | undefined, string | undefined]> = [
    ['localhost', 'localhost'],
    ['LocalHost:9731', 'localhost'],
    ['127.0.0.1:80', '127.0.0.1'],
    ['[::1]', '::1'],
    ['[::1]:9731', '::1'],
    ['[FD00::1]:9731', 'fd00::1'],
    ['broker.ek.svc:9731', 'broker.ek.svc'],
    ['::1', undefined],
    ['[::1]x', undefined],
    ['[::1', undefined],
    ['localhost:abc', undefined],
    ['localhost:', undefined],
    ['localhost:123456', undefined],
    ['', undefined],
    [undefined, undefined],
  ];
  for (const [host, expected] of cases) {
    void it(`${JSON.stringify(host)} → ${String(expected)}`, () => {
      assert.equal(hostName(host), expected);
    });
  }
});

void describe('hostAllowed', () => {
  const allowed = new Set(['broker.ek.svc', 'broker.ek.svc.cluster.local', 'fd00::5'].map(normaliseAllowedHost));
  const cases: ReadonlyArray<readonly [string | undefined, boolean]> = [
    // Loopback and localhost, with or without a port, whatever is configured.
    ['localhost', true],
    ['localhost:9731', true],
    ['api.localhost', true],
    ['127.1.2.3', true],
    ['[::1]:9731', true],
    ['[::ffff:127.0.0.1]:80', true],
    // Exactly the configured names, case-insensitive, with or without a port.
    ['broker.ek.svc', true],
    ['Broker.EK.svc:9731', true],
    ['broker.ek.svc.cluster.local:443', true],
    ['[fd00::5]:9731', true],
    ['[FD00::5]', true],
    // Anything else: a rebinding page's name, a suffix or prefix of an allowed name, metadata addresses.
    ['broker', false],
    ['broker.ek', false],
    ['evil.broker.ek.svc', false],
    ['broker.ek.svc.evil.example', false],
    ['broker.ek.svc.', false],
    ['fd00::5', false],
    ['evil.example', false],
    ['169.254.169.254', false],
    ['0.0.0.0', false],
    ['127.0.0.1.evil.example', false],
    ['', false],
    [undefined, false],
  ];
  for (const [host, expected] of cases) {
    void it(`${JSON.stringify(host)} → ${String(expected)}`, () => {
      assert.equal(hostAllowed(host, allowed), expected);
    });
  }

  void it('accepts no extra name when none is configured', () => {
    assert.equal(hostAllowed('broker.ek.svc', new Set()), false);
    assert.equal(hostAllowed('localhost', new Set()), true);
  });

  void it('normalises configured names: case, surrounding space, brackets', () => {
    assert.deepEqual(['Broker.EK.svc', ' b.x ', '[FD00::1]'].map(normaliseAllowedHost), ['broker.ek.svc', 'b.x', 'fd00::1']);
  });
});

void describe('hostGuard', () => {
  void it('agrees with hostAllowed whatever it remembered before', () => {
    const guard = hostGuard(['Broker.ek.svc']);
    const hosts = ['localhost:1', 'evil.example', 'broker.ek.svc:9731', 'broker.ek.svc:9731', 'evil.example', '', 'localhost:1', '[::1]', 'broker.ek.svc.x'];
    const allowed = new Set(['broker.ek.svc']);
    for (const host of hosts) assert.equal(guard(host), hostAllowed(host, allowed), host);
    assert.equal(guard(undefined), false);
  });
});

void describe('isLoopbackPeer', () => {
  const cases: ReadonlyArray<readonly [string | undefined, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.10.3', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    // What a dual-stack listener reports for an IPv4 peer.
    ['::ffff:127.0.0.1', true],
    ['::ffff:127.3.2.1', true],
    ['::ffff:7f00:1', true],
    ['10.0.0.5', false],
    ['192.168.1.1', false],
    ['128.0.0.1', false],
    ['126.255.255.255', false],
    ['::ffff:10.0.0.5', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['::', false],
    ['0.0.0.0', false],
    ['169.254.169.254', false],
    // Names are not addresses: a peer is always reported by address.
    ['localhost', false],
    ['', false],
    [undefined, false],
  ];
  for (const [address, expected] of cases) {
    void it(`${JSON.stringify(address)} → ${String(expected)}`, () => {
      assert.equal(isLoopbackPeer(address), expected);
    });
  }
});
