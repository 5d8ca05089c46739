// TLS on the token listener (src/http/tls.ts through startTokenServer): bounded reads, pairs checked before use,
// renewal by the kubelet's `..data` swap seen by new connections, a bad renewal refused with the old pair kept.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/core/errors.ts';
import type { RunningServer } from '../../src/http/server.ts';
import { MAX_PEM_BYTES, TlsPairError, checkPair, loadPair, readPemFile } from '../../src/http/tls.ts';
import { startTokenServer } from '../../src/http/token-api.ts';
import { createMetrics } from '../../src/observe/metrics.ts';
import { ServedJwt } from '../../src/refresh/served-jwt.ts';
import { tempDir, waitFor } from '../helpers/daemon.ts';
import { createSecretVolumeOf, rotateSecretVolumeOf } from '../../testkit/kubelet-volume.ts';
import { createCa, issue, type Issued, type TestCa } from '../helpers/tls-certs.ts';

const T0 = 1_700_000_000_000;
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDA5MDB9.dGxzLXNpZ25hdHVyZQ';
const clock = { now: (): number => T0, monotonic: (): number => T0 };
const served = new ServedJwt(60_000, clock);
served.install({ jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000, expiresAtMonoMs: T0 + 900_000 });
const credentials = { isApiToken: (): boolean => false };
const metrics = createMetrics({ defaultMetrics: false });

let dir: Awaited<ReturnType<typeof tempDir>>;
let ca: TestCa;
let first: Issued;
let second: Issued;
let foreign: Issued;
before(async () => {
  dir = await tempDir();
  ca = await createCa();
  [first, second, foreign] = await Promise.all([issue(ca, ['127.0.0.1', 'localhost']), issue(ca, ['127.0.0.1', 'localhost']), issue(ca, ['127.0.0.1'])]);
});
after(() => dir.remove());

interface Answer {
  readonly code: number;
  readonly body: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  readonly fingerprint256: string;
}

/** One HTTPS request on a new connection, trusting only the test CA. */
function get(port: number, headers: Record<string, string> = { 'Ek-Sidecar-Request': 'true' }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/token', headers, ca: ca.certPem, servername: 'localhost', agent: false }, (res) => {
      const socket = res.socket;
      const fingerprint256 = socket instanceof TLSSocket ? socket.getPeerCertificate().fingerprint256 : '';
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ code: res.statusCode ?? 0, body, fingerprint256 });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A logger that records what it was told. */
function recorder(): { warn(obj: object, msg: string): void; info(obj: object, msg: string): void; lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (obj, msg) => lines.push(`warn ${msg} ${JSON.stringify(obj)}`),
    info: (obj, msg) => lines.push(`info ${msg} ${JSON.stringify(obj)}`),
  };
}

const tlsFiles = (paths: Record<string, string>): { certFile: string; keyFile: string } => ({ certFile: paths['tls.crt'] ?? '', keyFile: paths['tls.key'] ?? '' });
/** `issued` as two plain files in a new directory `name`. */
async function plainFiles(name: string, issued: Issued): Promise<{ certFile: string; keyFile: string }> {
  await mkdir(join(dir.path, name));
  const files = { certFile: join(dir.path, name, 'cert.pem'), keyFile: join(dir.path, name, 'key.pem') };
  await writeFile(files.certFile, issued.certPem);
  await writeFile(files.keyFile, issued.keyPem);
  return files;
}

/** What cert-manager writes: the leaf followed by its chain, and the key. */
const secret = (issued: Issued): Record<string, string> => ({ 'tls.crt': `${issued.certPem}\n${ca.certPem}\n`, 'tls.key': issued.keyPem });

void describe('reading the PEM files', () => {
  void it('refuses a missing file, a directory, a FIFO (without blocking) and a file over the bound, naming the option', async () => {
    const big = join(dir.path, 'big.pem');
    await writeFile(big, Buffer.alloc(MAX_PEM_BYTES + 1, 0x41));
    const fifo = join(dir.path, 'fifo.pem');
    execFileSync('mkfifo', [fifo]);
    for (const [path, pattern] of [[join(dir.path, 'missing.pem'), /ENOENT/], [dir.path, /not a regular file/], [fifo, /not a regular file/], [big, /larger than/]] as const) {
      await assert.rejects(readPemFile(path, 'tls-key-file'), (error: unknown) => {
        assert.ok(error instanceof TlsPairError);
        assert.equal(error.option, 'tls-key-file');
        assert.match(error.message, pattern);
        assert.ok(error.message.includes(path));
        return true;
      });
    }
    await writeFile(join(dir.path, 'exact.pem'), Buffer.alloc(MAX_PEM_BYTES, 0x41));
    assert.equal((await readPemFile(join(dir.path, 'exact.pem'), 'tls-cert-file')).length, MAX_PEM_BYTES);
  });

  void it('checks the pair: a certificate, the key that matches it; messages name the file, never the key', () => {
    const files = { certFile: 'cert.pem', keyFile: 'key.pem' };
    const good = checkPair({ cert: Buffer.from(first.certPem), key: Buffer.from(first.keyPem) }, files);
    assert.equal(good.fingerprint256, first.fingerprint256);
    assert.match(good.subject, /ek-sidecar broker/);
    const cases = [
      { cert: 'not a certificate', key: first.keyPem, option: 'tls-cert-file' },
      { cert: first.certPem, key: foreign.keyPem, option: 'tls-key-file' },
      { cert: first.certPem, key: 'not a key', option: 'tls-key-file' },
      { cert: first.certPem, key: first.certPem, option: 'tls-key-file' },
    ];
    for (const c of cases) {
      assert.throws(() => checkPair({ cert: Buffer.from(c.cert), key: Buffer.from(c.key) }, files), (error: unknown) => {
        assert.ok(error instanceof TlsPairError);
        assert.equal(error.option, c.option);
        assert.ok(!error.message.includes('PRIVATE KEY') && !error.message.includes(first.keyPem.slice(40, 80)));
        return true;
      });
    }
  });
});

