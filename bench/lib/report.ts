// What every section returns, and the one table that stdout, results.json and README-section.md all show.
import type { Machine } from './machine.ts';
import type { SectionName } from './options.ts';

export interface Row {
  readonly metric: string;
  readonly sidecar: string;
  readonly baseline: string;
  /** sidecar / baseline, or the measured figure against a bound. */
  readonly ratio: string;
  readonly target: string;
  /** undefined: no target for this row. */
  readonly met: boolean | undefined;
}

export interface SectionResult {
  readonly name: SectionName;
  readonly title: string;
  readonly rows: readonly Row[];
  /** Findings in words: causes of misses, distortions of scaled time, start-up spread. */
  readonly notes: readonly string[];
  /** Raw figures for results.json. */
  readonly data: Record<string, unknown>;
}

export interface FailedSection {
  readonly name: SectionName;
  readonly error: string;
}

/** What results.json holds. */
export interface SavedResults {
  readonly generatedAt: string;
  readonly mode: string;
  readonly command: string;
  readonly machine: Machine;
  readonly totalSeconds: number;
  readonly sectionSeconds: Record<string, number>;
  /** By section name, in the order they ran. */
  readonly sections: Record<string, SectionResult>;
  readonly failed: readonly FailedSection[];
}

export function row(metric: string, sidecar: string, baseline: string, ratio: string, target = '', met?: boolean): Row {
  return { metric, sidecar, baseline, ratio, target, met };
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|');
}

function verdict(met: boolean | undefined): string {
  if (met === undefined) return '';
  return met ? 'met' : '**missed**';
}

/** One markdown table over every section. */
export function renderTable(results: readonly SectionResult[]): string {
  const lines = [
    '| section | metric | ek-sidecar | baseline | ratio / figure | target | |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const result of results) {
    for (const r of result.rows) {
      lines.push(`| ${cell(result.title)} | ${cell(r.metric)} | ${cell(r.sidecar)} | ${cell(r.baseline)} | ${cell(r.ratio)} | ${cell(r.target)} | ${verdict(r.met)} |`);
    }
  }
  return lines.join('\n');
}

export function renderNotes(results: readonly SectionResult[]): string {
  return results
    .filter((result) => result.notes.length > 0)
    .map((result) => `**${result.title}.**\n${result.notes.map((note) => `- ${note}`).join('\n')}`)
    .join('\n\n');
}

export function targetsSummary(results: readonly SectionResult[]): { met: string[]; missed: string[] } {
  const met: string[] = [];
  const missed: string[] = [];
  for (const result of results) {
    for (const r of result.rows) {
      if (r.met === undefined) continue;
      (r.met ? met : missed).push(`${result.title}, ${r.metric}: ${[r.sidecar, r.ratio].filter((text) => text !== '').join(', ')} (target ${r.target})`);
    }
  }
  return { met, missed };
}

export function renderMachine(machine: Machine): string {
  return [
    `- CPU: ${machine.cpuModel}, \`nproc\` = ${machine.nproc} (shared with other work; load average at start ${machine.loadAverage.join(' / ')})`,
    `- Memory: ${machine.memory}`,
    `- Node.js ${machine.node} (every process: ek-sidecar, baselines, fake API, load generator), Linux ${machine.kernel}`,
  ].join('\n');
}

export interface ReadmeInput {
  readonly results: readonly SectionResult[];
  readonly failed: readonly FailedSection[];
  readonly machine: Machine;
  readonly command: string;
  readonly generatedAt: string;
  readonly findings: string;
}

/** The "Benchmarks" section the lead pastes into README.md. `findings` is hand-written analysis kept beside it. */
export function renderReadme(input: ReadmeInput): string {
  const { met, missed } = targetsSummary(input.results);
  const parts = [
    '## Benchmarks',
    '',
    `What the sidecar costs its users, measured beside baselines in the same run (\`${input.command}\`, ${input.generatedAt}).`,
    'The machine is shared and noisy, so every figure is a median of alternated rounds and the verdicts use ratios to a',
    'baseline run at the same time on the same Node.js, never an absolute time. Raw figures: `bench/out/results.json`.',
    '',
    renderMachine(input.machine),
    '',
    renderTable(input.results),
    '',
    `Targets met: ${met.length}${met.length > 0 ? ` (${met.join('; ')})` : ''}.`,
    '',
    `Targets missed: ${missed.length}${missed.length > 0 ? ` (${missed.join('; ')})` : ''}.`,
  ];
  if (input.failed.length > 0) {
    parts.push('', `Sections that failed to run: ${input.failed.map((f) => `${f.name} (${f.error})`).join('; ')}.`);
  }
  parts.push('', '### Notes from this run', '', renderNotes(input.results));
  if (input.findings.trim() !== '') parts.push('', input.findings.trim());
  return `${parts.join('\n')}\n`;
}
