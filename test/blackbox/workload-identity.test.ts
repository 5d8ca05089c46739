// --auth oidc end to end: the real CLI against the fake API's OIDC exchange, with projected service-account tokens
// minted by a test issuer and rotated the kubelet's way.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createProjectedTokenVolume, rotateProjectedTokenVolume } from '../../testkit/kubelet-volume.ts';
import { createProjectedTokenIssuer, serviceAccountSubject, type ProjectedTokenIssuer } from '../../testkit/projected-token.ts';
import { baseArgs, findLeaks, scrapeSample, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';

const WORKSPACE = 'ws-payments';
const SUB = serviceAccountSubject('payments', 'api');

describe('workload identity (--auth oidc)', () => {
  let issuer: ProjectedTokenIssuer;
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  const projected: string[] = [];

  before(async () => {
    issuer = await createProjectedTokenIssuer();
    api = await startFakeApi({ oidc: { issuer: issuer.issuer, publicKey: issuer.publicKey, audience: 'enkryptify' } });
    dir = await tempDir();
  });
  after(async () => {
    await api.close();
    await dir.remove();
  });

  async function mint(flaw?: 'expired' | 'wrong-audience'): Promise<string> {
    const token = await issuer.mint({ namespace: 'payments', serviceAccount: 'api', ...(flaw === undefined ? {} : { flaw }) });
    projected.push(token);
    return token;
  }

  function oidcArgs(tokenFile: string, jwtFile: string): string[] {
    // No --token-file, no EK_API_TOKEN: nothing in the pod holds a long-lived secret.
    return [...baseArgs({ apiUrl: api.url, tokenFile: '/nonexistent/unused', jwtFile }).filter((arg, i, all) => arg !== '--token-file' && all[i - 1] !== '--token-file'),
      '--auth', 'oidc', '--oidc-token-file', tokenFile, '--workspace', WORKSPACE];
  }

  async function ready(daemon: Daemon): Promise<number> {
    const { metrics } = await daemon.ports();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`)).status === 200, 10_000, () => '/readyz 200');
    return metrics ?? 0;
  }

  async function dropIn(port: number, body: unknown): Promise<{ status: number; body: string }> {
    const response = await fetch(`http://127.0.0.1:${String(port)}/v1/auth/oidc/exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, body: await response.text() };
  }

  test('one exchange; the kubelet\'s rotation costs none; a restart reuses the JWT; the drop-in answers the pod\'s own token', async () => {
    const volume = join(dir.path, 'projected');
    const tokenFile = await createProjectedTokenVolume(volume, await mint(), { file: 'enkryptify' });
    const jwtFile = join(dir.path, 'jwt');
    const first = startDaemon(oidcArgs(tokenFile, jwtFile));
    const metrics = await ready(first);
    const { token: tokenPort } = await first.ports();
    assert.equal(api.countForSub(SUB), 1, 'one OIDC exchange for the service account');
    assert.equal(await scrapeSample(metrics, 'ek_sidecar_auth_info{mode="oidc"}'), 1, 'the metrics say which auth mode');

    const current = projected.at(-1) ?? '';
    const granted = await dropIn(tokenPort, { token: current, workspaceId: WORKSPACE });
    assert.equal(granted.status, 200, granted.body);
    assert.deepEqual(Object.keys(JSON.parse(granted.body) as object), ['accessToken', 'expiresIn', 'tokenType']);
    assert.equal((await dropIn(tokenPort, { token: current, workspaceId: 'ws-other' })).status, 401, 'another workspace');
    assert.equal((await dropIn(tokenPort, { token: await mint(), workspaceId: WORKSPACE })).status, 401, 'a token that is not the pod\'s current one');
    assert.equal((await dropIn(tokenPort, { token: current })).status, 400, 'a body without workspaceId');

    // The kubelet rotates the projected token at 80 % of its life: same identity, no exchange.
    const rotated = await mint();
    const writes = await scrapeSample(metrics, 'ek_sidecar_state_file_writes_total{result="success"}');
    await rotateProjectedTokenVolume(volume, rotated, { file: 'enkryptify' });
    await waitFor(async () => await scrapeSample(metrics, 'ek_sidecar_token_file_reloads_total{result="success"}') >= 2, 5_000, () => 'the rotation read');
    await waitFor(async () => (await dropIn(tokenPort, { token: rotated, workspaceId: WORKSPACE })).status === 200, 5_000, () => 'the drop-in on the rotated token');
    assert.equal((await dropIn(tokenPort, { token: current, workspaceId: WORKSPACE })).status, 401, 'the rotated-out token is refused');
    assert.equal(api.countForSub(SUB), 1, 'no exchange for the rotation');

    // Restart: the JWT on disk (re-keyed to the rotated token) is reused without an exchange.
    // Killed once the state entry is re-keyed to the rotated token (a kill before that write costs one exchange).
    await waitFor(async () => await scrapeSample(metrics, 'ek_sidecar_state_file_writes_total{result="success"}') > writes, 5_000, () => 'the state entry re-keyed');
    await first.kill9();
    const second = startDaemon(oidcArgs(tokenFile, jwtFile));
    await ready(second);
    assert.equal(api.countForSub(SUB), 1, 'no exchange on restart');
    assert.equal((await second.stop()).code, 0);
  });

  test('an expired projected token is never sent; the kubelet\'s fresh one is exchanged at once', async () => {
    const volume = join(dir.path, 'projected-expired');
    const tokenFile = await createProjectedTokenVolume(volume, await mint('expired'));
    const before = api.countForSub(SUB);
    const daemon = startDaemon(oidcArgs(tokenFile, join(dir.path, 'jwt-expired')));
    const { metrics } = await daemon.ports();
    await waitFor(async () => await scrapeSample(metrics ?? 0, 'ek_sidecar_token_file_reloads_total{result="invalid"}') >= 1, 5_000, () => 'the expired token counted');
    const readyz = await fetch(`http://127.0.0.1:${String(metrics)}/readyz`);
    assert.equal(readyz.status, 503);
    assert.match(await readyz.text(), /token file is unusable \(expired\)/);
    assert.equal(api.log.filter((entry) => entry.path === '/v1/auth/oidc/exchange').length - before, 0, 'nothing sent');
    await rotateProjectedTokenVolume(volume, await mint());
    await ready(daemon);
    assert.equal(api.countForSub(SUB), before + 1);
    assert.equal((await daemon.stop()).code, 0);
  });

  test('a token the upstream refuses (wrong audience) is an authentication failure, counted, not hammered', async () => {
    const tokenFile = await createProjectedTokenVolume(join(dir.path, 'projected-audience'), await mint('wrong-audience'));
    const daemon = startDaemon(oidcArgs(tokenFile, join(dir.path, 'jwt-audience')));
    const { metrics } = await daemon.ports();
    await waitFor(async () => await scrapeSample(metrics ?? 0, 'ek_sidecar_exchanges_total{result="unauthorized"}') === 1, 5_000, () => 'the 401 counted');
    assert.equal((await daemon.stop()).code, 0);
  });

  test('--workspace is required with --auth oidc, and no projected token or JWT is ever printed', async () => {
    const missing = startDaemon(['--auth', 'oidc', '--oidc-token-file', '/nonexistent', '--jwt-file', join(dir.path, 'jwt-none')]);
    const { code } = await missing.exited();
    assert.equal(code, 2);
    assert.match(missing.stderr(), /--workspace/);
    assert.deepEqual(findLeaks([...projected, ...api.issued()]), []);
  });
});
