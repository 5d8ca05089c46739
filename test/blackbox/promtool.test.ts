// The /metrics exposition of the real CLI, checked by `promtool check metrics` (SPEC.md: "Metrics and health")
// and by a small strict checker of the text format written here, so that the format is judged by something other
// than prom-client even on machines without promtool.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { baseArgs, findLeaks, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from '../../testkit/kubelet-volume.ts';

const FIRST = 'ek_live_promtool_first_0123456789abcdef';
const SECOND = 'ek_live_promtool_second_0123456789abcdef';
const PREFIX = 'ek_sidecar_';

// ---------------------------------------------------------------------------------------------------------------
// A strict checker of the Prometheus text exposition format 0.0.4.

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Go's strconv.ParseFloat, as the format says: so `Nan` (prom-client's spelling of NaN) and `inf` are valid too. */
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?|nan)$/i;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Readonly<Record<string, readonly string[]>> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count'] };

/** A float of the text format (FLOAT), as a number. */
function toNumber(text: string): number {
  if (/^nan$/i.test(text)) return NaN;
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  return Number(text);
}

interface Sample {
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  readonly value: number;
}

/** `name{a="b",…} value [timestamp]`, or a description of what is wrong with it. */
function parseSample(line: string): Sample | string {
  const name = /^[^{ \t]*/.exec(line)?.[0] ?? '';
  if (!NAME.test(name)) return `bad metric name "${name}"`;
  let rest = line.slice(name.length);
  const labels = new Map<string, string>();
  if (rest.startsWith('{')) {
    rest = rest.slice(1);
    while (!rest.startsWith('}')) {
      const pair = /^([^=]*)="((?:[^"\\\n]|\\.)*)"(,?)/.exec(rest);
      if (pair === null) return `bad label pair at "${rest.slice(0, 30)}"`;
      const [whole, labelName = '', raw = '', comma] = pair;
      if (!LABEL_NAME.test(labelName)) return `bad label name "${labelName}"`;
      if (labelName.startsWith('__')) return `reserved label name "${labelName}"`;
      if (labels.has(labelName)) return `label "${labelName}" repeated`;
      if (/\\[^\\"n]/.test(raw.replace(/\\\\/g, ''))) return `bad escape in label value "${raw}"`;
      labels.set(labelName, raw.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c)));
      rest = rest.slice(whole.length);
      if (comma === '' && !rest.startsWith('}')) return `missing comma after label "${labelName}"`;
    }
    rest = rest.slice(1);
  }
  const tail = /^[ \t]+(\S+)(?:[ \t]+(\S+))?$/.exec(rest);
  if (tail === null) return `no value after "${name}"`;
  const [, value = '', timestamp] = tail;
  if (!FLOAT.test(value)) return `bad value "${value}"`;
  if (timestamp !== undefined && !/^-?\d+$/.test(timestamp)) return `bad timestamp "${timestamp}"`;
  return { name, labels, value: toNumber(value) };
}

