// Command line of `npm run bench` and the durations of each mode (full, --quick, --smoke).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OUT_DIR } from './paths.ts';

export const SECTIONS = ['token', 'proxy', 'cold-start', 'idle', 'upstream', 'fleet', 'fleet-broker', 'startup-cost'] as const;
export type SectionName = (typeof SECTIONS)[number];
export type Mode = 'full' | 'quick' | 'smoke';

/** Connection counts, alternated rounds per count and server, seconds per round, warm-up seconds per server. */
export interface LoadProfile { readonly connections: readonly number[]; readonly rounds: number; readonly roundSec: number; readonly warmupSec: number }

export interface Profile {
  readonly token: LoadProfile;
  readonly proxy: LoadProfile;
  readonly coldStart: { readonly runs: number };
  readonly idle: { readonly settleSec: number; readonly measureSec: number };
  /**
   * Steady state: daemons watched from their first exchange to their first refresh, the JWT lifetime and their
   * --min-ttl (a lifetime of about 200 s or more lets the policy draw its whole window); SIGKILL restarts.
   */
  readonly upstream: { readonly daemons: number; readonly lifetimeSec: number; readonly minTtlMs: number; readonly restarts: number };
  /** Fleet sizes; time is divided by `scale` (900 s / 60 s → 9 s / 0.6 s at 100); lifetimes of steady state watched (largest N only). */
  readonly fleet: { readonly sizes: readonly number[]; readonly scale: number; readonly steadyLifetimes: number };
  /** The same fleet chained through broker replicas (same sizes and scale); modelled drop-in clients; lifetimes watched. */
  readonly fleetBroker: { readonly replicas: number; readonly clients: number; readonly steadyLifetimes: number; readonly scale: number };
  /** Runs per import measurement; whether to measure each library, alone and on top of the others (leave-one-out). */
  readonly startupCost: { readonly runs: number; readonly perLibrary: boolean };
}

const PROFILES: Record<Mode, Profile> = {
  full: {
    token: { connections: [1, 10, 50], rounds: 6, roundSec: 2.5, warmupSec: 2 },
    proxy: { connections: [1, 10, 50], rounds: 6, roundSec: 2.5, warmupSec: 2 },
    coldStart: { runs: 10 },
    idle: { settleSec: 5, measureSec: 60 },
    upstream: { daemons: 10, lifetimeSec: 210, minTtlMs: 1_000, restarts: 10 },
    fleet: { sizes: [10, 50, 100], scale: 100, steadyLifetimes: 1 },
    fleetBroker: { replicas: 2, clients: 1_000, steadyLifetimes: 2, scale: 30 },
    startupCost: { runs: 3, perLibrary: true },
  },
  quick: {
    token: { connections: [1, 10, 50], rounds: 3, roundSec: 1.5, warmupSec: 0.5 },
    proxy: { connections: [1, 10, 50], rounds: 3, roundSec: 1.5, warmupSec: 0.5 },
    coldStart: { runs: 5 },
    idle: { settleSec: 2, measureSec: 10 },
    upstream: { daemons: 5, lifetimeSec: 20, minTtlMs: 1_000, restarts: 5 },
    fleet: { sizes: [10, 50], scale: 100, steadyLifetimes: 1 },
    fleetBroker: { replicas: 2, clients: 1_000, steadyLifetimes: 1, scale: 30 },
    startupCost: { runs: 3, perLibrary: true },
  },
  smoke: {
    token: { connections: [50], rounds: 1, roundSec: 0.5, warmupSec: 0.3 },
    proxy: { connections: [50], rounds: 1, roundSec: 0.5, warmupSec: 0.3 },
    coldStart: { runs: 1 },
    idle: { settleSec: 0.5, measureSec: 1 },
    upstream: { daemons: 2, lifetimeSec: 2, minTtlMs: 100, restarts: 1 },
    fleet: { sizes: [3], scale: 100, steadyLifetimes: 0 },
    fleetBroker: { replicas: 2, clients: 100, steadyLifetimes: 1, scale: 100 },
    startupCost: { runs: 1, perLibrary: false },
  },
};

