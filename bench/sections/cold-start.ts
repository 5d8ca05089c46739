// 2. Cold start: spawn → JWT file written (seen with content), against the fake API on loopback, beside a bare
// `node` script that does one POST and one file write. Variants alternate run by run. A third variant, ek-sidecar
// with Node's on-disk compile cache (NODE_COMPILE_CACHE, warmed once), shows what caching compiled code would buy.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { baselines } from '../lib/baselines.ts';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { fmt, makeFixture, type Fixture } from '../lib/fixture.ts';
import type { Profile } from '../lib/options.ts';
import { makeTempDir, spawnNode } from '../lib/processes.ts';
import { row, type SectionResult } from '../lib/report.ts';
import { MSG_STARTED, startSidecar } from '../lib/sidecar.ts';
import { median, pairedRatio, times } from '../lib/stats.ts';
import { waitForFileContent } from '../lib/wait.ts';

const VARIANTS = ['sidecar', 'sidecar+compile-cache', 'bare'] as const;
type Variant = (typeof VARIANTS)[number];

interface Run {
  /** spawn → JWT file with content. */
  readonly toFileMs: number;
  /** spawn → the daemon's start-up log line (listeners up), for ek-sidecar only. */
  readonly toStartedMs: number | undefined;
}

async function once(variant: Variant, apiUrl: string, fixture: Fixture, index: number, cacheDir: string): Promise<Run> {
  const dir = join(fixture.dir, `${variant}-${index}`);
  mkdirSync(dir);
  const jwtFile = join(dir, 'jwt');
  const seen = waitForFileContent(jwtFile, 20_000);
  if (variant === 'bare') {
    const t0 = performance.now();
    const child = spawnNode([baselines().exchange, apiUrl, fixture.tokenFile, jwtFile], { output: 'ignore' });
    const atMs = await seen;
    const exit = await child.exited;
    if (exit.code !== 0) throw new Error(`bare exchange exited ${String(exit.code)}`);
    return { toFileMs: atMs - t0, toStartedMs: undefined };
  }
  const env = variant === 'sidecar+compile-cache' ? { NODE_COMPILE_CACHE: cacheDir } : undefined;
  const sidecar = startSidecar({ apiUrl, tokenFile: fixture.tokenFile, jwtFile, ...(env === undefined ? {} : { env }) });
  try {
    const atMs = await seen;
    const started = sidecar.lines().find((line) => line.msg === MSG_STARTED) ?? (await sidecar.waitForMsg(MSG_STARTED));
    return { toFileMs: atMs - sidecar.spawnedAtMs, toStartedMs: started.seenAtMs - sidecar.spawnedAtMs };
  } finally {
    await sidecar.stop();
  }
}

export async function coldStart(profile: Profile['coldStart']): Promise<SectionResult> {
  baselines();
  const fixture = makeFixture('cold');
  const cacheDir = makeTempDir('compile-cache');
  const api = await startFakeApiProcess({ lifetimeSec: 900 });
  try {
    // Unmeasured: fill the page cache for every variant and the compile cache for its variant (a smoke run of one
    // run per variant only checks the wiring and skips this).
    if (profile.runs > 1) for (const variant of VARIANTS) await once(variant, api.url, fixture, -1, cacheDir);
    const runs: Record<Variant, Run[]> = { sidecar: [], 'sidecar+compile-cache': [], bare: [] };
    for (let i = 0; i < profile.runs; i++) {
      // Rotate the order so that no variant always follows the same one.
      for (let k = 0; k < VARIANTS.length; k++) {
        const variant = VARIANTS[(i + k) % VARIANTS.length] ?? 'bare';
        runs[variant].push(await once(variant, api.url, fixture, i, cacheDir));
      }
    }
    const toFile = (variant: Variant): number[] => runs[variant].map((run) => run.toFileMs);
    const ratio = pairedRatio(toFile('sidecar'), toFile('bare'));
    const cachedRatio = pairedRatio(toFile('sidecar+compile-cache'), toFile('bare'));
    const startedMs = median(runs.sidecar.map((run) => run.toStartedMs ?? Number.NaN));
    const sidecarMs = median(toFile('sidecar'));
    const bareMs = median(toFile('bare'));
    const rows = [
      row('spawn → JWT file written', `${fmt(sidecarMs)} ms`, `${fmt(bareMs)} ms`, times(ratio), '≤ 1.50×', ratio <= 1.5),
      row('…of which spawn → "started" (listeners up)', `${fmt(startedMs)} ms`, '', `${fmt((100 * startedMs) / sidecarMs)} % of it`),
      row('what-if: with NODE_COMPILE_CACHE (warm)', `${fmt(median(toFile('sidecar+compile-cache')))} ms`, `${fmt(bareMs)} ms`, times(cachedRatio)),
    ];
    const notes = [
      `Median of ${profile.runs} runs per variant, alternated, after one unmeasured run of each (not in a smoke run); each run starts in an empty directory (nothing to reuse).`,
      'The baseline is one `node` process: a node:http POST to the same fake API and one file write (temp file renamed into place), then exit. Both are timed from spawn until the JWT file is seen with content (inotify on the directory).',
    ];
    return { name: 'cold-start', title: 'Cold start', rows, notes, data: { runs } };
  } finally {
    await api.close();
    fixture.remove();
  }
}
