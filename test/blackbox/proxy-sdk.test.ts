// The vendor SDK's request shapes (test/helpers/sdk-client.ts) through the real CLI's API proxy, against the fake
// API: one base URL for the exchange and the reads, in both of the SDK's modes and with its Kubernetes auth. The
// upstream must see only the sidecar's JWTs on reads, and only the sidecar's own exchanges.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fingerprint, startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createProjectedTokenVolume, createSecretVolume } from '../../testkit/kubelet-volume.ts';
import { createProjectedTokenIssuer, serviceAccountSubject } from '../../testkit/projected-token.ts';
import { baseArgs, findLeaks, scrapeSample, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';
import { SdkClient, SdkError, SecretNotFoundError, type SdkAuth } from '../helpers/sdk-client.ts';

const TOKEN = 'ek_live_proxy_sdk_0123456789abcdef';
const WORKSPACE = 'ws-payments';
const PROJECT = 'api';
const ENVIRONMENT = 'env-prod';
const SECRETS = { DATABASE_URL: 'postgres://db.internal/payments', STRIPE_KEY: 'sk_test_proxied' };
/** Short JWTs, so that one test can watch the sidecar refresh. */
const LIFETIME_SEC = 12;

describe('the vendor SDK through the API proxy', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const secrets: string[] = [TOKEN];

  before(async () => {
    api = await startFakeApi({ tokens: { [TOKEN]: 'ok' }, lifetimeSec: LIFETIME_SEC, secrets: { [WORKSPACE]: { [PROJECT]: { [ENVIRONMENT]: SECRETS } } } });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  async function start(name: string, extra: readonly string[] = []): Promise<{ daemon: Daemon; token: number; metrics: number; jwtFile: string }> {
    const tokenFile = await createSecretVolume(join(dir.path, `${name}-secret`), TOKEN);
    const jwtFile = join(dir.path, `${name}-jwt`);
    const daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--min-ttl', '1s', ...extra] }));
    const { token, metrics = 0 } = await daemon.ports();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 10_000, () => '/readyz 200');
    return { daemon, token, metrics, jwtFile };
  }

  /** The JWT the sidecar serves now (what the proxy forwards with). */
  async function served(port: number): Promise<string> {
    return (await fetch(`http://127.0.0.1:${String(port)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' } })).text();
  }

  function sdk(port: number, auth: SdkAuth, eager = true): SdkClient {
    return new SdkClient({ baseUrl: `http://127.0.0.1:${String(port)}`, workspace: WORKSPACE, project: PROJECT, environment: ENVIRONMENT, auth, eager, exchangeMarginMs: 1_000 });
  }

  /** The fake's reads since `from`: each must carry a JWT, and only JWTs the sidecar obtained. */
  function assertReadsCarried(from: number, jwts: readonly string[]): void {
    const reads = api.log.slice(from).filter((entry) => entry.route === 'secret' || entry.route === 'secrets');
    assert.ok(reads.length > 0, 'reads reached the upstream');
    const allowed = new Set(jwts.map(fingerprint));
    for (const entry of reads) {
      assert.equal(entry.credential, 'jwt', `${entry.path}: a JWT`);
      assert.ok(allowed.has(entry.tokenFingerprint ?? ''), `${entry.path}: the sidecar's JWT`);
    }
  }

  /** Exchanges the upstream saw since `from` (any route), and what the sidecar says it made. */
  async function assertOnlyOwnExchanges(from: number, metrics: number): Promise<void> {
    const upstream = api.log.slice(from).filter((entry) => entry.route === 'exchange' || entry.route === 'oidc-exchange').length;
    const own = await scrapeSample(metrics, 'ek_sidecar_exchanges_total{result="success"}');
    assert.equal(upstream, own, 'every exchange upstream is one of the sidecar\'s');
  }

  test('without token exchange: the API token reads through the sidecar, the upstream sees only the JWT', async () => {
    const from = api.log.length;
    const s = await start('plain');
    try {
      const eager = sdk(s.token, { kind: 'token', token: TOKEN });
      assert.equal(await eager.get('DATABASE_URL'), SECRETS.DATABASE_URL);
      const single = sdk(s.token, { kind: 'token', token: TOKEN }, false);
      assert.equal(await single.get('STRIPE_KEY'), SECRETS.STRIPE_KEY);
      await assert.rejects(single.get('MISSING'), SecretNotFoundError, 'a 404 read is the SDK\'s SecretNotFoundError');
      assertReadsCarried(from, [await readFile(s.jwtFile, 'utf8')]);
      await assertOnlyOwnExchanges(from, s.metrics);
      assert.equal(await scrapeSample(s.metrics, 'ek_sidecar_proxy_requests_total{method="GET",code="200"}'), 2);
      assert.equal(await scrapeSample(s.metrics, 'ek_sidecar_proxy_requests_total{method="GET",code="404"}'), 1);
    } finally {
      await s.daemon.stop();
    }
  });

  test('with token exchange: the drop-in answers the exchange, and the SDK keeps reading across the sidecar\'s refresh', async () => {
    const from = api.log.length;
    const s = await start('exchange', ['--refresh-window', '0.2,0.25']);
    try {
      const client = sdk(s.token, { kind: 'token', token: TOKEN, useTokenExchange: true }, false);
      assert.equal(await client.get('DATABASE_URL'), SECRETS.DATABASE_URL);
      const first = client.heldToken ?? '';
      assert.ok(api.issued().includes(first), 'the SDK got a JWT the sidecar obtained upstream, from the drop-in');
      // The sidecar refreshes (at 20-25 % of 12 s); the SDK keeps the JWT it has, still valid for several seconds.
      const second = await waitFor(async () => { const now = await served(s.token); return now !== first && now; }, 10_000, () => 'the sidecar\'s refresh');
      assert.equal(await client.get('STRIPE_KEY'), SECRETS.STRIPE_KEY);
      assert.equal(client.heldToken, first, 'read with the previous JWT');
      const last = api.log.filter((entry) => entry.route === 'secret').at(-1);
      assert.equal(last?.tokenFingerprint, fingerprint(second), 'forwarded with the JWT held now');
      assertReadsCarried(from, [first, second]);
      await assertOnlyOwnExchanges(from, s.metrics);
      secrets.push(first, second);
    } finally {
      await s.daemon.stop();
    }
  });

  test('a 401 from the upstream is passed back and checked by one new exchange; the next read works', async () => {
    const s = await start('revoked');
    try {
      const client = sdk(s.token, { kind: 'token', token: TOKEN }, false);
      const before = await scrapeSample(s.metrics, 'ek_sidecar_exchanges_total{result="success"}');
      api.enqueue('401', { route: 'reads' });
      await assert.rejects(client.get('DATABASE_URL'), (error: unknown) => error instanceof SdkError && error.name === 'AuthenticationError');
      await waitFor(async () => await scrapeSample(s.metrics, 'ek_sidecar_exchanges_total{result="success"}') === before + 1, 5_000, () => 'the check exchange');
      await s.daemon.waitForLog((line) => line.reason === 'proxy-401'); // the exchange says why it happened
      assert.equal(await client.get('DATABASE_URL'), SECRETS.DATABASE_URL);
    } finally {
      await s.daemon.stop();
    }
  });

  test('verify refuses any other credential and forwards nothing; inject needs none; off answers 404', async () => {
    const verify = await start('verify');
    const inject = await start('inject', ['--proxy', 'inject']);
    const off = await start('off', ['--proxy', 'off']);
    try {
      const from = api.log.length;
      for (const token of ['ek_live_someone_else_0123456789', 'eyJhbGciOiJIUzI1NiJ9.e30.c2ln']) {
        await assert.rejects(sdk(verify.token, { kind: 'token', token }).get('DATABASE_URL'), (error: unknown) => error instanceof SdkError && error.status === 401);
      }
      assert.equal(api.log.length, from, 'nothing reached the upstream');
      // The SDK insists on a token of the right shape; with inject it is a placeholder, dropped on the way.
      assert.equal(await sdk(inject.token, { kind: 'token', token: 'ek_live_placeholder' }).get('DATABASE_URL'), SECRETS.DATABASE_URL);
      assertReadsCarried(from, [await readFile(inject.jwtFile, 'utf8')]);
      await assert.rejects(sdk(off.token, { kind: 'token', token: TOKEN }).get('DATABASE_URL'), (error: unknown) => error instanceof SdkError && error.name === 'NotFoundError');
    } finally {
      await Promise.all([verify.daemon.stop(), inject.daemon.stop(), off.daemon.stop()]);
    }
  });

  test('Kubernetes auth: the SDK\'s OIDC exchange is answered by the drop-in, its reads go through the proxy', async () => {
    const issuer = await createProjectedTokenIssuer();
    const oidcApi = await startFakeApi({ oidc: { issuer: issuer.issuer, publicKey: issuer.publicKey, audience: 'enkryptify' }, secrets: { [WORKSPACE]: { [PROJECT]: { [ENVIRONMENT]: SECRETS } } } });
    const projected = await issuer.mint({ namespace: 'payments', serviceAccount: 'api' });
    secrets.push(projected);
    // The app mounts the same projected token the sidecar uses (ENKRYPTIFY_TOKEN_PATH).
    const tokenPath = await createProjectedTokenVolume(join(dir.path, 'oidc-projected'), projected, { file: 'enkryptify' });
    const jwtFile = join(dir.path, 'oidc-jwt');
    const args = baseArgs({ apiUrl: oidcApi.url, tokenFile: '/nonexistent/unused', jwtFile }).filter((arg, i, all) => arg !== '--token-file' && all[i - 1] !== '--token-file');
    const daemon = startDaemon([...args, '--auth', 'oidc', '--oidc-token-file', tokenPath, '--workspace', WORKSPACE]);
    try {
      const { token, metrics = 0 } = await daemon.ports();
      await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 10_000, () => '/readyz 200');
      const client = sdk(token, { kind: 'kubernetes', tokenPath });
      assert.equal(await client.get('STRIPE_KEY'), SECRETS.STRIPE_KEY);
      const jwt = await readFile(jwtFile, 'utf8');
      assert.equal(client.heldToken, jwt);
      assert.equal(oidcApi.countForSub(serviceAccountSubject('payments', 'api')), 1, 'the sidecar\'s exchange only');
      const reads = oidcApi.log.filter((entry) => entry.route === 'secrets');
      assert.deepEqual(reads.map((entry) => [entry.credential, entry.tokenFingerprint]), [['jwt', fingerprint(jwt)]]);
      // Without an API token, verify accepts only the JWTs the sidecar obtained.
      await assert.rejects(sdk(token, { kind: 'token', token: 'ek_live_not_here_0123456789' }).get('STRIPE_KEY'), (error: unknown) => error instanceof SdkError && error.status === 401);
      secrets.push(jwt, ...oidcApi.issued());
    } finally {
      await daemon.stop();
      await oidcApi.close();
    }
  });

  test('chained to a broker: the read goes sidecar → broker → upstream, and the upstream sees the broker\'s one JWT', async () => {
    const from = api.log.length;
    const broker = await start('broker');
    const tokenFile = await createSecretVolume(join(dir.path, 'chained-secret'), TOKEN);
    const daemon = startDaemon(baseArgs({ apiUrl: `http://127.0.0.1:${String(broker.token)}`, tokenFile, jwtFile: join(dir.path, 'chained-jwt'), extra: ['--min-ttl', '1s'] }));
    try {
      const { token, metrics = 0 } = await daemon.ports();
      await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 10_000, () => 'the chained sidecar ready');
      const client = sdk(token, { kind: 'token', token: TOKEN, useTokenExchange: true });
      assert.equal(await client.get('DATABASE_URL'), SECRETS.DATABASE_URL);
      const jwt = await served(broker.token);
      assert.equal(client.heldToken, jwt, 'the chained sidecar hands out the broker\'s JWT');
      assertReadsCarried(from, [jwt]);
      assert.equal(api.log.slice(from).filter((entry) => entry.route === 'exchange').length, 1, 'one exchange upstream: the broker\'s');
    } finally {
      await Promise.all([daemon.stop(), broker.daemon.stop()]);
    }
  });

  test('no API token, JWT or projected token is ever printed', () => {
    assert.deepEqual(findLeaks([...secrets, ...api.issued(), ...Object.values(SECRETS)]), []);
  });
});
