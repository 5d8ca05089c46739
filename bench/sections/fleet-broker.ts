// 6. Fleet through a broker: the same N daemons, the same API token, limit and scaled time as `fleet`, but chained:
// each daemon's --api-url is one of two broker replicas (TLS, a CA made for the run), and only the brokers exchange
// with the fake API. A load generator adds the drop-in traffic of 1,000 modelled chained sidecars. Measures what the
// upstream sees per JWT lifetime, 429s, how soon every daemon holds a JWT after the brokers do, and the brokers' cost.
import { mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import { join } from 'node:path';
import { createCa, issue } from '../../test/helpers/tls-certs.ts';
import { startDropInLoad, type DropInLoadResult } from '../lib/drop-in-load.ts';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { BENCH_TOKEN, fmt, makeFixture } from '../lib/fixture.ts';
import type { Profile } from '../lib/options.ts';
import { cpuSecondsFromSchedstat, mb, rssBytes, sampleCpu } from '../lib/proc.ts';
import { progress } from '../lib/progress.ts';
import { REAL_LIFETIME_SEC, REAL_MIN_TTL_SEC, REAL_WINDOW_SEC } from '../lib/refresh-model.ts';
import { row, type Row, type SectionResult } from '../lib/report.ts';
import { startSidecar, type Sidecar } from '../lib/sidecar.ts';
import { sleep, waitFor, waitForFileContent } from '../lib/wait.ts';
import { LIMIT, NO_TOKEN_YET, STARTING_AT_ONCE, inPool, publishToken } from './fleet.ts';

/** Asks per lifetime of one modelled client: a chained sidecar's 1.86 (test/unit/refresher/chained.test.ts), rounded up. */
const ASKS_PER_LIFETIME = 2;
/** The goals of the issue. */
const GOAL_PER_REPLICA = 2;
const GOAL_READY_SEC = 2;
/** Niceness of the chained daemons (the brokers, the fake API and the load generator keep 0). */
const CHAINED_NICE = 10;
const FAILURES = ['unauthorized', 'forbidden', 'rate_limited', 'server_error', 'network_error', 'invalid_response'] as const;

interface BrokerCost {
  readonly cpuPercent: number;
  readonly rssMb: number;
}

interface ChainedRun {
  readonly n: number;
  readonly replicas: number;
  readonly held: number;
  /** Token published → every broker holds a JWT. */
  readonly brokersReadySec: number;
  /** The last broker holding a JWT → every chained daemon holds one (undefined: not all did). */
  readonly allHeldAfterBrokersSec: number | undefined;
  readonly medianHeldAfterBrokersSec: number;
  readonly upstream: { readonly ok: number; readonly rateLimited: number; readonly other: number };
  /** Failed asks of the chained daemons during the start-up, by result. */
  readonly startupFailures: Record<string, number>;
  /** CPU the chained daemons spent from the gate until all held a JWT, per daemon (ms), and the bound it sets. */
  readonly firstAskCpuMs: number;
  readonly cpuBoundSec: number;
  /** Daemons that logged a lost token-file watch (inotify exhausted), and inotify instances in use at the gate. */
  readonly watchLost: number;
  readonly inotify: { readonly inUse: number; readonly max: number };
  /** Failed asks of the chained daemons in steady state, by result. */
  readonly steadyFailures: Record<string, number>;
  readonly steady: { readonly seconds: number; readonly lifetimes: number; readonly upstreamOk: number; readonly perLifetimePerReplica: number; readonly chainedAsks: number; readonly asksPerChainedPerLifetime: number; readonly readyAtEnd: number };
  readonly load: DropInLoadResult | undefined;
  readonly brokers: readonly BrokerCost[];
  /** Warnings and errors the daemons logged over the whole run, by message (without its variable part), brokers apart. */
  readonly logged: { readonly brokers: Record<string, number>; readonly chained: Record<string, number> };
}

/** inotify instances in use on the machine and the per-user limit (every process here runs as one user). */
function inotifyInstances(): { inUse: number; max: number } {
  let inUse = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify') inUse++;
    } catch {
      // gone, or not ours to read
    }
  }
  let max = Number.NaN;
  try {
    max = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8').trim());
  } catch {
    // not Linux
  }
  return { inUse, max };
}

