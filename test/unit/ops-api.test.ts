import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/http/server.ts';
import { createMetrics } from '../../src/observe/metrics.ts';
import { startOpsServer } from '../../src/http/ops-api.ts';
import { ServedJwt } from '../../src/refresh/served-jwt.ts';
import { waitFor } from '../helpers/daemon.ts';

const T0 = 1_700_000_000_000;
const MIN_TTL_MS = 60_000;
const API_TOKEN = 'ek_live_ops0123456789abcdef';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDA5MDB9.b3BzLXNpZ25hdHVyZQ';

/** Every ek_sidecar_ metric of SPEC.md, and one default process metric under the same prefix. */
const SPEC_METRICS = [
  'exchanges_total',
  'exchange_duration_seconds',
  'jwt_expiry_timestamp_seconds',
  'jwt_next_refresh_timestamp_seconds',
  'last_exchange_success_timestamp_seconds',
  'rate_limit_budget',
  'jwt_file_writes_total',
  'token_file_reloads_total',
  'token_requests_total',
  'ready',
  'process_cpu_user_seconds_total',
].map((name) => `ek_sidecar_${name}`);

const clock = { nowMs: T0, now: (): number => clock.nowMs, monotonic: (): number => clock.nowMs };
const served = new ServedJwt(MIN_TTL_MS, clock);
const metrics = createMetrics();
let alive = true;
let server: RunningServer;

interface Answer {
  readonly code: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function call(path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // A pod-IP Host, as kubelet and Prometheus send: the ops listener does not apply the token API's guards.
    const headers = { Host: `10.1.2.3:${server.address.port}` };
    const req = request({ host: '127.0.0.1', port: server.address.port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ code: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function assertMessage(answer: Answer): string {
  assert.equal(answer.headers['content-type'], 'application/json');
  const parsed = JSON.parse(answer.body) as { message?: unknown };
  assert.equal(typeof parsed.message, 'string');
  return String(parsed.message);
}

/** The value of an unlabelled sample in the exposition text. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} is exposed`);
  return Number(line.slice(name.length + 1));
}

before(async () => {
  server = await startOpsServer({ listen: { host: '127.0.0.1', port: 0 }, served, metrics, alive: () => alive });
});
after(() => server.close());

void describe('/healthz', () => {
  void it('answers 200 while the loop is alive, 503 once it is not', async () => {
    const up = await call('/healthz');
    assert.equal(up.code, 200);
    assert.deepEqual(JSON.parse(up.body), { status: 'ok' });
    alive = false;
    const down = await call('/healthz');
    assert.equal(down.code, 503);
    assertMessage(down);
    alive = true;
  });

  void it('answers HEAD like GET without a body', async () => {
    const answer = await call('/healthz', 'HEAD');
    assert.equal(answer.code, 200);
    assert.equal(answer.body, '');
  });
});

void describe('/readyz', () => {
  void it('answers 503 with the reason before a JWT is held', async () => {
    const answer = await call('/readyz');
    assert.equal(answer.code, 503);
    assert.match(assertMessage(answer), /no JWT/);
  });

  void it('answers 200 once a JWT is held and written', async () => {
    served.install({ jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000, expiresAtMonoMs: T0 + 900_000 });
    const answer = await call('/readyz');
    assert.equal(answer.code, 200);
    assert.deepEqual(JSON.parse(answer.body), { status: 'ready' });
  });

  void it('answers 503 again once the JWT is within --min-ttl of expiry', async () => {
    clock.nowMs = T0 + 900_000 - MIN_TTL_MS;
    const answer = await call('/readyz');
    assert.equal(answer.code, 503);
    assert.match(assertMessage(answer), /min-ttl/);
    clock.nowMs = T0;
  });
});

void describe('/metrics', () => {
  void it('renders every SPEC metric in the Prometheus text format', async () => {
    const answer = await call('/metrics');
    assert.equal(answer.code, 200);
    assert.equal(answer.headers['content-type'], metrics.registry.contentType);
    for (const name of SPEC_METRICS) assert.match(answer.body, new RegExp(`^# TYPE ${name} `, 'm'));
  });

  void it('derives ready from the recorded state at each scrape (the JWT expiry gauge is the refresher\'s)', async () => {
    let text = (await call('/metrics')).body;
    assert.equal(sample(text, 'ek_sidecar_ready'), 1);
    clock.nowMs = T0 + 900_000;
    text = (await call('/metrics')).body;
    assert.equal(sample(text, 'ek_sidecar_ready'), 0);
    clock.nowMs = T0;
  });
});

void describe('other requests', () => {
  void it('answers 404 for unknown paths (never a token) and 405 with Allow for a wrong method', async () => {
    served.install({ jwt: JWT, tokenType: 'Bearer', expiresAtMs: T0 + 900_000, expiresAtMonoMs: T0 + 900_000 });
    for (const path of ['/v1/token', '/', '/metricsx']) {
      const answer = await call(path);
      assert.equal(answer.code, 404);
      assertMessage(answer);
      assert.ok(!answer.body.includes(JWT));
    }
    const wrong = await call('/metrics', 'POST');
    assert.equal(wrong.code, 405);
    assert.equal(wrong.headers.allow, 'GET, HEAD');
    assertMessage(wrong);
  });

  void it('never exposes the JWT or the API token', async () => {
    for (const path of ['/metrics', '/readyz', '/healthz']) {
      const { body } = await call(path);
      assert.ok(!body.includes(JWT) && !body.includes(API_TOKEN), path);
    }
  });
});

void describe('connection cap', () => {
  void it('holds at most its cap of idle connections, and answers probes past them', async () => {
    const capped = await startOpsServer({ listen: { host: '127.0.0.1', port: 0 }, served, metrics, alive: () => true, maxConnections: 8 });
    const idle: Socket[] = [];
    try {
      let closed = 0;
      for (let i = 0; i < 100; i += 1) {
        idle.push(connect(capped.address.port, '127.0.0.1').on('error', () => undefined).on('close', () => (closed += 1)).resume());
      }
      await waitFor(() => closed >= 100 - 8, 2_000, () => 'all but 8 idle connections closed by the server');
      const answer = await new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port: capped.address.port, path: '/healthz', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject).end();
      });
      assert.equal(answer, 200);
    } finally {
      for (const socket of idle) socket.destroy();
      await capped.close();
    }
  });
});
