// 4. Upstream cost: exchanges per JWT lifetime in steady state, and the exchanges made by SIGKILL restarts while a
// fresh JWT is on disk. Steady state: N daemons, each with its own API token, against the fake API issuing JWTs of a
// lifetime long enough that the daemon's own policy draws its whole default --refresh-window (below about 200 s its
// margin before --min-ttl caps the draw); each daemon is watched from its first exchange to its first refresh, and
// the figure is the lifetime over the mean interval. The model rows use the daemon's own refresh policy.
import { readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { BENCH_TOKEN, fmt, makeFixture, type Fixture } from '../lib/fixture.ts';
import type { Profile } from '../lib/options.ts';
import { row, type Row, type SectionResult } from '../lib/report.ts';
import { MSG_EXCHANGED, MSG_REUSED, startSidecar, type Sidecar } from '../lib/sidecar.ts';
import { modelExchangesPerLifetime, REAL_LIFETIME_SEC, REAL_MIN_TTL_SEC, REFRESH_WINDOW, windowText, windowUncapped } from '../lib/refresh-model.ts';
import { mean, median } from '../lib/stats.ts';
import { sleep, waitFor, waitForFileContent } from '../lib/wait.ts';

/** First 8 hex of SHA-256: how the fake API's log names a token. */
function fingerprintOf(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 8);
}

async function steadyState(profile: Profile['upstream'], fixture: Fixture): Promise<{ rows: Row[]; notes: string[]; data: Record<string, unknown> }> {
  const lifetimeMs = profile.lifetimeSec * 1000;
  const api = await startFakeApiProcess({ lifetimeSec: profile.lifetimeSec });
  const daemons: { sidecar: Sidecar; fingerprint: string; jwtFile: string }[] = [];
  try {
    for (let i = 0; i < profile.daemons; i++) {
      const token = `${BENCH_TOKEN}_${String(i)}`;
      const tokenFile = `${fixture.tokenFile}-${String(i)}`;
      writeFileSync(tokenFile, token);
      const jwtFile = fixture.jwtFile(`steady-jwt-${String(i)}`);
      const sidecar = startSidecar({ apiUrl: api.url, tokenFile, jwtFile, extra: ['--min-ttl', `${String(profile.minTtlMs)}ms`] });
      daemons.push({ sidecar, fingerprint: fingerprintOf(token), jwtFile });
    }
    await Promise.all(daemons.map((daemon) => waitForFileContent(daemon.jwtFile, 15_000)));
    const okTimes = async (): Promise<Map<string, number[]>> => {
      const byToken = new Map<string, number[]>();
      for (const entry of (await api.log()).entries) {
        if (entry.status !== 200 || entry.tokenFingerprint === null) continue;
        byToken.set(entry.tokenFingerprint, [...(byToken.get(entry.tokenFingerprint) ?? []), entry.atMs]);
      }
      return byToken;
    };
    // Every daemon refreshes by window[1] of the lifetime after its first exchange; wait for all, with some slack.
    const deadline = performance.now() + REFRESH_WINDOW[1] * lifetimeMs + 10_000;
    let byToken = await okTimes();
    while (daemons.some((daemon) => (byToken.get(daemon.fingerprint) ?? []).length < 2) && performance.now() < deadline) {
      await sleep(Math.min(1_000, Math.max(50, lifetimeMs / 20)));
      byToken = await okTimes();
    }
    const intervals = daemons.flatMap((daemon) => {
      const times = (byToken.get(daemon.fingerprint) ?? []).sort((a, b) => a - b);
      return times.length >= 2 ? [(times[1] ?? 0) - (times[0] ?? 0)] : [];
    });
    const measured = intervals.length > 0 ? lifetimeMs / mean(intervals) : Number.NaN;
    const uncapped = windowUncapped(lifetimeMs, profile.minTtlMs);
    const runModel = modelExchangesPerLifetime(lifetimeMs, profile.minTtlMs);
    const realModel = modelExchangesPerLifetime(REAL_LIFETIME_SEC * 1000, REAL_MIN_TTL_SEC * 1000);
    const fractions = intervals.map((interval) => interval / lifetimeMs);
    const rows = [
      uncapped
        ? row(`exchanges per JWT lifetime, steady state (${String(profile.lifetimeSec)} s JWTs, ${String(intervals.length)} daemons, default window)`, fmt(measured, 2),
          `model ${fmt(runModel, 2)}`, `refreshed at ${fmt(Math.min(...fractions), 2)}–${fmt(Math.max(...fractions), 2)} of the lifetime`, '≤ 1.30', measured <= 1.3)
        : row(`exchanges per JWT lifetime (${String(profile.lifetimeSec)} s JWTs: the policy caps the window at this lifetime)`, fmt(measured, 2), `model ${fmt(runModel, 2)}`,
          `refreshed at ${fmt(Math.min(...fractions), 2)}–${fmt(Math.max(...fractions), 2)} of the lifetime`),
      row(`…model at production scale (900 s JWT, --min-ttl 60s, window ${REFRESH_WINDOW.join(',')})`, fmt(realModel, 2), '', `refresh at ${windowText()} of the lifetime`, '≤ 1.30', realModel <= 1.3),
    ];
    const notes = [
      `${String(profile.daemons)} daemons, one API token each, the fake API issuing ${String(profile.lifetimeSec)} s JWTs, --min-ttl ${String(profile.minTtlMs)}ms and the default --refresh-window ${REFRESH_WINDOW.join(',')}; each daemon is timed from its first exchange to its first refresh (at the fake API), and the figure is the lifetime over the mean of those intervals: the steady-state rate. ${uncapped ? 'At this lifetime the policy draws the whole window.' : 'At this lifetime the policy\'s margin before --min-ttl (a quarter of the usable life, at most 30 s) caps the draw under the window\'s end, so more exchanges follow than at production scale: no target here (a full run uses a lifetime long enough).'}`,
      `A refresh at a uniform point f of [${REFRESH_WINDOW.join(', ')}] of the lifetime costs 1/E[f] = ${fmt(2 / (REFRESH_WINDOW[0] + REFRESH_WINDOW[1]), 3)} exchanges per lifetime (E[1/f] = ${fmt(Math.log(REFRESH_WINDOW[1] / REFRESH_WINDOW[0]) / (REFRESH_WINDOW[1] - REFRESH_WINDOW[0]), 3)} per refresh); SPEC's 0.6,0.8 costs 1.43.`,
    ];
    return { rows, notes, data: { intervalsMs: intervals, measured, runModel, realModel, uncapped } };
  } finally {
    await Promise.all(daemons.map((daemon) => daemon.sidecar.stop()));
    await api.close();
  }
}

