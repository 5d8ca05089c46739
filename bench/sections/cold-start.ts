// 2. Cold start: spawn → JWT file written (seen with content), against the fake API on loopback, beside a bare
// `node` script that does one POST and one file write. ek-sidecar is started as the image starts it (from the
// startup snapshot, with the Dockerfile's node options and ENV); the other ways of starting it are what-ifs. Variants
// alternate run by run. The JWT files go to tmpfs where there is one, as in a pod (the chart's emptyDir is
// medium: Memory); a what-if repeats the image's start and the baseline on this machine's disk.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
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

/** A directory on tmpfs (/dev/shm) for the JWT files, like the pod's in-memory emptyDir; undefined without one. */
function memoryDir(): string | undefined {
  try {
    return statSync('/dev/shm').isDirectory() ? mkdtempSync('/dev/shm/ek-bench-cold-') : undefined;
  } catch {
    return undefined;
  }
}

async function once(variant: Variant, apiUrl: string, fixture: Fixture, index: number, root: string): Promise<Run> {
  const dir = join(root, `${variant}-${String(index)}`);
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
  const memory = memoryDir();
  const root = memory ?? fixture.dir;
  const api = await startFakeApiProcess({ lifetimeSec: 900 });
  try {
    // Unmeasured: fill the page cache for every variant (a smoke run of one run per variant only checks the wiring).
    if (profile.runs > 1) for (const variant of list) await once(variant, api.url, fixture, -1, root);
    const runs = Object.fromEntries(list.map((variant) => [variant, [] as Run[]])) as Record<Variant, Run[]>;
    const onDisk: Record<'image' | 'bare', Run[]> = { image: [], bare: [] };
    for (let i = 0; i < profile.runs; i++) {
      // Rotate the order so that no variant always follows the same one.
      for (let k = 0; k < list.length; k++) {
        const variant = list[(i + k) % list.length] ?? 'bare';
        runs[variant].push(await once(variant, api.url, fixture, i, root));
      }
      if (memory !== undefined) {
        for (const variant of i % 2 === 0 ? ['image', 'bare'] as const : ['bare', 'image'] as const) {
          onDisk[variant].push(await once(variant, api.url, fixture, i, fixture.dir));
        }
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
      ...(memory === undefined ? [] : [(() => {
        const r = ratios(onDisk.image, onDisk.bare);
        return row('…what-if: the image\'s start with the JWT file on this machine\'s disk, not tmpfs', `${fmt(median(onDisk.image.map((run) => run.toFileMs)))} ms`,
          `${fmt(median(onDisk.bare.map((run) => run.toFileMs)))} ms`, `${times(r.median)} (middle half ${r.low.toFixed(2)}–${r.high.toFixed(2)})`);
      })()]),
      row('…then listeners up and the token file followed ("started" line), image', `+${fmt(median(runs.image.map((run) => run.fileToStartedMs ?? Number.NaN)))} ms`, '',
        'after the JWT file, not before it'),
    ];
    const notes = [
      `Median of ${String(profile.runs)} runs per variant, alternated, after one unmeasured run of each (not in a smoke run); each run starts in an empty directory (nothing to reuse). The spread is the middle half (25th–75th percentile) of the per-round ratios to the bare script run in the same round.`,
      memory === undefined
        ? 'The JWT files are written under the system temporary directory (no /dev/shm here).'
        : 'The JWT files are written on tmpfs (/dev/shm), as in a pod, whose JWT volume is an emptyDir of medium Memory: fsync costs nothing there. The disk what-if repeats the image\'s start and the baseline in the system temporary directory: the sidecar fsyncs the state file (before it sends, so a crash cannot overspend the budget) and the JWT file, the baseline fsyncs nothing.',
      'The baseline is one `node` process: a node:http POST to the same fake API and one file write (temp file renamed into place), then exit. Both are timed from spawn until the JWT file is seen with content (inotify on the directory).',
      `The image's start is read from the Dockerfile's runtime stage (${imageStart().described}), /app being this checkout. The snapshot is the one \`npm run build\` made with this Node.js (the image builds its own with its own).`,
      'The daemon writes its first JWT before it starts its listeners and follows the token file (src/commands/run.ts): the last row is what comes after the file.',
    ];
    return { name: 'cold-start', title: 'Cold start', rows, notes, data: { runs, ratios: Object.fromEntries(list.filter((v): v is Launch => v !== 'bare').map((v) => [v, ratios(runs[v], runs.bare)])) } };
  } finally {
    await api.close();
    fixture.remove();
    if (memory !== undefined) rmSync(memory, { recursive: true, force: true });
  }
}
