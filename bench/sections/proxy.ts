// 2. The API proxy: the vendor SDK's single-secret read (GET …/secret/{name}?environmentId=…&resolve=true with the
// JWT it got from the drop-in, as with useTokenExchange) through ek-sidecar's proxy (--proxy verify), beside the
// same read sent straight to the fake API, at 1, 10 and 50 connections. One fake API process answers both, so the
// difference is the proxy's hop: a second loopback connection, the credential check, the header copy. Rounds
// alternate which path goes first; verdicts use the median of per-round ratios (throughput) and differences (p99).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { BENCH_TOKEN, fmt, makeFixture } from '../lib/fixture.ts';
import { runLoad, type LoadResult } from '../lib/load.ts';
import type { LoadProfile } from '../lib/options.ts';
import { progress } from '../lib/progress.ts';
import { row, type Row, type SectionResult } from '../lib/report.ts';
import { startSidecar } from '../lib/sidecar.ts';
import { median, pairedRatio, round, times } from '../lib/stats.ts';
import { waitFor } from '../lib/wait.ts';

const TARGET_CONNECTIONS = 50;
const SECRET = { workspace: 'bench', project: 'api', environment: 'prod', name: 'DATABASE_URL', value: 'postgres://bench:bench@db.bench.internal:5432/bench' };
const PATH = `/v1/workspace/${SECRET.workspace}/project/${SECRET.project}/secret/${SECRET.name}?environmentId=${SECRET.environment}&resolve=true`;

type Way = 'proxied' | 'direct';

/** The JWT the SDK would hold: the drop-in's answer (once the sidecar serves one), the JWT the proxy forwards with. */
function dropInJwt(port: number): Promise<string> {
  return waitFor(async () => {
    const response = await fetch(`http://127.0.0.1:${String(port)}/v1/auth/exchange`, { method: 'POST', headers: { authorization: `Bearer ${BENCH_TOKEN}` } });
    return response.status === 200 && ((await response.json()) as { accessToken: string }).accessToken;
  }, 15_000, 'the drop-in to answer');
}

/** Both ways must answer the same secret, or the comparison means nothing. */
async function assertSameAnswer(urls: Record<Way, string>, headers: Record<string, string>): Promise<void> {
  const [proxied, direct] = await Promise.all([fetch(urls.proxied + PATH, { headers }), fetch(urls.direct + PATH, { headers })]);
  const [p, d] = [await proxied.text(), await direct.text()];
  if (proxied.status !== 200 || direct.status !== 200) throw new Error(`secret read: proxied ${String(proxied.status)}, direct ${String(direct.status)}`);
  if (p !== d || !p.includes(SECRET.value)) throw new Error('the proxied read does not answer what the direct read does');
}