export interface BenchOptions {
  readonly mode: Mode;
  readonly profile: Profile;
  readonly sections: readonly SectionName[];
  /** Where the results JSON goes. */
  readonly out: string;
  /** Where the markdown section goes; undefined: not written (only a full run of every section writes it by default). */
  readonly readme: string | undefined;
  /** Run nothing: re-render the README section from the results JSON at `out` (after editing bench/findings.md). */
  readonly render: boolean;
}

export const USAGE = `usage: node bench/run.ts [--quick | --smoke] [--only SECTION[,SECTION…]] [--out results.json] [--readme FILE | --no-readme]
                         [--fleet-sizes 10,50,100] [--fleet-scale 100] [--fleet-steady LIFETIMES] [--fleet-broker-scale 30]
       node bench/run.ts --render [--out results.json] [--readme FILE]   (re-render the README section only)
  sections: ${SECTIONS.join(', ')}
  --out defaults to bench/out/results.json; a full run of every section without --out also writes bench/out/README-section.md`;

function isSection(name: string): name is SectionName {
  return (SECTIONS as readonly string[]).includes(name);
}

function integerAtLeast(option: string, raw: string, min: number): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value) || value < min) throw new Error(`${option} takes integers ≥ ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

function positiveInteger(option: string, raw: string): number {
  return integerAtLeast(option, raw, 1);
}

/** Parses argv; throws an Error with a one-line message on bad usage. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true, default: [] },
      out: { type: 'string' },
      readme: { type: 'string' },
      'no-readme': { type: 'boolean', default: false },
      render: { type: 'boolean', default: false },
      'fleet-sizes': { type: 'string' },
      'fleet-scale': { type: 'string' },
      'fleet-steady': { type: 'string' },
      'fleet-broker-scale': { type: 'string' },
    },
  });
  if (values.quick && values.smoke) throw new Error('--quick and --smoke exclude each other');
  const mode: Mode = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
  const only = values.only.flatMap((item) => item.split(',')).map((item) => item.trim()).filter((item) => item !== '');
  const unknown = only.filter((name) => !isSection(name));
  if (unknown.length > 0) throw new Error(`unknown section ${unknown.join(', ')}; known: ${SECTIONS.join(', ')}`);
  const sections = only.length === 0 ? SECTIONS : SECTIONS.filter((name) => only.includes(name));
  const everything = sections.length === SECTIONS.length;
  const readmeFile = join(OUT_DIR, 'README-section.md');
  const defaultReadme = values.render || (mode === 'full' && everything && values.out === undefined) ? readmeFile : undefined;
  const base = PROFILES[mode];
  const sizes = values['fleet-sizes']?.split(',').map((item) => positiveInteger('--fleet-sizes', item)) ?? base.fleet.sizes;
  const scale = values['fleet-scale'] === undefined ? base.fleet.scale : positiveInteger('--fleet-scale', values['fleet-scale']);
  const steady = values['fleet-steady'] === undefined ? base.fleet.steadyLifetimes : integerAtLeast('--fleet-steady', values['fleet-steady'], 0);
  const brokerScale = values['fleet-broker-scale'] === undefined ? base.fleetBroker.scale : positiveInteger('--fleet-broker-scale', values['fleet-broker-scale']);
  return {
    mode,
    profile: { ...base, fleet: { ...base.fleet, sizes, scale, steadyLifetimes: steady }, fleetBroker: { ...base.fleetBroker, scale: brokerScale } },
    sections,
    out: values.out ?? join(OUT_DIR, 'results.json'),
    readme: values['no-readme'] ? undefined : (values.readme ?? defaultReadme),
    render: values.render,
  };
}
