// 1. GET /v1/token: throughput and p50/p99 latency at 1, 10 and 50 connections, ek-sidecar against a bare node:http
// server serving the same bytes behind the same header check. Rounds alternate which server goes first; the
// verdicts use the median of per-round ratios.
import { baselines, startBareServer } from '../lib/baselines.ts';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { fmt, makeFixture } from '../lib/fixture.ts';
import { runLoad, type LoadResult } from '../lib/load.ts';
import type { Profile } from '../lib/options.ts';
import { progress } from '../lib/progress.ts';
import { row, type Row, type SectionResult } from '../lib/report.ts';
import { startSidecar } from '../lib/sidecar.ts';
import { median, pairedRatio, times } from '../lib/stats.ts';
import { waitForFileContent } from '../lib/wait.ts';

const HEADERS = { 'ek-sidecar-request': 'true' };
const PATH = '/v1/token';
const TARGET_CONNECTIONS = 50;

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string>;
}

async function get(port: number): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${PATH}`, { headers: HEADERS });
  const headers: Record<string, string> = {};
  for (const name of ['content-type', 'content-length', 'cache-control']) headers[name] = response.headers.get(name) ?? '';
  return { status: response.status, body: await response.text(), headers };
}

/** The two servers must answer byte for byte alike, or the comparison means nothing. */
function assertSameAnswer(sidecar: Answer, bare: Answer): void {
  if (sidecar.status !== 200 || bare.status !== 200) throw new Error(`GET ${PATH}: sidecar ${sidecar.status}, bare ${bare.status}`);
  if (sidecar.body !== bare.body) throw new Error('the bare server does not serve the same bytes as ek-sidecar');
  if (JSON.stringify(sidecar.headers) !== JSON.stringify(bare.headers)) {
    throw new Error(`headers differ: sidecar ${JSON.stringify(sidecar.headers)}, bare ${JSON.stringify(bare.headers)}`);
  }
}

function rowsFor(connections: number, sidecar: readonly LoadResult[], bare: readonly LoadResult[]): Row[] {
  const pick = (runs: readonly LoadResult[], key: 'rps' | 'p50Ms' | 'p99Ms'): number[] => runs.map((run) => run[key]);
  const targeted = connections === TARGET_CONNECTIONS;
  const rps = pairedRatio(pick(sidecar, 'rps'), pick(bare, 'rps'));
  const p50 = pairedRatio(pick(sidecar, 'p50Ms'), pick(bare, 'p50Ms'));
  const p99 = pairedRatio(pick(sidecar, 'p99Ms'), pick(bare, 'p99Ms'));
  const label = `${connections} conn`;
  return [
    row(`${label}: throughput`, `${fmt(median(pick(sidecar, 'rps')))} req/s`, `${fmt(median(pick(bare, 'rps')))} req/s`, times(rps),
      targeted ? '≥ 0.90×' : '', targeted ? rps >= 0.9 : undefined),
    row(`${label}: p50 latency`, `${fmt(median(pick(sidecar, 'p50Ms')), 3)} ms`, `${fmt(median(pick(bare, 'p50Ms')), 3)} ms`, times(p50)),
    row(`${label}: p99 latency`, `${fmt(median(pick(sidecar, 'p99Ms')), 3)} ms`, `${fmt(median(pick(bare, 'p99Ms')), 3)} ms`, times(p99),
      targeted ? '≤ 1.20×' : '', targeted ? p99 <= 1.2 : undefined),
  ];
}

export async function tokenEndpoint(profile: Profile['token']): Promise<SectionResult> {
  baselines();
  const fixture = makeFixture('token');
  const api = await startFakeApiProcess({ lifetimeSec: 900 });
  const jwtFile = fixture.jwtFile();
  const sidecar = startSidecar({ apiUrl: api.url, tokenFile: fixture.tokenFile, jwtFile });
  try {
    const { token: sidecarPort } = await sidecar.ports();
    await waitForFileContent(jwtFile, 15_000);
    const bare = await startBareServer(jwtFile);
    progress('token: both servers up, same answer; warming up');
    try {
      assertSameAnswer(await get(sidecarPort), await get(bare.port));
      const servers = { sidecar: sidecarPort, bare: bare.port };
      const load = (port: number, connections: number, seconds: number): Promise<LoadResult> =>
        runLoad({ port, connections, seconds, headers: HEADERS, path: PATH });
      // Warm both up (JIT, sockets) before anything counts.
      await load(servers.sidecar, 10, profile.warmupSec);
      await load(servers.bare, 10, profile.warmupSec);

      const rows: Row[] = [];
      const runs: Record<string, { sidecar: LoadResult[]; bare: LoadResult[] }> = {};
      let flip = 0;
      for (const connections of profile.connections) {
        const level = { sidecar: [] as LoadResult[], bare: [] as LoadResult[] };
        for (let round = 0; round < profile.rounds; round++) {
          const order = flip++ % 2 === 0 ? (['sidecar', 'bare'] as const) : (['bare', 'sidecar'] as const);
          for (const which of order) level[which].push(await load(servers[which], connections, profile.roundSec));
        }
        runs[String(connections)] = level;
        progress(`token: ${connections} connection(s) done`);
        rows.push(...rowsFor(connections, level.sidecar, level.bare));
      }
      const all = Object.values(runs).flatMap((level) => [...level.sidecar, ...level.bare]);
      const failures = all.reduce((sum, run) => sum + run.non2xx + run.errors, 0);
      const notes = [
        `${profile.rounds} alternated round(s) of ${profile.roundSec} s per server and connection count, after a ${profile.warmupSec} s warm-up of each; ratios are medians of per-round ratios.`,
        'Both servers answer the same JWT with the same Content-Type, Content-Length and Cache-Control (checked before the rounds); autocannon runs in the bench process, each server in its own.',
        ...(failures > 0 ? [`${failures} responses were not 2xx or failed: see results.json.`] : []),
      ];
      return { name: 'token', title: 'Token endpoint', rows, notes, data: { runs } };
    } finally {
      await bare.child.stop();
    }
  } finally {
    await sidecar.stop();
    await api.close();
    fixture.remove();
  }
}
