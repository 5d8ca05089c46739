import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { CredentialError } from '../../src/core/errors.ts';
import type { Credential } from '../../src/credentials/credential.ts';
import { startCredentialSource } from '../../src/credentials/credential-source.ts';
import { createMetrics } from '../../src/observe/metrics.ts';
import { tempDir, waitFor } from '../helpers/daemon.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';

const A = 'ek_live_source_token_a_0123456789';
const B = 'ek_live_source_token_b_0123456789';

void describe('the API-token credential source: the one writer of token_file_reloads_total and of the reload logs', () => {
  const dirs: { remove(): Promise<void> }[] = [];
  after(async () => { await Promise.all(dirs.map((dir) => dir.remove())); });

  void it('reports the token, follows a rotation, counts both reads and keeps the last good token on a bad one', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const secret = join(dir.path, 'secret');
    const tokenFile = await createSecretVolume(secret, A);
    const metrics = createMetrics({ defaultMetrics: false });
    const logs: string[] = [];
    const seen: Credential[] = [];
    const problems: CredentialError[] = [];
    const source = await startCredentialSource({
      config: { auth: 'api-token', tokenFile, apiTokenFromEnv: undefined, oidcTokenFile: '/unused', workspace: undefined },
      metrics,
      log: pino({ level: 'info' }, { write: (line: string) => { logs.push(line); } }),
      events: { onCredential: (credential) => { seen.push(credential); }, onProblem: (problem) => { problems.push(problem); } },
    });
    try {
      assert.equal(seen.length, 1);
      assert.equal(source.isApiToken(A), true);
      assert.equal(source.isApiToken(B), false);
      assert.equal(source.isApiToken(`${A}x`), false);
      assert.equal(source.isApiToken(''), false);
      await rotateSecretVolume(secret, B);
      await waitFor(() => seen.length === 2, 5_000, () => 'the rotation');
      assert.equal(source.isApiToken(B), true);
      assert.equal(source.isApiToken(A), false, 'the rotated-out token is refused at once');
      await rotateSecretVolume(secret, 'not a token');
      await waitFor(() => problems.length === 1, 5_000, () => 'the bad read');
      assert.equal(problems[0]?.code, 'malformed');
      assert.equal(source.isApiToken(B), true, 'the last good token stays');
      const reloads = (await metrics.tokenFileReloads.get()).values;
      assert.deepEqual(Object.fromEntries(reloads.map((v) => [v.labels.result, v.value])), { success: 2, invalid: 1 });
      assert.ok(logs.some((line) => line.includes('API token rotated')));
      assert.ok(logs.every((line) => !line.includes(A) && !line.includes(B) && !line.includes('not a token')), 'no token text in the log');
    } finally {
      await source.close();
    }
  });
});