/** Median and range of per-round values, e.g. "0.82× (0.78–0.85)". */
function spread(values: readonly number[], format: (value: number) => string): string {
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

function rowsFor(connections: number, level: Record<Way, LoadResult[]>): Row[] {
  const pick = (way: Way, key: 'rps' | 'p50Ms' | 'p99Ms'): number[] => level[way].map((run) => run[key]);
  const targeted = connections === TARGET_CONNECTIONS;
  const ratios = pick('proxied', 'rps').map((rps, i) => rps / (pick('direct', 'rps')[i] ?? Number.NaN));
  const rps = pairedRatio(pick('proxied', 'rps'), pick('direct', 'rps'));
  const p99Over = pick('proxied', 'p99Ms').map((p99, i) => p99 - (pick('direct', 'p99Ms')[i] ?? Number.NaN));
  const p50Over = pick('proxied', 'p50Ms').map((p50, i) => p50 - (pick('direct', 'p50Ms')[i] ?? Number.NaN));
  const ms = (value: number): string => `${value >= 0 ? '+' : '−'}${fmt(Math.abs(value), 2)} ms`;
  const label = `${connections} conn`;
  return [
    row(`${label}: throughput`, `${fmt(median(pick('proxied', 'rps')))} req/s`, `${fmt(median(pick('direct', 'rps')))} req/s`, spread(ratios, times),
      targeted ? '≥ 0.80×' : '', targeted ? rps >= 0.8 : undefined),
    row(`${label}: p50 latency`, `${fmt(median(pick('proxied', 'p50Ms')), 3)} ms`, `${fmt(median(pick('direct', 'p50Ms')), 3)} ms`, spread(p50Over, ms)),
    row(`${label}: p99 latency`, `${fmt(median(pick('proxied', 'p99Ms')), 3)} ms`, `${fmt(median(pick('direct', 'p99Ms')), 3)} ms`, spread(p99Over, ms),
      targeted ? '≤ +1 ms' : '', targeted ? median(p99Over) <= 1 : undefined),
  ];
}

export async function proxy(profile: LoadProfile): Promise<SectionResult> {
  const fixture = makeFixture('proxy');
  const secretsFile = join(fixture.dir, 'secrets.json');
  writeFileSync(secretsFile, JSON.stringify({ [SECRET.workspace]: { [SECRET.project]: { [SECRET.environment]: { [SECRET.name]: SECRET.value } } } }));
  const api = await startFakeApiProcess({ lifetimeSec: 900, secretsFile });
  const sidecar = startSidecar({ apiUrl: api.url, tokenFile: fixture.tokenFile, jwtFile: fixture.jwtFile() });
  try {
    const { token: port } = await sidecar.ports();
    const headers = { authorization: `Bearer ${await dropInJwt(port)}`, 'content-type': 'application/json' };
    const urls: Record<Way, string> = { proxied: `http://127.0.0.1:${String(port)}`, direct: api.url };
    await assertSameAnswer(urls, headers);
    const ports: Record<Way, number> = { proxied: port, direct: Number(new URL(api.url).port) };
    const load = (way: Way, connections: number, seconds: number): Promise<LoadResult> => runLoad({ port: ports[way], connections, seconds, headers, path: PATH });
    progress('proxy: both ways answer the same secret; warming up');
    await load('proxied', 10, profile.warmupSec);
    await load('direct', 10, profile.warmupSec);

    const rows: Row[] = [];
    const runs: Record<string, Record<Way, LoadResult[]>> = {};
    let flip = 0;
    for (const connections of profile.connections) {
      const level: Record<Way, LoadResult[]> = { proxied: [], direct: [] };
      for (let i = 0; i < profile.rounds; i++) {
        const order: readonly Way[] = flip++ % 2 === 0 ? ['proxied', 'direct'] : ['direct', 'proxied'];
        for (const way of order) level[way].push(await load(way, connections, profile.roundSec));
      }
      runs[String(connections)] = level;
      progress(`proxy: ${String(connections)} connection(s) done`);
      rows.push(...rowsFor(connections, level));
    }
    const all = Object.values(runs).flatMap((level) => [...level.proxied, ...level.direct]);
    const failures = all.reduce((sum, run) => sum + run.non2xx + run.errors, 0);
    const upstreamReads = (await api.log()).entries.filter((entry) => entry.route === 'secret').length;
    const notes = [
      `${String(profile.rounds)} alternated round(s) of ${String(profile.roundSec)} s per way and connection count, after a ${String(profile.warmupSec)} s warm-up of each; the ratio column is the median of per-round ratios (throughput) or differences (latency), with their range.`,
      'Both ways read the same secret with the same JWT (the drop-in\'s answer, as the SDK with useTokenExchange holds it) from one fake API process; autocannon runs in the bench process, the sidecar and the fake each in their own. On a machine with fewer cores than those three processes, the proxied way also competes for CPU with the fake API it forwards to.',
      `${String(upstreamReads)} secret reads reached the fake API in all, each carrying the sidecar's JWT.`,
      ...(failures > 0 ? [`${String(failures)} responses were not 2xx or failed: see results.json.`] : []),
    ];
    return { name: 'proxy', title: 'API proxy', rows, notes, data: { runs, medianRps: Object.fromEntries(Object.entries(runs).map(([c, l]) => [c, round(median(l.proxied.map((r) => r.rps)))])) } };
  } finally {
    await sidecar.stop();
    await api.close();
    fixture.remove();
  }
}
