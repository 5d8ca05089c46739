// 3. Idle cost: resident memory and CPU time over a steady stretch (after start-up has settled), ek-sidecar holding
// a fresh JWT, started as the image starts it, beside a bare node:http server, all measured at the same time.
// Alongside, to explain the figures: ek-sidecar started the other ways (the plain bundle; the snapshot without the
// image's other settings), and bare `node` processes running only the periodic work the sidecar's libraries start
// (prom-client's event-loop-delay monitor, node:http's connection check).
import { startBareServer } from '../lib/baselines.ts';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { fmt, makeFixture } from '../lib/fixture.ts';
import { imageAddsSettings, imageStart } from '../lib/image.ts';
import type { Profile } from '../lib/options.ts';
import { mb, rssBytes, sampleCpu, type CpuSample } from '../lib/proc.ts';
import { spawnNode, type Child } from '../lib/processes.ts';
import { row, type SectionResult } from '../lib/report.ts';
import { LAUNCHES, MSG_EXCHANGED, startSidecar, type Launch, type Sidecar } from '../lib/sidecar.ts';
import { median, percentile, times } from '../lib/stats.ts';
import { sleep, waitForFileContent } from '../lib/wait.ts';

/** Bare `node` doing one periodic thing and nothing else. */
const PROBES = {
  /** What prom-client's collectDefaultMetrics() starts: perf_hooks' monitor at its default 10 ms resolution. */
  eventLoopMonitor: "require('node:perf_hooks').monitorEventLoopDelay({ resolution: 10 }).enable(); setInterval(() => {}, 1e9);",
  /** What node:http's connectionsCheckingInterval: 1000 starts (ek-sidecar sets it to enforce the 5 s header deadline). */
  oneSecondTimer: 'setInterval(() => {}, 1000);',
} as const;

interface Watched {
  readonly label: string;
  readonly pid: number;
  readonly rss: number[];
  first?: CpuSample;
  last?: CpuSample;
}

interface Figures {
  readonly rssMedianMb: number;
  readonly rssMaxMb: number;
  /** Percent of one core, from schedstat (ns resolution). */
  readonly cpuPercent: number;
  /** The same from utime+stime of /proc/PID/stat (10 ms resolution). */
  readonly cpuPercentFromStat: number;
  readonly cpuMs: number;
}

function figures(w: Watched): Figures {
  const { first, last } = w;
  if (first === undefined || last === undefined) throw new Error(`no CPU samples for ${w.label}`);
  const seconds = (last.atMs - first.atMs) / 1000;
  return {
    rssMedianMb: mb(median(w.rss)),
    rssMaxMb: mb(Math.max(...w.rss)),
    cpuPercent: (100 * (last.schedSec - first.schedSec)) / seconds,
    cpuPercentFromStat: (100 * (last.statSec - first.statSec)) / seconds,
    cpuMs: (last.schedSec - first.schedSec) * 1000,
  };
}

async function measure(watched: readonly Watched[], seconds: number): Promise<void> {
  const sample = (): void => {
    for (const w of watched) {
      const cpu = sampleCpu(w.pid);
      w.first ??= cpu;
      w.last = cpu;
      w.rss.push(rssBytes(w.pid));
    }
  };
  sample();
  const endAt = performance.now() + seconds * 1000;
  // One sample a second: the bench itself stays quiet while it measures.
  while (performance.now() < endAt) {
    await sleep(Math.min(1_000, endAt - performance.now()));
    sample();
  }
}

