// Black-box tests of the token API, the ops listener and the metrics, through the real CLI and the fake API
// (SPEC.md: "Token API", "Metrics and health", "Secrets"). Every listener is on 127.0.0.1 with port 0.
import assert from 'node:assert/strict';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, runCli, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';
import { fingerprint, startFakeApi, type FakeApi, type Fault } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';

let counter = 0;
/** Every API token handed to a daemon, for the leak checks. */
const apiTokens: string[] = [];
const newToken = (label: string): string => {
  const token = `ek_live_endpoints_${label}_${String(++counter).padStart(3, '0')}_${'q'.repeat(24)}`;
  apiTokens.push(token);
  return token;
};
/** Every fake API started here: their issued JWTs are secrets too. */
const apis: FakeApi[] = [];
/** Metrics texts and error bodies: none may hold a token or a JWT. */
const collected: string[] = [];
const MARKER = { 'Ek-Sidecar-Request': 'true' } as const;

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}
interface Call {
  readonly path: string;
  readonly method?: string;
  /** A `host` here overrides the Host node:http would send. */
  readonly headers?: OutgoingHttpHeaders;
  /** Send no Host header at all. */
  readonly noHost?: boolean;
  /** Sent with Content-Length, or as chunks (Transfer-Encoding: chunked). */
  readonly body?: string | readonly string[];
  /** Where to connect; default 127.0.0.1. */
  readonly address?: string;
}

/** One request on a fresh connection; errors after the answer (the server closing on a 413) are ignored. */
function call(port: number, c: Call): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = { ...c.headers };
    if (typeof c.body === 'string') headers['content-length'] = Buffer.byteLength(c.body);
    const req = request({ host: c.address ?? '127.0.0.1', port, method: c.method ?? 'GET', path: c.path, headers, agent: false, setHost: c.noHost !== true }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); });
      res.on('error', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); });
    });
    req.on('error', reject);
    // A daemon that accepts and never answers must fail the test, not hang it.
    req.setTimeout(8_000, () => { req.destroy(new Error(`no answer to ${c.method ?? 'GET'} ${c.path} within 8 s`)); });
    if (Array.isArray(c.body)) for (const chunk of c.body as readonly string[]) req.write(chunk);
    req.end(typeof c.body === 'string' ? c.body : undefined);
  });
}

const getToken = (port: number, headers: OutgoingHttpHeaders = {}): Promise<Answer> => call(port, { path: '/v1/token', headers: { ...MARKER, ...headers } });
const dropIn = (port: number, authorization: string | undefined, extra: Partial<Call> = {}): Promise<Answer> =>
  call(port, { path: '/v1/auth/exchange', method: 'POST', ...extra, headers: { ...(authorization === undefined ? {} : { authorization }), ...extra.headers } });

/** An error answer of SPEC.md: this status, JSON `{"message": "…"}`; kept for the leak check. */
function assertMessage(answer: Answer, status: number, what: string): string {
  collected.push(answer.body);
  assert.equal(answer.status, status, `${what}: status (body ${answer.body})`);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/, `${what}: content type`);
  const parsed = JSON.parse(answer.body) as { message?: unknown };
  assert.ok(typeof parsed.message === 'string' && parsed.message.length > 0, `${what}: {message}`);
  return parsed.message;
}

function assertRetryAfter(answer: Answer): void {
  const value = answer.headers['retry-after'] ?? '';
  assert.match(value, /^\d+$/, 'Retry-After is whole seconds');
  assert.ok(Number(value) >= 1, `Retry-After ${value} >= 1`);
}

