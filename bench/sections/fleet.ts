// 5. Fleet: N daemons (processes) sharing ONE API token against the fake API enforcing the per-token limit, all
// spawned together, with time scaled down (JWT lifetime, rate window and min-ttl divided by the same factor).
// Measures how long until every daemon holds a JWT, what the fleet asked of the upstream, and the steady state.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFakeApiProcess, type LogEntry } from '../lib/fake-api.ts';
import { BENCH_TOKEN, fmt, makeFixture } from '../lib/fixture.ts';
import type { Profile } from '../lib/options.ts';
import { row, type Row, type SectionResult } from '../lib/report.ts';
import { progress } from '../lib/progress.ts';
import { startSidecar, type Sidecar } from '../lib/sidecar.ts';
import { maxInAnyWindow, median } from '../lib/stats.ts';
import { sleep, waitFor, waitForFileContent } from '../lib/wait.ts';
import { modelExchangesPerLifetime, REAL_LIFETIME_SEC, REAL_MIN_TTL_SEC, REAL_WINDOW_SEC, REFRESH_WINDOW, windowText } from '../lib/refresh-model.ts';

export const LIMIT = 10;
/** What a daemon logs when it has read an empty token file (src/refresher.ts). */
export const NO_TOKEN_YET = 'no API token is loaded yet';
/** Lifetimes to let pass after start-up before steady state counts: the last refresh point of the first JWTs. */
const REFRESH_SETTLE = REFRESH_WINDOW[1];
/**
 * Daemons starting at any one time. All N at once on 2 cores thrash (100 took 70–106 s to all start, loaded machine);
 * a few at a time keeps both cores busy with less contention. The gate makes the start order irrelevant to the race.
 */
export const STARTING_AT_ONCE = 4;
const RACE_BASE_MS = 30_000;
const RACE_WINDOWS = 20;

interface Phase {
  readonly requests: number;
  readonly ok: number;
  readonly rateLimited: number;
  readonly other: number;
  /** Most requests (any answer) inside any rolling window: the load the fleet put on the token's budget. */
  readonly maxRequestsInWindow: number;
  readonly maxOkInWindow: number;
}

function phase(entries: readonly LogEntry[], windowMs: number): Phase {
  const times = (list: readonly LogEntry[]): number[] => list.map((entry) => entry.atMs).sort((a, b) => a - b);
  const ok = entries.filter((entry) => entry.status === 200);
  const rateLimited = entries.filter((entry) => entry.status === 429).length;
  return {
    requests: entries.length,
    ok: ok.length,
    rateLimited,
    other: entries.length - ok.length - rateLimited,
    maxRequestsInWindow: maxInAnyWindow(times(entries), windowMs),
    maxOkInWindow: maxInAnyWindow(times(ok), windowMs),
  };
}

interface FleetRun {
  readonly n: number;
  readonly held: number;
  /** Seconds from the first spawn until each daemon's start-up line: N processes starting at once on this machine. */
  readonly firstStartedSec: number;
  readonly lastStartedSec: number;
  /** Seconds from the API token's appearance until every daemon held a JWT (undefined: not all did). */
  readonly allHeldSec: number | undefined;
  /** How long the race was given before the figures were taken. */
  readonly timeoutSec: number;
  readonly medianHeldSec: number;
  readonly boundWindows: number;
  readonly startup: Phase;
  readonly steady: Phase & { readonly seconds: number; readonly perWindow: number };
}

/** Run `task` over `items` with at most `width` in flight; results in the order of `items`. */
export async function inPool<T, R>(items: readonly T[], width: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return results;
}

/** Atomically put the API token in place, as the kubelet does (a rename, never a partial file). */
export function publishToken(tokenFile: string): void {
  writeFileSync(`${tokenFile}.new`, BENCH_TOKEN);
  renameSync(`${tokenFile}.new`, tokenFile);
}