void describe('HTTPS on the token listener', () => {
  let server: RunningServer;
  let volume: string;
  const log = recorder();
  before(async () => {
    volume = join(dir.path, 'secret-volume');
    const paths = await createSecretVolumeOf(volume, secret(first));
    server = await startTokenServer({ listen: { host: '127.0.0.1', port: 0 }, served, credentials, metrics, clock, log, tls: tlsFiles(paths) });
  });
  after(() => server.close());

  void it('serves the same API over TLS, guards included', async () => {
    const answer = await get(server.address.port);
    assert.equal(answer.code, 200);
    assert.equal(answer.body, JWT);
    assert.equal(answer.fingerprint256, first.fingerprint256);
    assert.equal((await get(server.address.port, {})).code, 403, 'no Ek-Sidecar-Request');
    assert.equal((await get(server.address.port, { 'Ek-Sidecar-Request': 'true', 'X-Forwarded-Proto': 'https' })).code, 403);
    assert.equal((await get(server.address.port, { 'Ek-Sidecar-Request': 'true', Host: 'evil.example' })).code, 403);
  });

  void it('serves a renewed certificate to new connections after the kubelet swaps the volume', async () => {
    await rotateSecretVolumeOf(volume, secret(second));
    await waitFor(async () => (await get(server.address.port)).fingerprint256 === second.fingerprint256, 5_000, () => 'the renewed certificate');
    assert.ok(log.lines.some((line) => line.startsWith('info TLS: certificate reloaded') && line.includes(second.fingerprint256)));
  });

  void it('refuses a renewal whose key does not match, keeps the old pair, and takes the next good one', async () => {
    await rotateSecretVolumeOf(volume, { 'tls.crt': foreign.certPem, 'tls.key': first.keyPem });
    await waitFor(() => log.lines.some((line) => line.startsWith('warn TLS: the new certificate and key were refused')), 5_000, () => 'the refusal logged');
    assert.equal((await get(server.address.port)).fingerprint256, second.fingerprint256);
    await rotateSecretVolumeOf(volume, secret(first));
    await waitFor(async () => (await get(server.address.port)).fingerprint256 === first.fingerprint256, 5_000, () => 'the next good certificate');
    assert.ok(log.lines.every((line) => !line.includes('PRIVATE KEY')));
  });
});

void describe('slow clients over TLS', () => {
  void it('cuts a connection that never completes its handshake, and answers 408 over TLS to slow headers', async () => {
    const files = await plainFiles('slow', first);
    const timeouts = { headersTimeoutMs: 150, requestTimeoutMs: 300 };
    const server = await startTokenServer({ listen: { host: '127.0.0.1', port: 0 }, served, credentials, metrics, clock, tls: files, timeouts });
    try {
      const silent = connect(server.address.port, '127.0.0.1');
      silent.on('error', () => undefined);
      await new Promise((resolve) => silent.once('close', resolve));
      const received = await new Promise<string>((resolve, reject) => {
        const slow = tlsConnect({ host: '127.0.0.1', port: server.address.port, ca: ca.certPem, servername: 'localhost' }, () => {
          slow.write('GET /v1/token HTTP/1.1\r\nHost: localhost\r\n');
        });
        let text = '';
        slow.setEncoding('utf8');
        slow.on('data', (chunk: string) => (text += chunk));
        slow.on('error', reject);
        slow.on('close', () => {
          resolve(text);
        });
      });
      assert.match(received, /^HTTP\/1\.1 408 /);
    } finally {
      await server.close();
    }
  });
});

void describe('start and the periodic re-read', () => {
  void it('rejects at start with a ConfigError naming the option when the pair is missing or bad', async () => {
    const bad = join(dir.path, 'bad');
    await mkdir(bad);
    await writeFile(join(bad, 'cert.pem'), first.certPem);
    await writeFile(join(bad, 'key.pem'), foreign.keyPem);
    const cases = [
      { tls: { certFile: join(bad, 'none.pem'), keyFile: join(bad, 'key.pem') }, option: 'tls-cert-file' },
      { tls: { certFile: join(bad, 'cert.pem'), keyFile: join(bad, 'key.pem') }, option: 'tls-key-file' },
    ];
    for (const c of cases) {
      await assert.rejects(startTokenServer({ listen: { host: '127.0.0.1', port: 0 }, served, credentials, metrics, clock, tls: c.tls }), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.option, c.option);
        return true;
      });
    }
  });

  void it('picks up a pair rewritten in place on the next periodic re-read', async () => {
    const files = await plainFiles('plain', first);
    assert.equal((await loadPair(files)).fingerprint256, first.fingerprint256);
    const server = await startTokenServer({ listen: { host: '127.0.0.1', port: 0 }, served, credentials, metrics, clock, tls: { ...files, rereadIntervalMs: 50 } });
    try {
      await writeFile(files.keyFile, second.keyPem);
      await writeFile(files.certFile, second.certPem);
      await waitFor(async () => (await get(server.address.port)).fingerprint256 === second.fingerprint256, 5_000, () => 'the rewritten certificate');
    } finally {
      await server.close();
    }
  });
});