async function scrape(port: number | undefined): Promise<string> {
  const answer = await call(port ?? 0, { path: '/metrics' });
  assert.equal(answer.status, 200);
  assert.match(answer.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  collected.push(answer.body);
  return answer.body;
}

/** The value of one series, labels matched as a set; undefined when absent. */
function metric(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1] ?? ''}="${m[2] ?? ''}"`).sort().join(',');
    if (have === wanted) return Number(match[3]);
  }
  return undefined;
}

function jwtClaims(jwt: string): { exp: number; sub: string } {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number; sub: string };
}
const issuedFor = (api: FakeApi, jwt: string, token: string): boolean => api.issued().includes(jwt) && jwtClaims(jwt).sub === `apitoken_${fingerprint(token)}`;

/** baseArgs with one flag's value replaced (or the flag added). */
function withFlag(args: readonly string[], flag: string, value: string): string[] {
  const at = args.indexOf(flag);
  return at < 0 ? [...args, flag, value] : [...args.slice(0, at + 1), value, ...args.slice(at + 2)];
}

/** TCP ports the process listens on, from /proc (Linux); undefined where /proc is not available. */
async function listeningPorts(pid: number | undefined): Promise<number[] | undefined> {
  const fds = await readdir(`/proc/${String(pid)}/fd`).catch(() => undefined);
  if (fds === undefined) return undefined;
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${String(pid)}/fd/${fd}`).catch(() => '')));
  const inodes = new Set(links.map((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1]).filter((inode) => inode !== undefined));
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = (await readFile(table, 'utf8').catch(() => '')).split('\n').slice(1);
    for (const fields of rows.map((row) => row.trim().split(/\s+/))) {
      // fields: sl, local address:port (hex), remote, st (0A = LISTEN), …, inode at 9.
      if (fields[3] === '0A' && inodes.has(fields[9] ?? '')) ports.push(parseInt(fields[1]?.split(':').pop() ?? '', 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

/** SIGTERM, expecting exit 0; SIGKILL after 5 s so that a stuck daemon cannot keep the test process alive. */
async function stopDaemon(daemon: Daemon): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  const stopped = await Promise.race([daemon.stop(), new Promise<undefined>((resolve) => { setTimeout(() => { resolve(undefined); }, 5_000).unref(); })]);
  if (stopped === undefined) await daemon.kill9();
  assert.equal(stopped?.code, 0, 'exit 0 on SIGTERM');
}

/** A fake API, a kubelet-style secret volume and a daemon on them, waiting for the first JWT unless told not to. */
async function setUp(options: { api: FakeApi; token: string; extra?: readonly string[]; args?: (args: string[]) => string[]; waitForJwt?: boolean }) {
  const dir = await tempDir();
  const secret = join(dir.path, 'secret');
  const jwtFile = join(dir.path, 'jwt');
  const tokenFile = await createSecretVolume(secret, options.token);
  const args = baseArgs({ apiUrl: options.api.url, tokenFile, jwtFile, extra: options.extra ?? [] });
  const daemon = startDaemon(options.args === undefined ? args : options.args(args));
  const tearDown = async (): Promise<void> => {
    try {
      await stopDaemon(daemon);
    } finally {
      await dir.remove();
    }
  };
  try {
    const ports = await daemon.ports();
    const jwt = options.waitForJwt === false ? '' : await waitFor(async () => readFile(jwtFile, 'utf8').catch(() => undefined));
    // The file is renamed into place (and its directory fsynced) before the JWT is served: wait for the daemon too.
    if (jwt !== '') {
      await waitFor(async () => (ports.metrics === undefined
        ? (await getToken(ports.token)).status === 200
        : (await call(ports.metrics, { path: '/readyz' })).status === 200), 5_000, () => 'ready');
    }
    return { dir, secret, jwtFile, daemon, ports, jwt, tearDown };
  } catch (error) {
    await daemon.kill9();
    await dir.remove();
    throw error;
  }
}
type Setup = Awaited<ReturnType<typeof setUp>>;

describe('token API: formats, guards, routes', () => {
  const MAIN = newToken('main');
  const ROTATED = newToken('rotated');
  let api: FakeApi;
  let s: Setup;
  let port: number;
  before(async () => {
    api = await startFakeApi({ tokens: { [MAIN]: 'ok', [ROTATED]: 'ok' } });
    apis.push(api);
    s = await setUp({ api, token: MAIN });
    port = s.ports.token;
  });
  after(async () => {
    await s.tearDown();
    await api.close();
  });

  test('GET /v1/token: 200 text/plain, exactly the JWT file, not cacheable', async () => {
    assert.ok(issuedFor(api, s.jwt, MAIN));
    const answer = await getToken(port);
    assert.equal(answer.status, 200);
    assert.match(answer.headers['content-type'] ?? '', /^text\/plain/);
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.equal(answer.body, s.jwt);
  });

  test('GET /v1/token with Accept: application/json: the json format', async () => {
    const answer = await getToken(port, { accept: 'application/json' });
    assert.equal(answer.status, 200);
    assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(answer.headers['cache-control'], 'no-store');
    const doc = JSON.parse(answer.body) as { accessToken: string; tokenType: string; expiresAt: string; expiresIn: number };
    assert.deepEqual(Object.keys(doc).sort(), ['accessToken', 'expiresAt', 'expiresIn', 'tokenType']);
    assert.equal(doc.accessToken, s.jwt);
    assert.equal(doc.tokenType, 'Bearer');
    assert.match(doc.expiresAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
    const expMs = jwtClaims(s.jwt).exp * 1000;
    assert.ok(Math.abs(Date.parse(doc.expiresAt) - expMs) <= 1_000, 'expiresAt is the JWT exp');
    assert.ok(Number.isFinite(doc.expiresIn) && doc.expiresIn > 0 && doc.expiresIn <= 900, `expiresIn ${String(doc.expiresIn)}`);
    assert.ok(Math.abs(doc.expiresIn - (expMs - Date.now()) / 1000) <= 2, 'expiresIn is the seconds left');
  });

  test('GET /v1/token without "Ek-Sidecar-Request: true": 403 {message}', async () => {
    assertMessage(await call(port, { path: '/v1/token' }), 403, 'no marker header');
    assertMessage(await call(port, { path: '/v1/token', headers: { 'Ek-Sidecar-Request': 'false' } }), 403, 'marker false');
  });

  test('X-Forwarded-For or Forwarded: 403 {message} on every path', async () => {
    const forwarding = [{ 'x-forwarded-for': '203.0.113.7' }, { forwarded: 'for=203.0.113.7' }, { 'x-forwarded-for': '127.0.0.1' }];
    for (const header of forwarding) {
      const what = JSON.stringify(header);
      assertMessage(await getToken(port, header), 403, `${what} on /v1/token`);
      assertMessage(await dropIn(port, `Bearer ${MAIN}`, { headers: header }), 403, `${what} on the drop-in`);
      assertMessage(await call(port, { path: '/no-such-path', headers: header }), 403, `${what} on an unknown path`);
    }
  });

  test('a Host that is not a loopback address or localhost: 403 {message} on every path', async () => {
    const foreign = ['evil.example', `evil.example:${String(port)}`, '169.254.169.254', 'metadata.google.internal', `0.0.0.0:${String(port)}`,
      '127.0.0.1.nip.io', `localhost.evil.example:${String(port)}`, '10.0.0.1', '[fd00::1]'];
    for (const host of foreign) {
      assertMessage(await getToken(port, { host }), 403, `Host ${host}`);
      assertMessage(await dropIn(port, `Bearer ${MAIN}`, { headers: { host } }), 403, `Host ${host} on the drop-in`);
      assertMessage(await call(port, { path: '/no-such-path', headers: { host } }), 403, `Host ${host} on an unknown path`);
    }
    assertMessage(await call(port, { path: '/v1/token', headers: MARKER, noHost: true }), 403, 'no Host at all');
  });

  test('loopback Hosts and localhost, with or without a port, are accepted', async () => {
    for (const host of ['localhost', `localhost:${String(port)}`, `LocalHost:${String(port)}`, `127.0.0.1:${String(port)}`, '127.9.8.7', `[::1]:${String(port)}`, '[::1]']) {
      const answer = await getToken(port, { host });
      assert.equal(answer.status, 200, `Host ${host}: ${answer.body}`);
      assert.equal(answer.body, s.jwt);
    }
  });

  test('unknown paths 404, wrong methods 405 with Allow, all {message}', async () => {
    for (const path of ['/', '/v1', '/v2/token', '/metrics', '/healthz', '/v1/../v1/token']) {
      assertMessage(await call(port, { path, headers: MARKER }), 404, `GET ${path}`);
    }
    // Any other path under /v1/ is the API proxy's: without a credential it answers 401 and forwards nothing.
    for (const path of ['/v1/token/extra', '/v1/auth']) {
      assertMessage(await call(port, { path, headers: MARKER }), 401, `GET ${path}`);
    }
    for (const [method, path] of [['POST', '/v1/token'], ['DELETE', '/v1/token'], ['PUT', '/v1/token'], ['GET', '/v1/auth/exchange'], ['DELETE', '/v1/auth/exchange']] as const) {
      const answer = await call(port, { method, path, headers: { ...MARKER, authorization: `Bearer ${MAIN}` } });
      assertMessage(answer, 405, `${method} ${path}`);
      assert.ok((answer.headers.allow ?? '').length > 0, `${method} ${path}: a 405 names the allowed methods`);
    }
  });

  test('a body over 64 KiB is refused with 413; exactly 64 KiB is not', async () => {
    const over = 'x'.repeat(64 * 1024 + 1);
    assertMessage(await dropIn(port, `Bearer ${MAIN}`, { body: over }), 413, 'Content-Length over 64 KiB');
    const chunks = Array.from({ length: 9 }, () => 'y'.repeat(8 * 1024));
    assertMessage(await dropIn(port, `Bearer ${MAIN}`, { body: chunks }), 413, 'a chunked body over 64 KiB');
    assertMessage(await call(port, { path: '/no-such-path', method: 'POST', body: over }), 413, 'on an unknown path');
    const exact = JSON.stringify({ pad: '' }).length;
    const body = JSON.stringify({ pad: 'z'.repeat(64 * 1024 - exact) });
    assert.equal(body.length, 64 * 1024);
    const answer = await dropIn(port, `Bearer ${MAIN}`, { body, headers: { 'content-type': 'application/json' } });
    assert.equal(answer.status, 200, answer.body);
  });

  test('drop-in POST /v1/auth/exchange: the held JWT, upstream shape, no budget spent', async () => {
    const requestsBefore = api.log.length;
    const variants: Partial<Call>[] = [
      {},
      { body: '{}', headers: { 'content-type': 'application/json' } },
      { body: '{"grant":"api_token","note":"ignored"}', headers: { 'content-type': 'application/json' } },
      { body: ['{"chunked":', 'true}'], headers: { 'content-type': 'application/json' } },
    ];
    for (const variant of variants) {
      const answer = await dropIn(port, `Bearer ${MAIN}`, variant);
      assert.equal(answer.status, 200, `${JSON.stringify(variant.body)}: ${answer.body}`);
      assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(answer.headers['cache-control'], 'no-store');
      const doc = JSON.parse(answer.body) as { accessToken: string; expiresIn: number; tokenType: string };
      assert.deepEqual(Object.keys(doc).sort(), ['accessToken', 'expiresIn', 'tokenType'], 'exactly the upstream 200 shape');
      assert.equal(doc.accessToken, s.jwt);
      assert.equal(doc.tokenType.toLowerCase(), 'bearer');
      const left = jwtClaims(s.jwt).exp - Date.now() / 1000;
      assert.ok(Number.isFinite(doc.expiresIn) && doc.expiresIn > 0 && doc.expiresIn <= 900, `expiresIn ${String(doc.expiresIn)}`);
      assert.ok(Math.abs(doc.expiresIn - left) <= 2, `expiresIn ${String(doc.expiresIn)} is the seconds left (${String(left)})`);
    }
    assert.equal((await dropIn(port, `bearer ${MAIN}`)).status, 200, 'the scheme is case-insensitive');
    assert.equal(api.log.length, requestsBefore, 'the upstream saw no request');
    assert.equal(api.countFor(MAIN), 1);
  });

  test('drop-in: anything but "Bearer <the same API token>" is 401 {message}', async () => {
    const wrong = [
      ['no Authorization', undefined],
      ['another token', `Bearer ${newToken('stranger')}`],
      ['a prefix of the token', `Bearer ${MAIN.slice(0, -1)}`],
      ['the token and more', `Bearer ${MAIN}x`],
      ['Basic', `Basic ${Buffer.from(`${MAIN}:`).toString('base64')}`],
      ['Basic with the raw token', `Basic ${MAIN}`],
      ['an empty bearer', 'Bearer '],
      ['the bare token', MAIN],
      ['the JWT itself', `Bearer ${s.jwt}`],
    ] as const;
    for (const [what, authorization] of wrong) assertMessage(await dropIn(port, authorization, { headers: MARKER }), 401, what);
  });

  test('after a rotation the drop-in accepts the new token and refuses the old one', async () => {
    await rotateSecretVolume(s.secret, ROTATED);
    const fresh = await waitFor(async () => {
      const jwt = await readFile(s.jwtFile, 'utf8');
      return jwt !== s.jwt && issuedFor(api, jwt, ROTATED) ? jwt : undefined;
    }, 5_000, () => 'the new token\'s JWT');
    // The file is renamed into place a moment before the daemon serves the new JWT: observe, do not assume.
    await waitFor(async () => {
      const answer = await dropIn(port, `Bearer ${ROTATED}`);
      assert.equal(answer.status, 200, answer.body);
      return (JSON.parse(answer.body) as { accessToken: string }).accessToken === fresh;
    }, 2_000, () => 'the drop-in serving the new JWT');
    assertMessage(await dropIn(port, `Bearer ${MAIN}`), 401, 'the rotated-out token');
    assert.equal((await getToken(port)).body, fresh);
  });

  test('both listeners, and only them, are open', async () => {
    const ports = await listeningPorts(s.daemon.child.pid);
    if (ports === undefined) return;
    assert.deepEqual(ports, [port, s.ports.metrics ?? -1].sort((a, b) => a - b));
  });
});

describe('before the first JWT', () => {
  for (const mode of ['hang', '503'] as const) {
    test(`upstream ${mode} from the start: 503 with Retry-After, not ready, but alive`, async () => {
      const api = await startFakeApi({ acceptAnyToken: true });
      apis.push(api);
      await api.setMode(mode);
      const token = newToken(`first_${mode}`);
      const s = await setUp({ api, token, waitForJwt: false });
      try {
        await waitFor(() => api.log.length > 0 && (mode === 'hang' || s.daemon.logs().some((line) => line.result === 'server_error')));
        const tokenAnswer = await getToken(s.ports.token);
        assertMessage(tokenAnswer, 503, '/v1/token');
        assertRetryAfter(tokenAnswer);
        const json = await getToken(s.ports.token, { accept: 'application/json' });
        assertMessage(json, 503, '/v1/token as json');
        const drop = await dropIn(s.ports.token, `Bearer ${token}`);
        assertMessage(drop, 503, 'the drop-in');
        assertRetryAfter(drop);
        assertMessage(await call(s.ports.metrics ?? 0, { path: '/readyz' }), 503, '/readyz');
        assert.equal((await call(s.ports.metrics ?? 0, { path: '/healthz' })).status, 200);
        const text = await scrape(s.ports.metrics);
        assert.equal(metric(text, 'ek_sidecar_ready'), 0);
        if (mode === '503') assert.ok((metric(text, 'ek_sidecar_exchanges_total', { result: 'server_error' }) ?? 0) >= 1);
        await assert.rejects(readFile(s.jwtFile), { code: 'ENOENT' });
      } finally {
        await s.tearDown();
        await api.close();
      }
    });
  }

  test('a malformed token file from the start: 503, /readyz says why without echoing the file, no exchange', async () => {
    const api = await startFakeApi({ acceptAnyToken: true });
    apis.push(api);
    const malformed = 'ek_live_endpoints_start_malformed\tsecretish_tail_0123456789';
    apiTokens.push(malformed, 'secretish_tail_0123456789');
    const s = await setUp({ api, token: malformed, waitForJwt: false });
    try {
      const text = await waitFor(async () => {
        const scraped = await scrape(s.ports.metrics);
        return (metric(scraped, 'ek_sidecar_token_file_reloads_total', { result: 'invalid' }) ?? 0) >= 1 ? scraped : undefined;
      }, 5_000, () => 'the invalid token file counted');
      assert.equal(metric(text, 'ek_sidecar_ready'), 0);
      const answer = await getToken(s.ports.token);
      assertMessage(answer, 503, '/v1/token');
      assertRetryAfter(answer);
      // No JWT held: the drop-in answers 503 before it checks the credential (docs/deviations.md), as /v1/token does.
      const dropped = await dropIn(s.ports.token, `Bearer ${malformed}`);
      assertMessage(dropped, 503, 'the drop-in with the malformed token');
      assertRetryAfter(dropped);
      const reason = assertMessage(await call(s.ports.metrics ?? 0, { path: '/readyz' }), 503, '/readyz');
      assert.match(reason, /token file is unusable \(malformed\)/, `the reason says what is wrong: ${reason}`);
      assert.doesNotMatch(reason, /\//, 'and names no path (/readyz is served on every interface)');
      assert.equal(api.log.length, 0, 'no exchange with a malformed token');
    } finally {
      await s.tearDown();
      await api.close();
    }
  });
});

describe('the JWT expires during an outage', () => {
  test('/v1/token and the drop-in 503, /readyz 503, ready 0', async () => {
    const api = await startFakeApi({ acceptAnyToken: true, lifetimeSec: 3 });
    apis.push(api);
    const token = newToken('outage');
    const s = await setUp({ api, token, extra: ['--min-ttl', '1s', '--refresh-window', '0.3,0.4', '--timeout', '300ms'] });
    try {
      await api.setMode('down');
      const expired = await waitFor(async () => {
        const answer = await getToken(s.ports.token);
        return answer.status === 503 ? answer : undefined;
      }, 5_000, () => '503 once the JWT is within --min-ttl of expiry');
      assertMessage(expired, 503, '/v1/token');
      assertRetryAfter(expired);
      assert.ok(Date.now() < jwtClaims(s.jwt).exp * 1000, 'refused while still under --min-ttl, before exp');
      assertMessage(await dropIn(s.ports.token, `Bearer ${token}`), 503, 'the drop-in');
      assertMessage(await call(s.ports.metrics ?? 0, { path: '/readyz' }), 503, '/readyz');
      assert.equal((await call(s.ports.metrics ?? 0, { path: '/healthz' })).status, 200);
      const text = await scrape(s.ports.metrics);
      assert.equal(metric(text, 'ek_sidecar_ready'), 0);
      assert.ok((metric(text, 'ek_sidecar_exchanges_total', { result: 'network_error' }) ?? 0) >= 1);
      assert.equal(await readFile(s.jwtFile, 'utf8'), s.jwt, 'the file is left as it was');
    } finally {
      await s.tearDown();
      await api.close();
    }
  });
});

describe('listen addresses', () => {
  let api: FakeApi;
  before(async () => {
    api = await startFakeApi({ acceptAnyToken: true });
    apis.push(api);
  });
  after(async () => {
    await api.close();
  });

  test('a non-loopback --listen exits 2 with one line naming --listen, before anything else', async () => {
    const dir = await tempDir();
    try {
      const tokenFile = await createSecretVolume(join(dir.path, 'secret'), newToken('remote_refused'));
      const args = withFlag(baseArgs({ apiUrl: api.url, tokenFile, jwtFile: join(dir.path, 'jwt') }), '--listen', '0.0.0.0:0');
      const withoutListen = args.filter((_, i) => i !== args.indexOf('--listen') && i !== args.indexOf('--listen') + 1);
      const results = await Promise.all([
        ...['0.0.0.0:0', '[::]:0', '192.0.2.10:9731'].map((listen) => runCli(withFlag(args, '--listen', listen))),
        runCli(withoutListen, { EK_LISTEN: '0.0.0.0:0', EK_ALLOW_REMOTE_TOKEN_ACCESS: 'false' }),
      ]);
      for (const result of results) {
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
        assert.match(result.stderr, /--listen/);
        assert.equal(result.stdout, '');
      }
      assert.equal(api.log.length, 0, 'no exchange was made');
      assert.deepEqual(await readdir(dir.path), ['secret'], 'nothing was written');
    } finally {
      await dir.remove();
    }
  });

  test('--allow-remote-token-access: listens on all interfaces, the Host and forwarding guards still apply', async () => {
    const s = await setUp({ api, token: newToken('remote'), args: (args) => [...withFlag(args, '--listen', '0.0.0.0:0'), '--allow-remote-token-access'] });
    try {
      const port = s.ports.token;
      const started = await s.daemon.waitForLog((line) => line.msg === 'ek-sidecar started');
      assert.equal((started.tokenApi as { host: string }).host, '0.0.0.0');
      assert.equal((await getToken(port)).body, s.jwt);
      assertMessage(await getToken(port, { host: 'evil.example' }), 403, 'foreign Host');
      assertMessage(await getToken(port, { 'x-forwarded-for': '198.51.100.4' }), 403, 'X-Forwarded-For');
      assertMessage(await getToken(port, { forwarded: 'for=198.51.100.4' }), 403, 'Forwarded');
      // Reached on a real interface address, when the machine has one: a pod-IP Host is refused, and so is a
      // localhost Host, since GET /v1/token answers only peers on a loopback address.
      const external = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;
      if (external !== undefined) {
        assertMessage(await call(port, { path: '/v1/token', address: external, headers: MARKER }), 403, `Host ${external}`);
        const peer = assertMessage(await call(port, { path: '/v1/token', address: external, headers: { ...MARKER, host: 'localhost' } }), 403, 'non-loopback peer');
        assert.match(peer, /loopback/);
      }
    } finally {
      await s.tearDown();
    }
  });

  test('--metrics-listen off: no metrics listener, the token API still works', async () => {
    const s = await setUp({ api, token: newToken('nometrics'), args: (args) => withFlag(args, '--metrics-listen', 'off') });
    try {
      const started = await s.daemon.waitForLog((line) => line.msg === 'ek-sidecar started');
      assert.equal(started.metrics, 'off');
      assert.equal(s.ports.metrics, undefined);
      assert.equal((await getToken(s.ports.token)).body, s.jwt);
      const ports = await listeningPorts(s.daemon.child.pid);
      if (ports !== undefined) assert.deepEqual(ports, [s.ports.token], 'the token API is the only listener');
    } finally {
      await s.tearDown();
    }
  });
});

describe('metrics after a scripted sequence', () => {
  const tokens = { first: newToken('m1'), throttled: newToken('m2'), revoked: newToken('m3'), garbled: newToken('m4') };
  const MALFORMED = 'ek_live_endpoints_malformed has whitespace inside';
  apiTokens.push(MALFORMED);
  let api: FakeApi;
  let s: Setup;
  let text = '';
  const requests = { ok: 0, notFound: 0, forbidden: 0 };
  before(async () => {
    api = await startFakeApi({ acceptAnyToken: true });
    apis.push(api);
    s = await setUp({ api, token: tokens.first });
  });
  after(async () => {
    await s.tearDown();
    await api.close();
  });

  /** Rotate to `token` with `fault` queued for its first exchange, and wait for `result` in the log. */
  async function meet(token: string, fault: Fault, result: string): Promise<void> {
    api.enqueue(fault);
    await rotateSecretVolume(s.secret, token);
    await s.daemon.waitForLog((line) => line.result === result && line.tokenFingerprint === fingerprint(token), 5_000);
  }
  /** GET /v1/token, counted for the token_requests_total check below. */
  const served = async (): Promise<{ status: number; body: string }> => {
    const answer = await getToken(s.ports.token);
    if (answer.status === 200) requests.ok += 1;
    return answer;
  };
  // Installed: in the file and served. The file is renamed into place before the state file is written and the JWT
  // served (a slow fsync on a loaded machine is a window of its own), so the file alone is not the end of a refresh.
  const current = (token: string): Promise<string> => waitFor(async () => {
    const jwt = await readFile(s.jwtFile, 'utf8');
    return issuedFor(api, jwt, token) && (await served()).body === jwt ? jwt : undefined;
  }, 6_000, () => `a JWT for ${fingerprint(token)}, in the file and served`);

  test('a 429, a revoked token, a malformed answer, a malformed token file', async () => {
    await meet(tokens.throttled, { fault: '429', retryAfter: 1 }, 'rate_limited');
    await current(tokens.throttled);
    api.revoke(tokens.revoked);
    await rotateSecretVolume(s.secret, tokens.revoked);
    await s.daemon.waitForLog((line) => line.result === 'unauthorized', 5_000);
    const kept = await current(tokens.throttled);
    await meet(tokens.garbled, 'not-json', 'invalid_response');
    const last = await current(tokens.garbled);
    assert.notEqual(last, kept);
    await rotateSecretVolume(s.secret, MALFORMED);
    await waitFor(async () => (metric(await scrape(s.ports.metrics), 'ek_sidecar_token_file_reloads_total', { result: 'invalid' }) ?? 0) >= 1, 5_000, () => 'an invalid reload');
    assert.equal((await served()).body, last, 'the last good JWT is still served');
  });

  test('token API requests, counted by route and code', async () => {
    for (let i = 0; i < 3; i++, requests.ok++) assert.equal((await getToken(s.ports.token)).status, 200);
    for (let i = 0; i < 2; i++, requests.notFound++) assert.equal((await call(s.ports.token, { path: `/nope/${String(i)}` })).status, 404);
    for (const path of ['/v1/token', '/nope']) {
      assert.equal((await call(s.ports.token, { path, headers: { host: 'evil.example' } })).status, 403);
    }
    requests.forbidden += 1;
    text = await scrape(s.ports.metrics);
    assert.equal(metric(text, 'ek_sidecar_token_requests_total', { path: '/v1/token', code: '200' }), requests.ok);
    assert.equal(metric(text, 'ek_sidecar_token_requests_total', { path: 'other', code: '404' }), requests.notFound);
    assert.equal(metric(text, 'ek_sidecar_token_requests_total', { path: '/v1/token', code: '403' }), requests.forbidden);
    assert.equal(metric(text, 'ek_sidecar_token_requests_total', { path: 'other', code: '403' }), 1);
    assert.ok(!text.includes('/nope'), 'unknown paths are not labels');
  });

  test('exchanges, writes and reloads', () => {
    const exchanges = (result: string): number | undefined => metric(text, 'ek_sidecar_exchanges_total', { result });
    assert.equal(exchanges('success'), 3, 'first, after the 429, after the malformed answer');
    assert.equal(exchanges('rate_limited'), 1);
    assert.equal(exchanges('unauthorized'), 1);
    assert.equal(exchanges('invalid_response'), 1);
    for (const result of ['forbidden', 'server_error', 'network_error']) assert.equal(exchanges(result), 0, `${result} is present at 0`);
    assert.equal(api.log.length, 6, 'six requests upstream');
    assert.ok((metric(text, 'ek_sidecar_exchange_duration_seconds_count') ?? 0) >= 6);
    assert.equal(metric(text, 'ek_sidecar_exchange_duration_seconds_bucket', { le: '+Inf' }), metric(text, 'ek_sidecar_exchange_duration_seconds_count'));
    assert.equal(metric(text, 'ek_sidecar_jwt_file_writes_total', { result: 'success' }), 3);
    assert.equal(metric(text, 'ek_sidecar_jwt_file_writes_total', { result: 'failure' }), 0);
    assert.ok((metric(text, 'ek_sidecar_token_file_reloads_total', { result: 'success' }) ?? 0) >= 4);
    assert.ok((metric(text, 'ek_sidecar_token_file_reloads_total', { result: 'invalid' }) ?? 0) >= 1);
  });

  test('timestamps, budget and readiness', async () => {
    const nowSec = Date.now() / 1000;
    const exp = jwtClaims(await readFile(s.jwtFile, 'utf8')).exp;
    const expiry = metric(text, 'ek_sidecar_jwt_expiry_timestamp_seconds') ?? NaN;
    assert.ok(Math.abs(expiry - exp) <= 1, `expiry ${String(expiry)} vs exp ${String(exp)}`);
    const next = metric(text, 'ek_sidecar_jwt_next_refresh_timestamp_seconds') ?? NaN;
    assert.ok(next > nowSec && next < exp, `next refresh ${String(next)} is ahead, before expiry`);
    const last = metric(text, 'ek_sidecar_last_exchange_success_timestamp_seconds') ?? NaN;
    assert.ok(last <= nowSec + 1 && last > nowSec - 30, `last success ${String(last)} is recent`);
    const budget = metric(text, 'ek_sidecar_rate_limit_budget') ?? NaN;
    assert.ok(Number.isInteger(budget) && budget >= 0 && budget < 10, `budget ${String(budget)} within 0..10, spent`);
    assert.equal(metric(text, 'ek_sidecar_ready'), 1);
    assert.equal((await call(s.ports.metrics ?? 0, { path: '/readyz' })).status, 200);
  });

  test('default process metrics under the prefix, and nothing unprefixed', () => {
    assert.ok((metric(text, 'ek_sidecar_process_resident_memory_bytes') ?? 0) > 0);
    assert.ok((metric(text, 'ek_sidecar_process_cpu_seconds_total') ?? -1) >= 0);
    assert.ok((metric(text, 'ek_sidecar_process_start_time_seconds') ?? 0) > 0);
    assert.ok((metric(text, 'ek_sidecar_nodejs_heap_size_used_bytes') ?? 0) > 0);
    const names = text.split('\n').filter((line) => line !== '' && !line.startsWith('#')).map((line) => /^[^{ ]+/.exec(line)?.[0] ?? line);
    assert.deepEqual(names.filter((name) => !name.startsWith('ek_sidecar_')), []);
  });

  test('HELP and TYPE of every metric of SPEC.md', () => {
    const types: Readonly<Record<string, string>> = {
      exchanges_total: 'counter', exchange_duration_seconds: 'histogram', jwt_expiry_timestamp_seconds: 'gauge',
      jwt_next_refresh_timestamp_seconds: 'gauge', last_exchange_success_timestamp_seconds: 'gauge', rate_limit_budget: 'gauge',
      jwt_file_writes_total: 'counter', token_file_reloads_total: 'counter', token_requests_total: 'counter', ready: 'gauge',
    };
    for (const [name, type] of Object.entries(types)) {
      assert.match(text, new RegExp(`^# HELP ek_sidecar_${name} \\S`, 'm'), `HELP of ${name}`);
      assert.match(text, new RegExp(`^# TYPE ek_sidecar_${name} ${type}$`, 'm'), `TYPE of ${name}`);
    }
  });

  test('the ops listener never serves a token; unknown paths 404, other methods 405', async () => {
    const metricsPort = s.ports.metrics ?? 0;
    for (const path of ['/v1/token', '/v1/auth/exchange', '/']) {
      const answer = await call(metricsPort, { path, headers: { ...MARKER, authorization: `Bearer ${tokens.garbled}` } });
      assertMessage(answer, 404, `ops ${path}`);
    }
    assertMessage(await call(metricsPort, { path: '/metrics', method: 'POST' }), 405, 'POST /metrics');
    const health = await call(metricsPort, { path: '/healthz', headers: { host: '10.1.2.3:9732' } });
    assert.equal(health.status, 200, 'probes by pod IP are answered');
    collected.push(health.body, (await call(metricsPort, { path: '/readyz' })).body);
  });
});

describe('secrets', () => {
  test('no API token or JWT in anything printed, scraped or answered in error', () => {
    const secrets = [...apiTokens, ...apis.flatMap((api) => api.issued())];
    assert.ok(secrets.length > apiTokens.length, 'JWTs were issued');
    assert.deepEqual(findLeaks(secrets), [], 'printed');
    assert.deepEqual(findLeaks(secrets, collected), [], 'metrics texts and error bodies');
  });
});