async function runFleet(n: number, profile: Profile['fleet'], steadyLifetimes: number): Promise<FleetRun> {
  const lifetimeSec = REAL_LIFETIME_SEC / profile.scale;
  const windowMs = Math.round((REAL_WINDOW_SEC * 1000) / profile.scale);
  const minTtlMs = Math.round((REAL_MIN_TTL_SEC * 1000) / profile.scale);
  const api = await startFakeApiProcess({ lifetimeSec, limit: LIMIT, windowMs });
  const fixture = makeFixture(`fleet-${n}`);
  // The gate: every daemon starts with an empty token file and waits; the token appears once all are up.
  writeFileSync(fixture.tokenFile, '');
  const sidecars: Sidecar[] = [];
  try {
    const jwtFiles = Array.from({ length: n }, (_, i) => {
      const dir = join(fixture.dir, `pod-${i}`);
      mkdirSync(dir);
      return join(dir, 'jwt');
    });
    const t0 = performance.now();
    const startOne = async (jwtFile: string): Promise<number> => {
      const sidecar = startSidecar({
        apiUrl: api.url,
        tokenFile: fixture.tokenFile,
        jwtFile,
        extra: ['--rate-limit', `${LIMIT}/${windowMs}ms`, '--min-ttl', `${minTtlMs}ms`, '--timeout', '5s'],
      });
      sidecars.push(sidecar);
      return (await sidecar.ports(60_000)).startedAtMs - t0;
    };
    const started = await inPool(jwtFiles, STARTING_AT_ONCE, startOne);
    // Each daemon reads the (empty) token file right after its start-up line; let the last ones get there.
    await Promise.all(sidecars.map((s) => waitFor(() => s.lines().some((line) => line.msg?.includes(NO_TOKEN_YET) === true), 5_000, 'the empty token read').catch(() => undefined)));
    progress(`fleet N=${n}: all started after ${fmt(Math.max(...started) / 1000, 1)} s; publishing the token`);

    // At most 20 windows past 30 s: enough for any fleet below saturation, and a bound on one that never gets there.
    const timeoutMs = RACE_BASE_MS + RACE_WINDOWS * windowMs;
    const held = jwtFiles.map((file) => waitForFileContent(file, timeoutMs));
    const gateAt = performance.now();
    const wallGate = Date.now();
    publishToken(fixture.tokenFile);
    const heldAt = await Promise.all(held.map((p) => p.then((at) => at - gateAt, () => undefined)));
    const wallAllHeld = Date.now();
    const got = heldAt.filter((at): at is number => at !== undefined);
    // Steady state: skip the first refreshes (they follow the start-up's order), then watch whole lifetimes.
    const settleMs = steadyLifetimes > 0 ? REFRESH_SETTLE * lifetimeSec * 1000 : 0;
    const steadyMs = steadyLifetimes * lifetimeSec * 1000;
    await sleep(settleMs + steadyMs);
    const entries = (await api.log()).entries;
    const startupEntries = entries.filter((entry) => entry.atMs >= wallGate && entry.atMs < wallAllHeld);
    const steadyEntries = entries.filter((entry) => entry.atMs >= wallAllHeld + settleMs);
    const steady = phase(steadyEntries, windowMs);
    return {
      n,
      held: got.length,
      firstStartedSec: Math.min(...started) / 1000,
      lastStartedSec: Math.max(...started) / 1000,
      allHeldSec: got.length === n ? Math.max(...got) / 1000 : undefined,
      timeoutSec: timeoutMs / 1000,
      medianHeldSec: median(got) / 1000,
      boundWindows: Math.ceil(n / LIMIT) - 1,
      startup: phase(startupEntries, windowMs),
      steady: { ...steady, seconds: steadyMs / 1000, perWindow: steadyMs > 0 ? steady.ok / (steadyMs / windowMs) : Number.NaN },
    };
  } finally {
    await Promise.all(sidecars.map((s) => s.stop('SIGTERM', 3_000)));
    await api.close();
    fixture.remove();
  }
}

function rowsFor(run: FleetRun, windowSec: number, demandPerDaemonPerWindow: number): Row[] {
  const label = `N=${run.n}`;
  const windows = (sec: number): string => fmt(sec / windowSec, 1);
  const held = run.allHeldSec === undefined
    ? `only ${run.held}/${run.n} within ${fmt(run.timeoutSec)} s = ${windows(run.timeoutSec)} windows`
    : `${fmt(run.allHeldSec, 1)} s = ${windows(run.allHeldSec)} windows`;
  const rows = [
    row(`${label}: processes started ${STARTING_AT_ONCE} at a time: first–last "started"`, `${fmt(run.firstStartedSec, 1)}–${fmt(run.lastStartedSec, 1)} s`, '', 'start-up spread on 2 shared cores'),
    row(`${label}: token appears → every daemon holds a JWT`, held, `bound ${run.boundWindows} windows = ${fmt(run.boundWindows * windowSec, 1)} s`,
      `median daemon ${fmt(run.medianHeldSec, 1)} s`),
    row(`${label}: start-up requests / 429s`, `${run.startup.requests} / ${run.startup.rateLimited}`, `${run.n} exchanges needed`,
      `${fmt(run.startup.requests / run.n, 1)} requests per daemon`),
    row(`${label}: most requests in any window (start-up)`, `${run.startup.maxRequestsInWindow} (${run.startup.maxOkInWindow} succeeded)`, `limit ${LIMIT}`, ''),
  ];
  if (run.steady.seconds > 0) {
    rows.push(row(`${label}: steady state, ${fmt(run.steady.seconds, 0)} s from ${REFRESH_SETTLE} lifetime after start-up`,
      `${fmt(run.steady.perWindow, 2)} exchanges/window; ${run.steady.requests} requests, ${run.steady.rateLimited} 429s`,
      `demand model ${fmt(run.n * demandPerDaemonPerWindow, 2)}/window`, `max ${run.steady.maxRequestsInWindow} requests in a window`));
  }
  return rows;
}

