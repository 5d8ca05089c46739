// 2. Cold start: spawn → JWT file written (seen with content), against the fake API on loopback, beside a bare
// `node` script that does one POST and one file write. ek-sidecar is started as the image starts it (from the
// startup snapshot, with the Dockerfile's node options and ENV); the other ways of starting it are what-ifs. Variants
// alternate run by run.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { baselines } from '../lib/baselines.ts';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { fmt, makeFixture, type Fixture } from '../lib/fixture.ts';
import { imageAddsSettings, imageStart } from '../lib/image.ts';
import type { Profile } from '../lib/options.ts';
import { spawnNode } from '../lib/processes.ts';
import { row, type Row, type SectionResult } from '../lib/report.ts';
import { LAUNCHES, MSG_STARTED, startSidecar, type Launch } from '../lib/sidecar.ts';
import { median, percentile, times } from '../lib/stats.ts';
import { waitForFileContent } from '../lib/wait.ts';

type Variant = Launch | 'bare';

interface Run {
  /** spawn → JWT file with content. */
  readonly toFileMs: number;
  /** JWT file → the daemon's start-up line (listeners up and the token file followed), for ek-sidecar only. */
  readonly fileToStartedMs: number | undefined;
}

/** The image's start, and the snapshot alone only when the image adds settings of its own. */
function variants(): Variant[] {
  return ['image', ...(imageAddsSettings() ? ['snapshot' as const] : []), 'launcher', 'plain', 'bare'];
}

async function once(variant: Variant, apiUrl: string, fixture: Fixture, index: number): Promise<Run> {
  const dir = join(fixture.dir, `${variant}-${String(index)}`);
  mkdirSync(dir);
  const jwtFile = join(dir, 'jwt');
  const seen = waitForFileContent(jwtFile, 20_000);
  if (variant === 'bare') {
    const t0 = performance.now();
    const child = spawnNode([baselines().exchange, apiUrl, fixture.tokenFile, jwtFile], { output: 'ignore' });
    const atMs = await seen;
    const exit = await child.exited;
    if (exit.code !== 0) throw new Error(`bare exchange exited ${String(exit.code)}`);
    return { toFileMs: atMs - t0, fileToStartedMs: undefined };
  }
  const sidecar = startSidecar({ apiUrl, tokenFile: fixture.tokenFile, jwtFile, launch: variant });
  try {
    const atMs = await seen;
    const started = sidecar.lines().find((line) => line.msg === MSG_STARTED) ?? (await sidecar.waitForMsg(MSG_STARTED));
    return { toFileMs: atMs - sidecar.spawnedAtMs, fileToStartedMs: started.seenAtMs - atMs };
  } finally {
    await sidecar.stop();
  }
}

/** Per-round ratios to the bare script of the same round: their median, and the middle half as the spread. */
function ratios(runs: readonly Run[], bare: readonly Run[]): { median: number; low: number; high: number; all: number[] } {
  const all = runs.map((run, i) => run.toFileMs / (bare[i]?.toFileMs ?? Number.NaN));
  return { median: median(all), low: percentile(all, 25), high: percentile(all, 75), all };
}

export async function coldStart(profile: Profile['coldStart']): Promise<SectionResult> {
  baselines();
  const list = variants();
  const fixture = makeFixture('cold');
  const api = await startFakeApiProcess({ lifetimeSec: 900 });
  try {
    // Unmeasured: fill the page cache for every variant (a smoke run of one run per variant only checks the wiring).
    if (profile.runs > 1) for (const variant of list) await once(variant, api.url, fixture, -1);
    const runs = Object.fromEntries(list.map((variant) => [variant, [] as Run[]])) as Record<Variant, Run[]>;
    for (let i = 0; i < profile.runs; i++) {
      // Rotate the order so that no variant always follows the same one.
      for (let k = 0; k < list.length; k++) {
        const variant = list[(i + k) % list.length] ?? 'bare';
        runs[variant].push(await once(variant, api.url, fixture, i));
      }
    }
    const ms = (variant: Variant): number => median(runs[variant].map((run) => run.toFileMs));
    const rowFor = (variant: Launch, metric: string, target?: string): Row => {
      const r = ratios(runs[variant], runs.bare);
      const spread = `${times(r.median)} (middle half ${r.low.toFixed(2)}–${r.high.toFixed(2)})`;
      return target === undefined
        ? row(metric, `${fmt(ms(variant))} ms`, `${fmt(ms('bare'))} ms`, spread)
        : row(metric, `${fmt(ms(variant))} ms`, `${fmt(ms('bare'))} ms`, spread, target, r.median <= 1.5);
    };
    const rows = [
      rowFor('image', 'spawn → JWT file written: the image\'s start, from the startup snapshot', '≤ 1.50×'),
      ...(list.includes('snapshot') ? [rowFor('snapshot', `…what-if: ${LAUNCHES.snapshot}`)] : []),
      rowFor('launcher', `…what-if: ${LAUNCHES.launcher}`),
      rowFor('plain', `…what-if: ${LAUNCHES.plain}`),
      row('…then listeners up and the token file followed ("started" line), image', `+${fmt(median(runs.image.map((run) => run.fileToStartedMs ?? Number.NaN)))} ms`, '',
        'after the JWT file, not before it'),
    ];
    const notes = [
      `Median of ${String(profile.runs)} runs per variant, alternated, after one unmeasured run of each (not in a smoke run); each run starts in an empty directory (nothing to reuse). The spread is the middle half (25th–75th percentile) of the per-round ratios to the bare script run in the same round.`,
      'The baseline is one `node` process: a node:http POST to the same fake API and one file write (temp file renamed into place), then exit. Both are timed from spawn until the JWT file is seen with content (inotify on the directory).',
      `The image's start is read from the Dockerfile's runtime stage (${imageStart().described}), /app being this checkout. The snapshot is the one \`npm run build\` made with this Node.js (the image builds its own with its own).`,
      'The daemon writes its first JWT before it starts its listeners and follows the token file (src/commands/run.ts): the last row is what comes after the file.',
    ];
    return { name: 'cold-start', title: 'Cold start', rows, notes, data: { runs, ratios: Object.fromEntries(list.filter((v): v is Launch => v !== 'bare').map((v) => [v, ratios(runs[v], runs.bare)])) } };
  } finally {
    await api.close();
    fixture.remove();
  }
}