async function failuresOf(sidecars: readonly Sidecar[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const result of FAILURES) {
    const count = await sumOver(sidecars, `ek_sidecar_exchanges_total{result="${result}"}`);
    if (count > 0) counts[result] = count;
  }
  return counts;
}

function minus(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const diff: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) diff[k] = v - (before[k] ?? 0);
  return diff;
}

/** Warn and error lines by message, cut before the first ':' or ';' so that URLs and figures do not split them. */
function loggedProblems(sidecars: readonly Sidecar[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of sidecars) {
    for (const line of s.lines()) {
      if (line.level !== 'warn' && line.level !== 'error' && line.level !== 'fatal') continue;
      const key = `${line.level}: ${(line.msg ?? '').split(/[:;]/)[0] ?? ''}`.slice(0, 120);
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}

async function metric(port: number | undefined, series: string): Promise<number> {
  if (port === undefined) return 0;
  const text = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function sumOver(sidecars: readonly Sidecar[], series: string): Promise<number> {
  const values = await inPool(sidecars, 8, async (s) => metric((await s.ports()).metrics, series));
  return values.reduce((a, b) => a + b, 0);
}

async function runChained(n: number, options: Profile['fleetBroker']): Promise<ChainedRun> {
  const lifetimeSec = REAL_LIFETIME_SEC / options.scale;
  const windowMs = Math.round((REAL_WINDOW_SEC * 1000) / options.scale);
  const minTtlMs = Math.round((REAL_MIN_TTL_SEC * 1000) / options.scale);
  const scaled = ['--rate-limit', `${LIMIT}/${windowMs}ms`, '--min-ttl', `${minTtlMs}ms`, '--timeout', '5s'];
  const api = await startFakeApiProcess({ lifetimeSec, limit: LIMIT, windowMs });
  const fixture = makeFixture(`fleet-broker-${n}`);
  // Each token file alone in its directory, as in a Secret volume: a file watch wakes on its directory's entries, and
  // here the directory also holds the N daemons' own directories.
  const secretFile = (name: string): string => {
    mkdirSync(join(fixture.dir, name));
    const file = join(fixture.dir, name, 'token');
    writeFileSync(file, '');
    return file;
  };
  const tokenFile = secretFile('secret');
  const brokerTokenFile = secretFile('broker-secret');
  const ca = await createCa();
  const leaf = await issue(ca, ['127.0.0.1', 'localhost']);
  const caFile = join(fixture.dir, 'ca.crt');
  writeFileSync(caFile, ca.certPem);
  writeFileSync(join(fixture.dir, 'tls.crt'), leaf.certPem);
  writeFileSync(join(fixture.dir, 'tls.key'), leaf.keyPem, { mode: 0o600 });
  const daemonDir = (name: string): string => {
    const dir = join(fixture.dir, name);
    mkdirSync(dir);
    return join(dir, 'jwt');
  };
  const brokers: Sidecar[] = [];
  const chained: Sidecar[] = [];
  try {
    const brokerFiles = Array.from({ length: options.replicas }, (_, i) => daemonDir(`broker-${String(i)}`));
    for (const jwtFile of brokerFiles) {
      brokers.push(startSidecar({ apiUrl: api.url, tokenFile: brokerTokenFile, jwtFile, extra: [...scaled, '--tls-cert-file', join(fixture.dir, 'tls.crt'), '--tls-key-file', join(fixture.dir, 'tls.key')] }));
    }
    const brokerPorts = await Promise.all(brokers.map(async (b) => (await b.ports(60_000)).token));
    // A Service spreads connections over its replicas: here each chained daemon is given one, in turn.
    const chainedFiles = Array.from({ length: n }, (_, i) => daemonDir(`pod-${String(i)}`));
    await inPool(chainedFiles, STARTING_AT_ONCE, async (jwtFile) => {
      const port = brokerPorts[chained.length % brokerPorts.length] ?? 0;
      const sidecar = startSidecar({ apiUrl: `https://127.0.0.1:${String(port)}`, tokenFile, jwtFile, extra: [...scaled, '--ca-file', caFile] });
      chained.push(sidecar);
      // In a cluster the brokers have CPU of their own; here the N daemons yield to them (and to the fake API), so
      // that a broker starved by the herd it serves does not time its own clients out.
      setPriority(sidecar.pid, CHAINED_NICE);
      await sidecar.ports(60_000);
    });
    const everyone = [...brokers, ...chained];
    await Promise.all(everyone.map((s) => waitFor(() => s.lines().some((line) => line.msg?.includes(NO_TOKEN_YET) === true), 5_000, 'the empty token read').catch(() => undefined)));
    progress(`fleet-broker N=${String(n)}: all started; the brokers get their token, then the fleet`);

    // The brokers first, as a Deployment that is already running (a Service routes only to ready brokers); the
    // fleet's token appears the moment the last broker holds a JWT, and every daemon goes for it at once.
    const timeoutMs = 60_000;
    const brokersHeld = brokerFiles.map((file) => waitForFileContent(file, timeoutMs));
    const gateAt = performance.now();
    const wallGate = Date.now();
    publishToken(brokerTokenFile);
    const brokersAt = Math.max(...(await Promise.all(brokersHeld)));
    const inotify = inotifyInstances();
    const chainedHeld = chainedFiles.map((file) => waitForFileContent(file, timeoutMs));
    const cpuAtGate = chained.map((c) => cpuSecondsFromSchedstat(c.pid));
    publishToken(tokenFile);
    const heldAt = await Promise.all(chainedHeld.map((p) => p.then((at) => at - brokersAt, () => undefined)));
    const cpuHeld = chained.map((c, i) => cpuSecondsFromSchedstat(c.pid) - (cpuAtGate[i] ?? 0)).reduce((a, b) => a + b, 0);
    const got = heldAt.filter((at): at is number => at !== undefined);
    const sorted = [...got].sort((a, b) => a - b);
    const startupFailures = await failuresOf(chained);

    // Steady state, from a whole lifetime after the start-up on, with the modelled clients' drop-in load on top.
    await sleep(lifetimeSec * 1000);
    const steadyFrom = Date.now();
    const asksBefore = await sumOver(chained, 'ek_sidecar_exchanges_total{result="success"}');
    const failuresBefore = await failuresOf(chained);
    const cpuBefore = brokers.map((b) => sampleCpu(b.pid));
    const load = options.clients > 0 ? startDropInLoad({ ports: brokerPorts, ca: ca.certPem, token: BENCH_TOKEN, rate: (options.clients * ASKS_PER_LIFETIME) / lifetimeSec }) : undefined;
    const rss = brokers.map(() => 0);
    const steadyMs = options.steadyLifetimes * lifetimeSec * 1000;
    for (let waited = 0; waited < steadyMs; waited += 1_000) {
      await sleep(Math.min(1_000, steadyMs - waited));
      brokers.forEach((b, i) => { rss[i] = Math.max(rss[i] ?? 0, rssBytes(b.pid)); });
    }
    const loadResult = await load?.stop();
    const cpuAfter = brokers.map((b) => sampleCpu(b.pid));
    const steadyTo = Date.now();
    const chainedAsks = (await sumOver(chained, 'ek_sidecar_exchanges_total{result="success"}')) - asksBefore;
    const readyAtEnd = await sumOver(chained, 'ek_sidecar_ready');
    const steadyFailures = minus(await failuresOf(chained), failuresBefore);

    const entries = (await api.log()).entries.filter((entry) => entry.atMs >= wallGate);
    const steadyOk = entries.filter((entry) => entry.status === 200 && entry.atMs >= steadyFrom && entry.atMs < steadyTo).length;
    const lifetimes = (steadyTo - steadyFrom) / 1000 / lifetimeSec;
    return {
      n,
      replicas: options.replicas,
      held: got.length,
      brokersReadySec: (brokersAt - gateAt) / 1000,
      allHeldAfterBrokersSec: got.length === n ? Math.max(0, sorted.at(-1) ?? 0) / 1000 : undefined,
      medianHeldAfterBrokersSec: (sorted[Math.floor(sorted.length / 2)] ?? Number.NaN) / 1000,
      startupFailures,
      firstAskCpuMs: (1000 * cpuHeld) / n,
      cpuBoundSec: cpuHeld / availableParallelism(),
      watchLost: chained.filter((c) => c.lines().some((line) => line.msg?.startsWith('cannot watch the token file') === true)).length,
      inotify,
      steadyFailures,
      upstream: {
        ok: entries.filter((entry) => entry.status === 200).length,
        rateLimited: entries.filter((entry) => entry.status === 429).length,
        other: entries.filter((entry) => entry.status !== 200 && entry.status !== 429).length,
      },
      steady: { seconds: (steadyTo - steadyFrom) / 1000, lifetimes, upstreamOk: steadyOk, perLifetimePerReplica: steadyOk / lifetimes / options.replicas, chainedAsks, asksPerChainedPerLifetime: chainedAsks / n / lifetimes, readyAtEnd },
      load: loadResult,
      logged: { brokers: loggedProblems(brokers), chained: loggedProblems(chained) },
      brokers: brokers.map((_, i) => ({
        cpuPercent: (100 * ((cpuAfter[i]?.schedSec ?? 0) - (cpuBefore[i]?.schedSec ?? 0))) / (((cpuAfter[i]?.atMs ?? 0) - (cpuBefore[i]?.atMs ?? 0)) / 1000),
        rssMb: mb(rss[i] ?? 0),
      })),
    };
  } finally {
    await Promise.all([...chained, ...brokers].map((s) => s.stop('SIGTERM', 3_000)));
    await api.close();
    fixture.remove();
  }
}

const counts = (record: Record<string, number>): string => Object.entries(record).map(([k, v]) => `${String(v)} ${k}`).join(', ') || 'none';

function rowsFor(run: ChainedRun, lifetimeSec: number): Row[] {
  const label = `N=${String(run.n)} via ${String(run.replicas)} brokers`;
  const ready = run.allHeldAfterBrokersSec;
  const lost = run.watchLost > 0 ? `; ${String(run.watchLost)} lost their token watch (inotify ${String(run.inotify.inUse)}/${String(run.inotify.max)})` : '';
  const rows = [
    row(`${label}: token appears → every broker holds a JWT`, `${fmt(run.brokersReadySec, 2)} s`, '', ''),
    row(`${label}: last broker holds a JWT → every daemon holds one`, ready === undefined ? `only ${String(run.held)}/${String(run.n)}` : `${fmt(ready, 2)} s`,
      `CPU bound ${fmt(run.cpuBoundSec, 2)} s (${fmt(run.firstAskCpuMs, 0)} ms of CPU per daemon)`,
      `median daemon ${fmt(run.medianHeldAfterBrokersSec, 2)} s; failed asks: ${counts(run.startupFailures)}${lost}`, `≤ ${String(GOAL_READY_SEC)} s`, ready !== undefined && ready <= GOAL_READY_SEC),
    row(`${label}: upstream requests / 429s (start-up and steady state)`, `${String(run.upstream.ok + run.upstream.rateLimited + run.upstream.other)} / ${String(run.upstream.rateLimited)}`, '',
      `${String(run.upstream.other)} other errors`, '0 × 429', run.upstream.rateLimited === 0),
    row(`${label}: upstream exchanges per JWT lifetime per broker (steady, ${fmt(run.steady.lifetimes, 1)} lifetimes)`, fmt(run.steady.perLifetimePerReplica, 2), '',
      `${String(run.steady.upstreamOk)} exchanges in ${fmt(run.steady.seconds, 1)} s`, `≤ ${String(GOAL_PER_REPLICA)}`, run.steady.perLifetimePerReplica <= GOAL_PER_REPLICA),
    row(`${label}: asks per daemon per JWT lifetime (steady)`, fmt(run.steady.asksPerChainedPerLifetime, 2), 'model 1.86',
      `${String(run.steady.chainedAsks)} asks; failed: ${counts(run.steadyFailures)}; ${String(run.steady.readyAtEnd)}/${String(run.n)} ready at the end`),
  ];
  if (run.load !== undefined) {
    const statuses = Object.entries(run.load.statuses).map(([code, count]) => `${String(count)} × ${code}`).join(', ');
    rows.push(row(`${label}: drop-in load of the modelled clients`, `${fmt(run.load.ok / run.load.seconds, 0)} answers/s`, '',
      `${statuses}${run.load.errors > 0 ? `, ${String(run.load.errors)} connection errors` : ''}; p50 ${fmt(run.load.p50Ms, 1)} ms, p99 ${fmt(run.load.p99Ms, 1)} ms`));
  }
  run.brokers.forEach((broker, i) => {
    rows.push(row(`${label}: broker ${String(i + 1)} CPU / peak RSS under that load (steady)`, `${fmt(broker.cpuPercent, 1)} % of a core / ${fmt(broker.rssMb, 1)} MB`, '', `JWT ${fmt(lifetimeSec, 0)} s scaled`));
  });
  return rows;
}

export async function fleetBroker(profile: Profile['fleet'], options: Profile['fleetBroker']): Promise<SectionResult> {
  const lifetimeSec = REAL_LIFETIME_SEC / options.scale;
  const runs: ChainedRun[] = [];
  for (const n of profile.sizes) runs.push(await runChained(n, options));
  const rows = runs.flatMap((run) => rowsFor(run, lifetimeSec));
  const rate = (options.clients * ASKS_PER_LIFETIME) / lifetimeSec;
  const minTtlMs = (REAL_MIN_TTL_SEC * 1000) / options.scale;
  const notes = [
    `The same N and token as the direct fleet above, on a scale of its own: time ×1/${String(options.scale)} (JWT ${fmt(lifetimeSec, 0)} s, --min-ttl ${fmt(minTtlMs, 0)} ms, the 10/min limit per ${fmt(REAL_WINDOW_SEC / options.scale, 1)} s), not the fleet's ×1/${String(profile.scale)}. At ×1/100 a broker refreshes 2.7 s before its 9 s JWT expires and turns unready 0.6 s before it: less than the timer lateness of 2 cores running N + 2 daemons and the load (p99 answers of 1–2 s were measured), so the brokers answered 503 in bursts and the figures were the scale's, not the product's. ${String(options.replicas)} broker replicas (TLS on loopback, a CA made for the run), each its own process with its own JWT and budget; the N daemons (real processes) are spread over them in turn, as a Service spreads connections, with --api-url https://127.0.0.1:<broker> and --ca-file.`,
    `Start-up: brokers and daemons wait on empty token files (each alone in its directory, as in a Secret volume), renamed into place once all have started: the brokers' first, then the fleet's the moment the last broker holds a JWT (a broker is in its Service only once ready). "Every daemon holds one" is timed from there. The CPU bound is the CPU the N daemons spent from that moment until each held a JWT (reading the token, a TLS handshake, the ask, two files written with fsync), divided by the ${String(availableParallelism())} cores: no scheduling can finish sooner on this machine. In a cluster each pod has its own node's CPU: what stays is the time of one daemon, about the N=10 median. The chained daemons run at nice ${String(CHAINED_NICE)}: in a cluster the brokers have CPU of their own, and here a broker starved by the herd it serves timed some of its clients out (5 s).`,
    `Load: ${String(options.clients)} modelled clients of the drop-in (chained sidecars beyond the processes this machine can run), ${String(ASKS_PER_LIFETIME)} asks each per lifetime: ${fmt(rate, 0)} POST /v1/auth/exchange per second over HTTPS (32 kept-alive connections), round-robin over the brokers, during the steady state. At production scale the same clients ask ${fmt((options.clients * ASKS_PER_LIFETIME) / REAL_LIFETIME_SEC, 1)} times a second: the scaled load is ${String(options.scale)} times heavier than production's.`,
    'Upstream exchanges per lifetime per broker: at any scaled time the latest safe point (--min-ttl plus a quarter of the usable life) comes at 0.7 of the lifetime, before the window 0.7–0.85, so a broker refreshes at 0.7: 1.43 expected here, 1.29 in production (where that margin is capped at 30 s); the steady state is a few lifetimes, so the figure moves by about ±1/(lifetimes × replicas).',
    `Asks per daemon: the model's 1.86 per lifetime is at production time (test/unit/refresher/chained.test.ts); here the drop-in's \`expiresIn\` in whole seconds takes up to 1 s off the life a chained daemon sees, ${fmt(100 / lifetimeSec, 0)} % of a scaled lifetime (0.1 % of a real one), so it asks somewhat more often.`,
  ];
  return { name: 'fleet-broker', title: 'Fleet through a broker', rows, notes, data: { runs, rate, scale: options.scale } };
}