export async function fleet(profile: Profile['fleet']): Promise<SectionResult> {
  const windowSec = REAL_WINDOW_SEC / profile.scale;
  const lifetimeSec = REAL_LIFETIME_SEC / profile.scale;
  const scaledPerLifetime = modelExchangesPerLifetime(lifetimeSec * 1000, (REAL_MIN_TTL_SEC * 1000) / profile.scale);
  const realPerLifetime = modelExchangesPerLifetime(REAL_LIFETIME_SEC * 1000, REAL_MIN_TTL_SEC * 1000);
  const demandScaled = (scaledPerLifetime * windowSec) / lifetimeSec;
  const demandReal = (realPerLifetime * REAL_WINDOW_SEC) / REAL_LIFETIME_SEC;
  const saturation = LIMIT / demandReal;
  const runs: FleetRun[] = [];
  const largest = Math.max(...profile.sizes);
  // Steady state is watched for the largest fleet only: the smaller ones are far below saturation (see the model).
  for (const n of profile.sizes) runs.push(await runFleet(n, profile, n === largest ? profile.steadyLifetimes : 0));
  const rows = runs.flatMap((run) => rowsFor(run, windowSec, demandScaled));
  rows.push(row('one token\'s budget saturates at (steady state, production scale)', `N ≈ ${fmt(Math.floor(saturation))} daemons`,
    `${LIMIT} per ${REAL_WINDOW_SEC} s`, `each needs ${fmt(demandReal, 3)} exchanges/window`));
  const notes = [
    `Time ×1/${profile.scale}: JWT ${lifetimeSec} s, window ${windowSec * 1000} ms (the fake's limit ${LIMIT} per window, counting rejected requests too), daemons with --rate-limit ${LIMIT}/${windowSec * 1000}ms --min-ttl ${(REAL_MIN_TTL_SEC * 1000) / profile.scale}ms; every daemon its own process.`,
    `The gate: one start costs about half a second of CPU or more here (see the start-up profile), so N daemons take seconds to minutes to start on 2 shared cores (first row of each N; ${STARTING_AT_ONCE} at a time, which thrashes less than all at once), hundreds of scaled windows, which would turn the race for the budget into a race for the CPU. So every daemon starts with an empty token file and waits (as with a Secret created after the pods); once all have started, the token is renamed into place and all go for it at once (chokidar sees the rename). The race is timed from there and given ${RACE_BASE_MS / 1000} s + ${RACE_WINDOWS} windows.`,
    `Bound: N daemons need N exchanges, at ${LIMIT} per window the last one can succeed no sooner than ceil(N/${LIMIT}) − 1 windows after the first.`,
    `Steady-state demand: each daemon refreshes at a random ${windowText()} of the lifetime (the default window), ${fmt(realPerLifetime, 3)} exchanges per lifetime (${fmt(scaledPerLifetime, 3)} at this scale), i.e. ${fmt(demandReal, 4)} per ${REAL_WINDOW_SEC} s window at 900 s/60 s; ${LIMIT} per window is used up at N = ${LIMIT} / ${fmt(demandReal, 4)} ≈ ${fmt(saturation, 0)} daemons per API token (${fmt(LIMIT * REFRESH_WINDOW[0] * REAL_LIFETIME_SEC / REAL_WINDOW_SEC, 0)} if all refreshed at ${String(REFRESH_WINDOW[0])}). Beyond it 429s never stop, and since rejected requests count against the budget too, retries eat it further.`,
    `Scaled time slows the start-up race: the daemon's backoff (1 s doubling to 60 s) and the fake's Retry-After/RateLimit-Reset (whole seconds, at least 1) are not scaled, so here one 429 costs at least 1 s = ${fmt(1 / windowSec, 2)} windows, and a herd's own spread (token-file watch latency, N processes on 2 cores) is a large part of a window; at 1/100 start-up takes many more windows than the bound, while at production scale (\`--fleet-scale 1\`) a fleet lands within about the bound: see the findings.`,
  ];
  return { name: 'fleet', title: 'Fleet, one token', rows, notes, data: { runs, model: { scaledPerLifetime, realPerLifetime, demandScaled, demandReal, saturation } } };
}
