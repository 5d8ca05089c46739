// 6. Where start-up time and memory go, to explain the cold-start and idle-RSS figures: what each dependency adds
// to a bare node:http process (time and RSS, each set in a fresh process), which is what the startup snapshot saves
// a start, and one real ek-sidecar start, up to its JWT file, started as the image starts it and as the plain bundle,
// each with a CPU profile (--cpu-prof) charged by package and a count of the files the module loader loaded.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { summariseProfile } from '../lib/cpu-profile.ts';
import { startFakeApiProcess } from '../lib/fake-api.ts';
import { fmt, makeFixture, signed } from '../lib/fixture.ts';
import type { Profile } from '../lib/options.ts';
import { mb } from '../lib/proc.ts';
import { spawnNode } from '../lib/processes.ts';
import { row, type Row, type SectionResult } from '../lib/report.ts';
import { SNAPSHOT_BLOB } from '../lib/paths.ts';
import { LAUNCHES, startSidecar, type Launch } from '../lib/sidecar.ts';
import { median } from '../lib/stats.ts';
import { waitForFileContent } from '../lib/wait.ts';

/** The libraries ek-sidecar depends on (package.json dependencies), by the entry points src/ imports. */
const LIBRARIES = ['pino', 'undici', 'prom-client', 'yargs', 'chokidar', 'jose/jwt/decode', 'shell-quote'] as const;
const ALONE = 'node alone';
const HTTP = 'node:http';
const ALL = 'node:http + all libraries';
const allBut = (library: string): string => `node:http + all but ${library}`;
const over = (library: string): string => `node:http + ${library}`;

interface ImportCost {
  readonly importMs: number;
  /** performance.now() at the end: process start → modules loaded. */
  readonly sinceStartMs: number;
  readonly rss: number;
}

/** Import `specifiers` in order in a fresh `node`, then report time and RSS. */
async function importInFreshNode(specifiers: readonly string[]): Promise<ImportCost> {
  const resolve = (specifier: string): string => (specifier.startsWith('node:') ? specifier : import.meta.resolve(specifier));
  const code = [
    'const t0 = performance.now();',
    ...specifiers.map((specifier) => `await import(${JSON.stringify(resolve(specifier))});`),
    'const importMs = performance.now() - t0;',
    'process.stdout.write(JSON.stringify({ importMs, sinceStartMs: performance.now(), rss: process.memoryUsage.rss() }));',
  ].join('\n');
  const child = spawnNode(['--input-type=module', '-e', code]);
  let out = '';
  child.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; });
  const exit = await child.exited;
  if (exit.code !== 0) throw new Error(`importing ${specifiers.join(', ') || 'nothing'} failed (exit ${String(exit.code)})`);
  return JSON.parse(out) as ImportCost;
}

/** Every set measured: nothing, node:http; per library: node:http + it, node:http + all, node:http + all but it. */
function importSets(perLibrary: boolean): Map<string, readonly string[]> {
  const sets = new Map<string, readonly string[]>([[ALONE, []], [HTTP, ['node:http']]]);
  if (perLibrary) {
    for (const library of LIBRARIES) sets.set(over(library), ['node:http', library]);
    sets.set(ALL, ['node:http', ...LIBRARIES]);
    for (const library of LIBRARIES) sets.set(allBut(library), ['node:http', ...LIBRARIES.filter((other) => other !== library)]);
  }
  return sets;
}

async function importCosts(runs: number, perLibrary: boolean): Promise<{ rows: Row[]; data: Record<string, ImportCost[]> }> {
  const sets = importSets(perLibrary);
  const data: Record<string, ImportCost[]> = {};
  for (let i = 0; i < runs; i++) {
    for (const [label, specifiers] of sets) (data[label] ??= []).push(await importInFreshNode(specifiers));
  }
  const med = (label: string, key: keyof ImportCost): number => median((data[label] ?? []).map((cost) => cost[key]));
  const ms = (label: string, base: string): string => `${signed(med(label, 'importMs') - med(base, 'importMs'))} ms`;
  const rss = (label: string, base: string): string => `${signed(mb(med(label, 'rss') - med(base, 'rss')), 1)} MB`;
  const rows: Row[] = [];
  if (perLibrary) {
    for (const library of LIBRARIES) {
      rows.push(row(`${library}: import time / RSS over a bare node:http process`, `${ms(over(library), HTTP)} / ${rss(over(library), HTTP)}`, '',
        `${rss(ALL, allBut(library))} on top of all the others`));
    }
    rows.push(row(`all ${String(LIBRARIES.length)} libraries: import time / RSS over a bare node:http process`, `${ms(ALL, HTTP)} / ${rss(ALL, HTTP)}`, '', ''));
  }
  rows.push(row('node:http itself (what the baselines load)', `${ms(HTTP, ALONE)} / ${rss(HTTP, ALONE)}`,
    `node alone: ${fmt(med(ALONE, 'sinceStartMs'))} ms to run, ${fmt(mb(med(ALONE, 'rss')), 1)} MB`, ''));
  return { rows, data };
}

