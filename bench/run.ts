// `npm run bench`: what users pay for ek-sidecar, beside baselines in one run. Wiring only: parse the command line,
// run each section, print the table, write the results JSON and (on a full run) the README section.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describeMachine } from './lib/machine.ts';
import { parseOptions, USAGE, type BenchOptions, type Profile, type SectionName } from './lib/options.ts';
import { BENCH_DIR, CLI, OUT_DIR } from './lib/paths.ts';
import { installCleanup, runningChildren, stopAll } from './lib/processes.ts';
import { renderNotes, renderReadme, renderTable, type FailedSection, type SavedResults, type SectionResult } from './lib/report.ts';
import { coldStart } from './sections/cold-start.ts';
import { fleet } from './sections/fleet.ts';
import { fleetBroker } from './sections/fleet-broker.ts';
import { idle } from './sections/idle.ts';
import { proxy } from './sections/proxy.ts';
import { startupCost } from './sections/startup-cost.ts';
import { tokenEndpoint } from './sections/token-endpoint.ts';
import { upstream } from './sections/upstream.ts';

const RUNNERS: Record<SectionName, (profile: Profile) => Promise<SectionResult>> = {
  token: (profile) => tokenEndpoint(profile.token),
  proxy: (profile) => proxy(profile.proxy),
  'cold-start': (profile) => coldStart(profile.coldStart),
  idle: (profile) => idle(profile.idle),
  upstream: (profile) => upstream(profile.upstream),
  fleet: (profile) => fleet(profile.fleet),
  'fleet-broker': (profile) => fleetBroker(profile.fleet, profile.fleetBroker),
  'startup-cost': (profile) => startupCost(profile.startupCost),
};

function parseOrExit(): BenchOptions {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  try {
    return parseOptions(argv);
  } catch (error) {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n${USAGE}\n`);
    process.exit(2);
  }
}

const FINDINGS = join(BENCH_DIR, 'findings.md');

function findings(): string {
  return existsSync(FINDINGS) ? readFileSync(FINDINGS, 'utf8') : '';
}

const options = parseOrExit();
if (options.render) {
  // Re-render only: the README section from an earlier run's JSON and the current findings.md.
  const saved = JSON.parse(readFileSync(options.out, 'utf8')) as SavedResults;
  const readme = options.readme ?? join(OUT_DIR, 'README-section.md');
  writeFileSync(readme, renderReadme({ ...saved, results: Object.values(saved.sections), findings: findings() }));
  process.stderr.write(`bench: wrote ${readme} from ${options.out}\n`);
  process.exit(0);
}
if (!existsSync(CLI)) {
  process.stderr.write(`bench: ${CLI} is missing; run \`npm run build\` first (npm run bench does)\n`);
  process.exit(2);
}
installCleanup();

const machine = describeMachine();
const command = `npm run bench${options.mode === 'full' ? '' : ` -- --${options.mode}`}`;
const startedAt = performance.now();
const results: SectionResult[] = [];
const failed: FailedSection[] = [];
const timings: Record<string, number> = {};
process.stderr.write(`bench: ${options.mode} run of ${options.sections.join(', ')} on ${machine.nproc} cores, Node ${machine.node}\n`);

for (const name of options.sections) {
  const sectionStart = performance.now();
  process.stderr.write(`bench: ${name}…\n`);
  try {
    results.push(await RUNNERS[name](options.profile));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`bench: ${name} failed: ${error instanceof Error ? (error.stack ?? message) : message}\n`);
    failed.push({ name, error: message });
  }
  // A section leaves nothing running for the next one to compete with.
  if (runningChildren() > 0) await stopAll();
  timings[name] = Math.round((performance.now() - sectionStart) / 100) / 10;
  process.stderr.write(`bench: ${name} done in ${timings[name]} s\n`);
}

const generatedAt = new Date().toISOString();
const table = renderTable(results);
process.stdout.write(`\n${table}\n\n${renderNotes(results)}\n`);
if (failed.length > 0) process.stdout.write(`\nFAILED: ${failed.map((f) => `${f.name}: ${f.error}`).join('\n')}\n`);

const totalSec = Math.round((performance.now() - startedAt) / 100) / 10;
const json: SavedResults = {
  generatedAt,
  mode: options.mode,
  command,
  machine,
  totalSeconds: totalSec,
  sectionSeconds: timings,
  sections: Object.fromEntries(results.map((result) => [result.name, result])),
  failed,
};
mkdirSync(dirname(options.out), { recursive: true });
writeFileSync(options.out, `${JSON.stringify(json, null, 2)}\n`);
process.stderr.write(`bench: wrote ${options.out} (${totalSec} s in all)\n`);

if (options.readme !== undefined) {
  mkdirSync(dirname(options.readme), { recursive: true });
  writeFileSync(options.readme, renderReadme({ results, failed, machine, command, generatedAt, findings: findings() }));
  process.stderr.write(`bench: wrote ${options.readme}\n`);
}
process.exitCode = failed.length > 0 ? 1 : 0;