/** Every problem found in an exposition; empty when it is well-formed and follows the naming rules of SPEC.md. */
function checkExposition(text: string): string[] {
  const problems: string[] = [];
  if (!text.endsWith('\n')) problems.push('the exposition does not end with a newline');
  if (text.includes('\r')) problems.push('carriage return in the exposition');
  const help = new Set<string>();
  const types = new Map<string, string>();
  const seenSamples = new Set<string>();
  const finished = new Set<string>();
  const samples = new Map<string, Sample[]>();
  let family: string | undefined;
  const familyOf = (name: string): string => {
    if (types.has(name)) return name;
    for (const [type, suffixes] of Object.entries(SUFFIXES)) {
      const suffix = suffixes.find((s) => name.endsWith(s));
      const base = suffix === undefined ? '' : name.slice(0, -suffix.length);
      if (types.get(base) === type) return base;
    }
    return name;
  };
  const enter = (name: string, where: string): void => {
    if (family !== name && family !== undefined) finished.add(family);
    if (finished.has(name)) problems.push(`${where}: "${name}" is not contiguous`);
    family = name;
  };
  for (const [index, line] of text.replace(/\n$/, '').split('\n').entries()) {
    const where = `line ${String(index + 1)}`;
    if (line.trim() === '') continue;
    const meta = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
    if (meta !== null) {
      const [, kind = '', name = '', arg = ''] = meta;
      if (!NAME.test(name)) problems.push(`${where}: bad metric name "${name}"`);
      enter(name, where);
      if (samples.has(name)) problems.push(`${where}: ${kind} of "${name}" after its samples`);
      if (kind === 'HELP') {
        if (help.has(name)) problems.push(`${where}: second HELP for "${name}"`);
        if (arg.trim() === '') problems.push(`${where}: empty HELP for "${name}"`);
        if (/\\[^\\n]/.test(arg.replace(/\\\\/g, ''))) problems.push(`${where}: bad escape in HELP of "${name}"`);
        help.add(name);
      } else {
        if (types.has(name)) problems.push(`${where}: second TYPE for "${name}"`);
        if (!TYPES.has(arg)) problems.push(`${where}: unknown TYPE "${arg}" for "${name}"`);
        types.set(name, arg);
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = parseSample(line);
    if (typeof sample === 'string') {
      problems.push(`${where}: ${sample}`);
      continue;
    }
    const name = familyOf(sample.name);
    enter(name, where);
    const key = `${sample.name}{${[...sample.labels].map(([k, v]) => `${k}=${JSON.stringify(v)}`).sort().join(',')}}`;
    if (seenSamples.has(key)) problems.push(`${where}: duplicate series ${key}`);
    seenSamples.add(key);
    samples.set(name, [...(samples.get(name) ?? []), sample]);
  }
  for (const name of new Set([...types.keys(), ...samples.keys()])) problems.push(...checkFamily(name, types.get(name), help.has(name), samples.get(name) ?? []));
  return problems;
}

function checkFamily(name: string, type: string | undefined, hasHelp: boolean, samples: readonly Sample[]): string[] {
  const problems: string[] = [];
  if (!name.startsWith(PREFIX)) problems.push(`"${name}" lacks the ${PREFIX} prefix`);
  if (type === undefined) problems.push(`"${name}" has no TYPE`);
  if (!hasHelp) problems.push(`"${name}" has no HELP`);
  if (type === 'counter' && !name.endsWith('_total')) problems.push(`counter "${name}" does not end in _total`);
  if (type !== 'counter' && name.endsWith('_total')) problems.push(`${String(type)} "${name}" ends in _total`);
  if (type === 'counter' && samples.some((s) => !(s.value >= 0))) problems.push(`counter "${name}" has a negative or NaN value`);
  if (type === 'histogram') problems.push(...checkHistogram(name, samples));
  return problems;
}

/** Per label set (le aside): buckets ascending in le and cumulative, a +Inf bucket equal to _count, and a _sum. */
function checkHistogram(name: string, samples: readonly Sample[]): string[] {
  const problems: string[] = [];
  const groups = new Map<string, Sample[]>();
  for (const sample of samples) {
    const key = [...sample.labels].filter(([k]) => k !== 'le').map(([k, v]) => `${k}=${v}`).sort().join(',');
    groups.set(key, [...(groups.get(key) ?? []), sample]);
  }
  for (const [key, group] of groups) {
    const series = `${name}{${key}}`;
    const buckets = group.filter((s) => s.name === `${name}_bucket`);
    const count = group.find((s) => s.name === `${name}_count`);
    if (buckets.some((b) => !b.labels.has('le'))) problems.push(`${series}: a bucket without le`);
    if (group.some((s) => s.name !== `${name}_bucket` && s.labels.has('le'))) problems.push(`${series}: le on a non-bucket sample`);
    const bounds = buckets.map((b) => toNumber(b.labels.get('le') ?? 'NaN'));
    if (bounds.some((b, i) => Number.isNaN(b) || (i > 0 && b <= (bounds[i - 1] ?? -Infinity)))) problems.push(`${series}: le bounds not ascending`);
    if (buckets.some((b, i) => i > 0 && b.value < (buckets[i - 1]?.value ?? 0))) problems.push(`${series}: buckets not cumulative`);
    if (bounds.at(-1) !== Infinity) problems.push(`${series}: no +Inf bucket`);
    if (count === undefined || buckets.at(-1)?.value !== count.value) problems.push(`${series}: +Inf bucket differs from _count`);
    if (!group.some((s) => s.name === `${name}_sum`)) problems.push(`${series}: no _sum`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------

/** The promtool binary on PATH, or undefined. */
async function findPromtool(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '')) {
    const candidate = join(dir, 'promtool');
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

/** `promtool check metrics` with `text` on stdin: its exit code and everything it said. */
function promtool(binary: string, text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => { resolve({ code, output }); });
    child.stdin.end(text);
  });
}

/** promtool's lines: SPEC.md wants none, prom-client's default runtime series included. */
function notes(output: string): string[] {
  return output.split('\n').filter((line) => line.trim() !== '');
}

describe('the /metrics exposition of the real CLI', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let daemon: Daemon;
  let text = '';
  let contentType = '';
  before(async () => {
    api = await startFakeApi({ acceptAnyToken: true });
    dir = await tempDir();
    const secret = join(dir.path, 'secret');
    const jwtFile = join(dir.path, 'jwt');
    daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile: await createSecretVolume(secret, FIRST), jwtFile }));
    const ports = await daemon.ports();
    const metricsUrl = `http://127.0.0.1:${String(ports.metrics)}`;
    await waitFor(async () => (await fetch(`${metricsUrl}/readyz`, { signal: AbortSignal.timeout(5_000) })).status === 200, 5_000, () => 'ready');
    // Some traffic, so that labelled counters and the histogram have samples: served, refused and unknown
    // requests, and a failed exchange (500) before the new token's success.
    const tokenUrl = `http://127.0.0.1:${String(ports.token)}`;
    await fetch(`${tokenUrl}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' }, signal: AbortSignal.timeout(5_000) });
    await fetch(`${tokenUrl}/v1/token`, { signal: AbortSignal.timeout(5_000) });
    await fetch(`${tokenUrl}/no-such-path`, { signal: AbortSignal.timeout(5_000) });
    const first = await readFile(jwtFile, 'utf8');
    api.enqueue('500');
    await rotateSecretVolume(secret, SECOND);
    await waitFor(async () => (await readFile(jwtFile, 'utf8')) !== first, 6_000, () => 'the second token\'s JWT');
    const response = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    contentType = response.headers.get('content-type') ?? '';
    text = await response.text();
  });
  after(async () => {
    if (daemon.child.exitCode === null) assert.equal((await daemon.stop()).code, 0);
    await api.close();
    await dir.remove();
  });

  test('the scrape has traffic in it and the text-format content type', () => {
    assert.equal(contentType, 'text/plain; version=0.0.4; charset=utf-8');
    assert.match(text, /^ek_sidecar_exchanges_total\{result="server_error"\} 1$/m);
    assert.match(text, /^ek_sidecar_token_requests_total\{[^}]*code="403"[^}]*\} 1$/m);
    assert.match(text, /^ek_sidecar_exchange_duration_seconds_count 3$/m);
  });

  test('promtool check metrics: nothing to say about our metrics', async (t) => {
    const binary = await findPromtool();
    if (binary === undefined) {
      t.skip('promtool not installed: apt-get install prometheus');
      return;
    }
    const { code, output } = await promtool(binary, text);
    assert.equal(code, 0, output);
    assert.deepEqual(notes(output), [], `promtool said:\n${output}`);
  });

  test('promtool is really reading the scrape: an appended bad family is reported', async (t) => {
    const binary = await findPromtool();
    if (binary === undefined) {
      t.skip('promtool not installed: apt-get install prometheus');
      return;
    }
    const bad = `${text}# HELP ek_sidecar_bad_writes Writes.\n# TYPE ek_sidecar_bad_writes counter\nek_sidecar_bad_writes 1\n`;
    const { output } = await promtool(binary, bad);
    assert.deepEqual(notes(output).map((line) => line.split(' ')[0]), ['ek_sidecar_bad_writes'], output);
    const broken = await promtool(binary, `${text}ek_sidecar_broken{a="x} 1\n`);
    assert.equal(broken.code, 1, 'a parse error fails the check');
  });

  test('the strict checker finds nothing wrong with the scrape', () => {
    assert.deepEqual(checkExposition(text), []);
    const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1] ?? ''} ${m[2] ?? ''}`);
    const expectedFamilies = [
      'ek_sidecar_exchanges_total counter', 'ek_sidecar_exchange_duration_seconds histogram', 'ek_sidecar_ready gauge',
      'ek_sidecar_process_cpu_seconds_total counter', 'ek_sidecar_build_info gauge', 'ek_sidecar_upstream_rate_limit_remaining gauge',
      'ek_sidecar_proxy_requests_total counter', 'ek_sidecar_proxy_request_duration_seconds histogram',
    ];
    for (const expected of expectedFamilies) {
      assert.ok(families.includes(expected), `${expected} is declared`);
    }
  });

  test('no token or JWT in the scrape or in anything printed', () => {
    const secrets = [FIRST, SECOND, ...api.issued()];
    assert.equal(api.issued().length, 2);
    assert.deepEqual(findLeaks(secrets, [text]), []);
    assert.deepEqual(findLeaks(secrets), []);
  });
});

describe('the strict checker rejects what the text format forbids', () => {
  const ok = '# HELP ek_sidecar_g A gauge.\n# TYPE ek_sidecar_g gauge\nek_sidecar_g 1\n';
  const histogram = (buckets: string, count = 3): string => `# HELP ek_sidecar_h_seconds H.\n# TYPE ek_sidecar_h_seconds histogram\n${buckets}ek_sidecar_h_seconds_sum 0.5\nek_sidecar_h_seconds_count ${String(count)}\n`;
  const cases: readonly (readonly [string, string, RegExp])[] = [
    ['no TYPE', '# HELP ek_sidecar_g A gauge.\nek_sidecar_g 1\n', /no TYPE/],
    ['no HELP', '# TYPE ek_sidecar_g gauge\nek_sidecar_g 1\n', /no HELP/],
    ['a counter without _total', '# HELP ek_sidecar_c C.\n# TYPE ek_sidecar_c counter\nek_sidecar_c 1\n', /does not end in _total/],
    ['a gauge with _total', '# HELP ek_sidecar_g_total G.\n# TYPE ek_sidecar_g_total gauge\nek_sidecar_g_total 1\n', /ends in _total/],
    ['no prefix', '# HELP up Up.\n# TYPE up gauge\nup 1\n', /prefix/],
    ['a bad metric name', ok + 'ek-sidecar_g 1\n', /bad metric name/],
    ['a bad label name', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g{1a="x"} 1'), /bad label name/],
    ['a reserved label name', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g{__name__="x"} 1'), /reserved/],
    ['an unquoted label value', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g{a=x} 1'), /bad label pair/],
    ['a bad escape', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g{a="\\q"} 1'), /bad escape/],
    ['labels without a comma', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g{a="x" b="y"} 1'), /missing comma|bad label/],
    ['a bad value', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g one'), /bad value/],
    ['a bad timestamp', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g 1 soon'), /bad timestamp/],
    ['no value', ok.replace('ek_sidecar_g 1', 'ek_sidecar_g'), /no value/],
    ['a duplicate series', ok + 'ek_sidecar_g 2\n', /duplicate/],
    ['TYPE after the samples', '# HELP ek_sidecar_g A gauge.\nek_sidecar_g 1\n# TYPE ek_sidecar_g gauge\n', /after its samples/],
    ['two TYPE lines', ok.replace('ek_sidecar_g 1', '# TYPE ek_sidecar_g gauge\nek_sidecar_g 1'), /second TYPE/],
    ['an unknown type', ok.replace('gauge\n', 'meter\n'), /unknown TYPE/],
    ['interleaved families', ok + ok.replace(/ek_sidecar_g/g, 'ek_sidecar_k') + 'ek_sidecar_g{a="b"} 1\n', /not contiguous/],
    ['no final newline', ok.slice(0, -1), /newline/],
    ['a negative counter', '# HELP ek_sidecar_c_total C.\n# TYPE ek_sidecar_c_total counter\nek_sidecar_c_total -1\n', /negative/],
    ['a histogram without +Inf', histogram('ek_sidecar_h_seconds_bucket{le="1"} 3\n'), /\+Inf/],
    ['buckets not cumulative', histogram('ek_sidecar_h_seconds_bucket{le="1"} 3\nek_sidecar_h_seconds_bucket{le="+Inf"} 2\n', 2), /cumulative/],
    ['+Inf differs from _count', histogram('ek_sidecar_h_seconds_bucket{le="1"} 1\nek_sidecar_h_seconds_bucket{le="+Inf"} 2\n'), /differs from _count/],
  ];
  test('a well-formed sample exposition passes', () => {
    assert.deepEqual(checkExposition(ok + histogram('ek_sidecar_h_seconds_bucket{le="0.5"} 1\nek_sidecar_h_seconds_bucket{le="+Inf"} 3\n')), []);
    for (const special of ['NaN', 'Nan', '+Inf', '-Inf', 'Inf', '1e-7', '.5', '-0']) {
      assert.deepEqual(checkExposition(ok.replace('ek_sidecar_g 1', `ek_sidecar_g ${special}`)), [], special);
    }
    assert.deepEqual(checkExposition('# HELP ek_sidecar_e_total Esc \\\\ \\n.\n# TYPE ek_sidecar_e_total counter\nek_sidecar_e_total{a="q\\"\\\\\\n",} 1 1700000000000\n'), []);
  });
  for (const [what, input, expected] of cases) {
    test(what, () => {
      const problems = checkExposition(input);
      assert.ok(problems.some((p) => expected.test(p)), `expected ${String(expected)} among ${JSON.stringify(problems)}`);
    });
  }
});