/**
 * Preloaded with --require (a start from a snapshot runs --require preloads, not --import ones): counts every file the
 * module loader loads, with when, written at exit.
 */
const COUNT_LOADS = [
  "const { registerHooks } = require('node:module');",
  "const { writeFileSync } = require('node:fs');",
  'const loaded = [];',
  'registerHooks({ load(url, context, next) { loaded.push([url, performance.now()]); return next(url, context); } });',
  "process.on('exit', () => { writeFileSync(process.env.BENCH_LOADED_FILE, JSON.stringify(loaded)); });",
].join('\n');

function ownerOf(url: string): string {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (match?.[1] !== undefined) return match[1];
  if (url.startsWith('node:')) return 'node: builtins';
  return url.includes('/dist/') ? 'ek-sidecar dist/' : 'other';
}

/** One real start, profiled: spawn → JWT file, CPU by package, files loaded by package. */
async function profileStart(launch: Launch): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const fixture = makeFixture(`cpu-prof-${launch}`);
  const api = await startFakeApiProcess({ lifetimeSec: 900 });
  const profileDir = join(fixture.dir, 'profile');
  mkdirSync(profileDir);
  const loadedFile = join(fixture.dir, 'loaded.json');
  const counter = join(fixture.dir, 'count-loads.cjs');
  writeFileSync(counter, COUNT_LOADS);
  const jwtFile = fixture.jwtFile();
  const sidecar = startSidecar({
    apiUrl: api.url,
    tokenFile: fixture.tokenFile,
    jwtFile,
    launch,
    nodeArgs: ['--require', counter, '--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', '200'],
    env: { BENCH_LOADED_FILE: loadedFile },
  });
  try {
    const atMs = await waitForFileContent(jwtFile, 15_000);
    const toFileMs = atMs - sidecar.spawnedAtMs;
    await sidecar.stop();
    const file = readdirSync(profileDir).find((name) => name.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error('no .cpuprofile written');
    const summary = summariseProfile(join(profileDir, file), toFileMs);
    // Unique files (a builtin required from many modules is loaded once), up to the JWT.
    const loaded = [...new Set((JSON.parse(readFileSync(loadedFile, 'utf8')) as [string, number][]).filter(([, at]) => at <= toFileMs).map(([url]) => url))];
    const byPackage: Record<string, number> = {};
    for (const url of loaded) byPackage[ownerOf(url)] = (byPackage[ownerOf(url)] ?? 0) + 1;
    const topFiles = Object.entries(byPackage).sort((a, b) => b[1] - a[1]).slice(0, 7).map(([name, count]) => `${name} ${count}`).join(', ');
    const topCpu = summary.byOwner.slice(0, 8).map((entry) => `${entry.owner} ${fmt(entry.ms)} ms`).join('; ');
    const how = launch === 'image' ? 'the image\'s start' : LAUNCHES[launch];
    const rows = [
      row(`files the module loader loaded in one daemon start, up to its JWT (${how})`, String(loaded.length), 'bare baselines: 1 file + node:http', topFiles || 'none'),
      row(`CPU profile of one daemon start (${how}; spawn → JWT file: ${fmt(toFileMs)} ms wall, profiled)`, topCpu, '', `${fmt(summary.totalMs)} ms on CPU`),
    ];
    return { rows, data: { toFileMs, filesLoaded: byPackage, cpu: summary } };
  } finally {
    await sidecar.stop();
    await api.close();
    fixture.remove();
  }
}

export async function startupCost(profile: Profile['startupCost']): Promise<SectionResult> {
  const imports = await importCosts(profile.runs, profile.perLibrary);
  const image = await profileStart('image');
  const plain = await profileStart('plain');
  const blob = row('the startup snapshot (dist/snapshot.blob, with its code cache)', `${fmt(statSync(SNAPSHOT_BLOB).size / 1e6, 1)} MB`, '', 'read whole at every start from it');
  const start = { rows: [...image.rows, ...plain.rows, blob], data: { image: image.data, plain: plain.data } };
  const notes = [
    `Each set of imports is timed in a fresh \`node\` process (median of ${profile.runs}); RSS is the process's after the imports. "Over a bare node:http process" is node:http + the library against node:http alone: what it costs beside the baseline; "on top of all the others" is node:http + all ${String(LIBRARIES.length)} against all but this one: what dropping it alone would save (import times of a few ms are within the noise here).`,
    'The daemon start is profiled with --cpu-prof and a module.registerHooks load hook (both add a little time of their own). A start from the snapshot loads no file of ours or of the libraries: they are in the snapshot; what is left are Node built-ins loaded on first use.',
    'The CPU profile charges every sample to the nearest package on its stack (time in Node\'s module loader on behalf of a package\'s require() counts for that package); "(program)" is native work V8 cannot attribute. When dist/bin.js is one bundle (esbuild), its libraries are charged to "ek-sidecar (dist/)" and compiling it to the loader; the per-library rows above import the libraries unbundled from node_modules, so they size each one rather than reproduce the bundle.',
  ];
  return { name: 'startup-cost', title: 'Start-up cost', rows: [...imports.rows, ...start.rows], notes, data: { imports: imports.data, start: start.data } };
}
