import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Clock } from '../../src/core/clock.ts';
import { CredentialError, DiskError, ExchangeError } from '../../src/core/errors.ts';
import { holdJwt } from '../../src/core/held-jwt.ts';
import { apiTokenCredential } from '../../src/credentials/credential.ts';
import { createMetrics } from '../../src/observe/metrics.ts';
import { RefreshReport, problemOf } from '../../src/refresh/refresh-report.ts';

const TOKEN = 'ek_live_report_test_0123456789abcdef';
const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE5MDAwMDAwMDB9.c2lnbmF0dXJlLXJlcG9ydC10ZXN0';
const NOW = Date.UTC(2030, 0, 1);
const clock: Clock = { now: () => NOW, monotonic: () => 1_000 };

function setup(): { report: RefreshReport; lines: () => { level: number; msg: string; [field: string]: unknown }[]; metric: (name: string) => Promise<string> } {
  const out: string[] = [];
  const metrics = createMetrics({ defaultMetrics: false });
  const report = new RefreshReport(metrics, pino({ level: 'trace' }, { write: (line: string) => { out.push(line); } }), clock);
  return {
    report,
    lines: () => out.map((line) => JSON.parse(line) as { level: number; msg: string }),
    metric: async (name) => (await metrics.registry.getSingleMetricAsString(`ek_sidecar_${name}`)).split('\n').filter((line) => !line.startsWith('#')).join('\n'),
  };
}

const credential = apiTokenCredential(TOKEN);
const held = holdJwt(JWT, 'Bearer', NOW + 900_000, clock);

void describe('RefreshReport', () => {
  void it('a failed exchange is counted by its code and logged by kind, with the fingerprint and never the secrets', async () => {
    const { report, lines, metric } = setup();
    report.failed(new ExchangeError('unauthorized', 'HTTP 401 from the upstream', { status: 401, rateLimitRemaining: 3 }), credential, 'schedule', { failures: 1, delayMs: 300_000 });
    report.failed(new ExchangeError('server_error', 'HTTP 503', { status: 503 }), credential, 'retry', { failures: 2, delayMs: 1_500 });
    report.failed(new DiskError('locked', '/v/jwt.state.json', 'locked'), credential, 'retry', { failures: 3, delayMs: 900 });
    report.failed(new ExchangeError('server_error', 'HTTP 502', { status: 502 }), credential, 'rotation', undefined);
    const logged = lines();
    assert.deepEqual(logged.map((line) => line.level), [50, 40, 50, 40]);
    assert.match(logged[0]?.msg ?? '', /retrying in 300 s or when the credential changes or on SIGHUP$/);
    assert.equal(logged[0]?.['retryAt'], new Date(NOW + 300_000).toISOString());
    assert.match(logged[2]?.msg ?? '', /cannot be recorded, so none is sent$/);
    assert.match(logged[3]?.msg ?? '', /the credential has since been rotated$/);
    for (const line of logged) assert.equal(line['tokenFingerprint'], credential.identity);
    const counted = await metric('exchanges_total');
    assert.match(counted, /result="unauthorized"} 1/);
    assert.match(counted, /result="server_error"} 2/);
    assert.match(await metric('upstream_rate_limit_remaining'), / 3$/);
    const text = JSON.stringify(logged) + counted;
    assert.ok(!text.includes(TOKEN) && !text.includes(JWT));
  });

  void it('an answer and a new JWT: success counted, times as ISO, anomalies warned', async () => {
    const { report, lines, metric } = setup();
    report.answered(credential, { issued: { jwt: JWT, tokenType: 'Bearer', expiresAtMs: held.expiresAtMs }, rateLimit: { remaining: 9, resetMs: undefined }, anomalies: ['expiresIn 0 was raised to 1 s'] });
    report.newJwt(credential, 'start', held, NOW + 600_000);
    report.installed(held);
    const logged = lines();
    assert.equal(logged[0]?.level, 40);
    assert.equal(logged[1]?.['nextRefreshAt'], new Date(NOW + 600_000).toISOString());
    assert.match(await metric('exchanges_total'), /result="success"} 1/);
    assert.match(await metric('jwt_expiry_timestamp_seconds'), new RegExp(` ${String((NOW + 900_000) / 1000)}$`));
    assert.ok(!JSON.stringify(logged).includes(JWT));
  });

  void it('a wait held by the budget is warned; one held by the schedule only moves the gauge', async () => {
    const { report, lines, metric } = setup();
    report.waiting(NOW + 5_000, 'schedule', credential);
    assert.equal(lines().length, 0);
    report.waiting(NOW + 6_000, 'budget', credential);
    assert.equal(lines()[0]?.msg, 'exchange delayed by the client-side rate limit');
    assert.match(await metric('jwt_next_refresh_timestamp_seconds'), new RegExp(` ${String((NOW + 6_000) / 1000)}$`));
  });
});

void describe('problemOf', () => {
  void it('names the kind of failure for /readyz', () => {
    assert.deepEqual(problemOf(new ExchangeError('rate_limited', 'HTTP 429', { status: 429 })), { kind: 'exchange', code: 'rate_limited', status: 429 });
    assert.deepEqual(problemOf(new CredentialError('empty', '/t: empty')), { kind: 'credential', code: 'empty' });
    assert.deepEqual(problemOf(new DiskError('locked', '/s', 'locked')), { kind: 'budget-record', code: 'locked' });
  });
});