export async function idle(profile: Profile['idle']): Promise<SectionResult> {
  const fixture = makeFixture('idle');
  const api = await startFakeApiProcess({ lifetimeSec: 900 });
  const children: Child[] = [];
  try {
    const start = (launch: Launch): Sidecar => {
      const sidecar = startSidecar({ apiUrl: api.url, tokenFile: fixture.tokenFile, jwtFile: fixture.jwtFile(`jwt-${launch}`), launch });
      children.push(sidecar);
      return sidecar;
    };
    const whatIfs: Launch[] = ['plain', ...(imageAddsSettings() ? ['snapshot' as const] : [])];
    const sidecar = start('image');
    const others = whatIfs.map((launch) => ({ launch, sidecar: start(launch) }));
    await Promise.all(['image', ...whatIfs].map((launch) => waitForFileContent(fixture.jwtFile(`jwt-${launch}`), 15_000)));
    const bare = await startBareServer(fixture.jwtFile('jwt-image'));
    children.push(bare.child);
    const probe = (code: string): Child => {
      const child = spawnNode(['-e', code], { output: 'ignore' });
      children.push(child);
      return child;
    };
    const monitor = probe(PROBES.eventLoopMonitor);
    const timer = probe(PROBES.oneSecondTimer);
    await sleep(profile.settleSec * 1000);

    const watch = (label: string, pid: number): Watched => ({ label, pid, rss: [] });
    const w = {
      sidecar: watch('ek-sidecar (image)', sidecar.pid),
      bare: watch('bare node:http', bare.child.pid),
      monitor: watch('node + event-loop-delay monitor', monitor.pid),
      timer: watch('node + 1 s timer', timer.pid),
    };
    const whatIf = others.map((other) => ({ launch: other.launch, watched: watch(`ek-sidecar (${other.launch})`, other.sidecar.pid) }));
    await measure([...Object.values(w), ...whatIf.map((other) => other.watched)], profile.measureSec);
    const exchanges = sidecar.lines().filter((line) => line.msg === MSG_EXCHANGED).length;
    const f = Object.fromEntries(Object.entries(w).map(([key, watched]) => [key, figures(watched)])) as Record<keyof typeof w, Figures>;
    const fw = whatIf.map((other) => ({ launch: other.launch, figures: figures(other.watched) }));
    const rssRatio = f.sidecar.rssMedianMb / f.bare.rssMedianMb;
    const spread = (watched: Watched): string => `${fmt(mb(percentile(watched.rss, 25)), 1)}–${fmt(mb(percentile(watched.rss, 75)), 1)}`;
    const cpu = (figure: Figures): string => `${fmt(figure.cpuPercent, 3)} % of a core`;
    const rows = [
      row('RSS (median of 1 s samples): the image\'s start, from the startup snapshot', `${fmt(f.sidecar.rssMedianMb, 1)} MB (${spread(w.sidecar)})`, `${fmt(f.bare.rssMedianMb, 1)} MB (${spread(w.bare)})`,
        times(rssRatio), '≤ 1.30×', rssRatio <= 1.3),
      ...fw.map((other) => row(`…what-if: ${LAUNCHES[other.launch]}`, `${fmt(other.figures.rssMedianMb, 1)} MB`, `${fmt(f.bare.rssMedianMb, 1)} MB`, times(other.figures.rssMedianMb / f.bare.rssMedianMb))),
      row(`CPU over ${String(profile.measureSec)} s`, cpu(f.sidecar), cpu(f.bare), `${fmt(f.sidecar.cpuMs, 1)} ms CPU`, '≤ 0.05 % of a core', f.sidecar.cpuPercent <= 0.05),
      row('…bare node + event-loop-delay monitor at 10 ms (prom-client\'s default resolution)', cpu(f.monitor), '', `${fmt(f.monitor.cpuMs, 1)} ms CPU`),
      row('…bare node + one 1 s timer (node:http connectionsCheckingInterval 1000)', cpu(f.timer), '', `${fmt(f.timer.cpuMs, 1)} ms CPU`),
    ];
    const notes = [
      `Measured for ${profile.measureSec} s after ${profile.settleSec} s of settling, every process at the same time, with a JWT of 900 s (no refresh falls inside); ek-sidecar made ${exchanges} exchange(s) in all.`,
      'RSS is VmRSS of /proc/PID/status (in brackets: the middle half of the samples); CPU is the time on CPU of every thread from /proc/PID/task/*/schedstat (utime+stime of /proc/PID/stat, 10 ms resolution, is in results.json too).',
      `The image's start is read from the Dockerfile's runtime stage (${imageStart().described}), /app being this checkout.`,
      'The two "bare node +" rows run one periodic wake-up each in an otherwise empty `node`, to show what each costs on this machine.',
    ];
    return { name: 'idle', title: 'Idle cost', rows, notes, data: { ...f, whatIfs: fw, rssSamples: { sidecar: w.sidecar.rss, bare: w.bare.rss } } };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await api.close();
    fixture.remove();
  }
}
