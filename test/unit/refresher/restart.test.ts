import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { fingerprint } from '../../../src/core/fingerprint.ts';
import { parseJwtFile } from '../../../src/disk/jwt-file.ts';
import { entryMac, renderState } from '../../../src/disk/state-file.ts';
import { restorableFrom } from '../../../src/refresh/reuse.ts';
import { settle } from '../../helpers/fake-timers.ts';
import { MemoryFiles } from '../../helpers/memory-files.ts';
import { BOOT, JWT_FILE, MIN_TTL_MS, SECOND, STATE_FILE, T0, apiToken, harness, leaks, makeJwt, type Harness, type TestToken } from '../../helpers/refresher-harness.ts';

after(() => { assert.deepEqual(leaks(), []); });

describe('restart: reuse of the JWT on disk', () => {
  const token = apiToken('restart');

  /** What a previous run left: a JWT with `leftMs` to live and its state entry, MAC'd with `signer`'s key. */
  function onDisk(leftMs: number, signer: TestToken = token, options: { jwt?: string } = {}): { files: MemoryFiles; jwt: string } {
    const issuedAtMs = T0 - 100 * SECOND;
    const jwt = options.jwt ?? makeJwt(issuedAtMs, Math.round((100 * SECOND + leftMs) / SECOND));
    const files = new MemoryFiles();
    files.tamper(JWT_FILE, jwt);
    const fields = { key: signer.fingerprint, fingerprint: fingerprint(jwt), issuedAtMs, expiresAtMs: T0 + leftMs, refreshAtMs: T0 + 530 * SECOND };
    // The exchange that issued it has left the budget's window; a later failed attempt has not.
    const exchanges = [{ key: signer.fingerprint, id: '00000001', at: issuedAtMs, mono: 5_000_000 - 100 * SECOND }, { key: signer.fingerprint, id: '00000002', at: T0 - 10 * SECOND, mono: 5_000_000 - 10 * SECOND }];
    files.tamper(STATE_FILE, renderState({ bootId: BOOT, exchanges, jwt: { ...fields, mac: entryMac(signer.credential.stateKey, fields, jwt) } }));
    return { files, jwt };
  }

  async function restart(files: MemoryFiles): Promise<Harness> {
    const h = harness({ random: 0.5, files });
    const stored = parseJwtFile(files.text(JWT_FILE) ?? '');
    const disk = await h.store.load();
    h.refresher.restore(disk.records, restorableFrom({ stored, entry: disk.entry }, MIN_TTL_MS, h.clock));
    return h;
  }

  test('same token, fresh JWT: no exchange, served once rewritten, next exchange at the saved refresh point', async () => {
    const { files, jwt } = onDisk(800 * SECOND);
    const h = await restart(files);
    const release = files.hold();
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 0, 'no exchange');
    assert.equal(h.servedJwt(), undefined, 'not served before the rewrite has finished');
    release();
    await settle();
    assert.equal(h.client.calls.length, 0);
    assert.equal(h.onDisk(), jwt, 'the same JWT rewritten');
    assert.equal(h.servedJwt(), jwt);
    assert.equal(h.state()?.jwt?.refreshAtMs, T0 + 530 * SECOND, 'the saved refresh point is kept');
    assert.equal(h.state()?.exchanges.length, 1, 'and only the budget records still in the window');
    assert.equal(h.refresher.nextAttemptAt(), T0 + 530 * SECOND);
    await h.timers.advanceTo(T0 + 530 * SECOND - 1);
    assert.equal(h.client.calls.length, 0);
    await h.timers.advance(1);
    assert.equal(h.client.calls.length, 1, 'exchanged at the refresh point');
    assert.equal(h.client.calls[0]?.token, token.value);
    await h.stop();
  });

  test('a different token: exchange at once', async () => {
    const { files, jwt } = onDisk(800 * SECOND);
    const h = await restart(files);
    const rotated = apiToken('restart-rotated');
    h.refresher.onCredential(rotated.credential);
    await settle();
    assert.equal(h.client.calls.length, 1);
    assert.equal(h.client.calls[0]?.token, rotated.value);
    assert.notEqual(h.onDisk(), jwt);
    await h.stop();
  });

  for (const [left, what] of [[MIN_TTL_MS, 'exactly min-ttl left'], [MIN_TTL_MS - 1, 'less than min-ttl left'], [-SECOND, 'already expired']] as const) {
    test(`same token, JWT with ${what}: exchange at once`, async () => {
      const { files, jwt } = onDisk(left);
      const h = await restart(files);
      h.refresher.onCredential(token.credential);
      await settle();
      assert.equal(h.client.calls.length, 1);
      assert.notEqual(h.servedJwt(), jwt);
      await h.stop();
    });
  }

  // Found: a forged state file plus a planted JWT was adopted after restart and served on both endpoints.
  test('a planted JWT under our genuine state entry is not reused: exchange at once', async () => {
    const { files } = onDisk(800 * SECOND);
    const planted = makeJwt(T0, 900);
    files.tamper(JWT_FILE, planted);
    const h = await restart(files);
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 1);
    assert.notEqual(h.servedJwt(), planted);
    assert.ok(h.logs.some((line) => line.includes('not written by this sidecar')));
    await h.stop();
  });

  test('a forged entry (another key) for a planted JWT is not reused either', async () => {
    const forger = apiToken('forger');
    const { files, jwt } = onDisk(800 * SECOND, { ...forger, fingerprint: token.fingerprint });
    const h = await restart(files);
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 1);
    assert.notEqual(h.servedJwt(), jwt);
    await h.stop();
  });

  test('the earlier of the entry\'s and the JWT\'s expiry decides', async () => {
    const jwt = makeJwt(T0 - 100 * SECOND, 100 + 800);
    const { files } = onDisk(MIN_TTL_MS, token, { jwt });
    const h = await restart(files);
    h.refresher.onCredential(token.credential);
    await settle();
    assert.equal(h.client.calls.length, 1, 'the entry says only min-ttl is left');
    await h.stop();
  });
});