function stateVouchesForJwt(stateFile: string): boolean {
  try {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as { jwt?: { fingerprint?: unknown } | null };
    return typeof state.jwt?.fingerprint === 'string' && state.jwt.fingerprint !== '';
  } catch {
    return false;
  }
}

async function restarts(profile: Profile['upstream'], fixture: Fixture): Promise<{ rows: Row[]; notes: string[]; data: Record<string, unknown> }> {
  const api = await startFakeApiProcess({ lifetimeSec: 900 });
  const jwtFile = fixture.jwtFile('restart-jwt');
  const start = (): Sidecar => startSidecar({ apiUrl: api.url, tokenFile: fixture.tokenFile, jwtFile });
  let sidecar = start();
  try {
    await sidecar.waitForMsg(MSG_EXCHANGED, 15_000);
    // The state file may be written before the JWT (to keep the exchange in the budget) and again after it: wait for
    // the version that vouches for the JWT on disk, or a restart could rightly refuse to reuse it.
    await waitFor(() => stateVouchesForJwt(`${jwtFile}.state.json`), 5_000, 'a state file naming the JWT on disk');
    const before = (await api.log()).entries.length;
    const reuseMs: number[] = [];
    let notReused = 0;
    for (let i = 0; i < profile.restarts; i++) {
      await sidecar.stop('SIGKILL');
      sidecar = start();
      const current = sidecar;
      const line = await waitFor(() => current.lines().find((l) => l.msg === MSG_REUSED || l.msg === MSG_EXCHANGED), 10_000, 'reuse or exchange', 5)
        .catch(() => undefined);
      if (line?.msg === MSG_REUSED) {
        reuseMs.push(line.seenAtMs - current.spawnedAtMs);
      } else {
        // It exchanged (or is waiting for something): count it, and let its state settle before the next kill.
        notReused++;
        await waitFor(() => stateVouchesForJwt(`${jwtFile}.state.json`), 5_000, 'the state file').catch(() => undefined);
      }
    }
    // Anything late (a retry, a refresh misplanned after restart) would show up here.
    await sleep(500);
    const after = (await api.log()).entries.length;
    const extra = after - before;
    const rows = [
      row(`exchanges made by ${profile.restarts} SIGKILL restarts (fresh JWT on disk)`, String(extra), '', `${reuseMs.length}/${profile.restarts} reused the JWT`, '0', extra === 0),
    ];
    const notes = [`Requests the fake API received over the restarts, from its log before and after. Spawn → "reusing the JWT on disk" line: median ${fmt(median(reuseMs))} ms.`];
    return { rows, notes, data: { extraRequests: extra, notReused, reuseMs } };
  } finally {
    await sidecar.stop();
    await api.close();
  }
}

export async function upstream(profile: Profile['upstream']): Promise<SectionResult> {
  const fixture = makeFixture('upstream');
  try {
    const steady = await steadyState(profile, fixture);
    const restart = await restarts(profile, fixture);
    return {
      name: 'upstream',
      title: 'Upstream cost',
      rows: [...steady.rows, ...restart.rows],
      notes: [...steady.notes, ...restart.notes],
      data: { steady: steady.data, restarts: restart.data },
    };
  } finally {
    fixture.remove();
  }
}
