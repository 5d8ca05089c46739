// Monitoring as code (deploy/monitoring): the alert rules pass `promtool check rules` and their unit tests
// (`promtool test rules`), the PrometheusRule wrapping them is the same rules, and every metric (and every label value
// matched on) that the rules and the Grafana dashboard name exists in a real scrape of the daemon, so that a renamed
// metric fails here. The dashboard's queries must parse as PromQL too.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { baseArgs, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.ts';
import { startFakeApi, type FakeApi } from '../../testkit/fake-api/server.ts';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';
import { asArray, field, missingTool, projectPath, readProjectFile, run, yamlObjects, type Obj } from './helpers.ts';

const promtoolMissing = missingTool('promtool', ['--version']);
const monitoring = (...parts: string[]): string => projectPath('deploy', 'monitoring', ...parts);
const rulesFile = parse(readProjectFile('deploy', 'monitoring', 'ek-sidecar.rules.yaml')) as Obj;
const dashboard = JSON.parse(readProjectFile('deploy', 'monitoring', 'grafana-dashboard.json')) as Obj;

/** Every PromQL expression of the rules. */
function ruleExpressions(): string[] {
  return asArray(rulesFile.groups).flatMap((group) => asArray(field(group, 'rules')).map((rule) => String(field(rule, 'expr'))));
}

/** Every query of the dashboard: panel targets (rows included) and templating variables. */
function dashboardQueries(): { panels: string[]; variables: string[] } {
  const panels = asArray(dashboard.panels).flatMap((panel) => [panel, ...asArray(field(panel, 'panels'))]);
  const targets = panels.flatMap((panel) => asArray(field(panel, 'targets')).map((target) => String(field(target, 'expr'))));
  const variables = asArray(field(dashboard.templating, 'list'))
    .filter((variable) => field(variable, 'type') === 'query')
    .map((variable) => String(field(field(variable, 'query'), 'query')));
  return { panels: targets, variables };
}

/** Grafana's variables replaced by what Prometheus would receive, so that promtool can parse the query. */
function asPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1h').replace(/\$(namespace|pod)\b/g, '.*');
}

interface Family {
  readonly type: string;
  /** Label name → every value seen in the scrape. */
  readonly labels: Map<string, Set<string>>;
}

/** The metric families of an exposition (from # TYPE), with the label values of their samples. */
function families(exposition: string): Map<string, Family> {
  const found = new Map<string, Family>();
  for (const line of exposition.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] !== undefined && type[2] !== undefined) found.set(type[1], { type: type[2], labels: new Map() });
  }
  for (const line of exposition.split('\n')) {
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
    if (sample?.[1] === undefined) continue;
    const family = found.get(sample[1]) ?? found.get(sample[1].replace(/_(bucket|sum|count)$/, ''));
    for (const [, name = '', value = ''] of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      const values = family?.labels.get(name) ?? new Set<string>();
      values.add(value);
      family?.labels.set(name, values);
    }
  }
  return found;
}

/** Problems with the metric names and label values an expression uses, against the scrape's families. */
function unknownReferences(expr: string, known: ReadonlyMap<string, Family>): string[] {
  const problems: string[] = [];
  for (const match of expr.matchAll(/\b(ek_sidecar_\w+)(?:\{([^}]*)\})?/g)) {
    const name = match[1] ?? '';
    const base = name.replace(/_(bucket|sum|count)$/, '');
    const family = known.get(name) ?? (known.get(base)?.type === 'histogram' ? known.get(base) : undefined);
    if (family === undefined) {
      problems.push(`${name} is not in the scrape`);
      continue;
    }
    // Label values matched literally (= or =~ with plain alternatives) must be values the daemon exports. The scrape
    // target adds namespace and pod; le belongs to the histogram.
    for (const [, label = '', operator = '', value = ''] of (match[2] ?? '').matchAll(/(\w+)\s*(=~|=)\s*"([^"]*)"/g)) {
      if (['namespace', 'pod', 'le', 'job', 'instance'].includes(label)) continue;
      const exported = family.labels.get(label);
      if (exported === undefined) {
        problems.push(`${name} has no label ${label}`);
        continue;
      }
      const wanted = operator === '=~' ? value.split('|') : [value];
      for (const item of wanted) if (!exported.has(item)) problems.push(`${name}{${label}="${item}"} is never exported`);
    }
  }
  return problems;
}

void describe('deploy/monitoring: alert rules', { skip: promtoolMissing }, () => {
  void test('promtool check rules accepts the rules file', () => {
    const result = run('promtool', ['check', 'rules', monitoring('ek-sidecar.rules.yaml')]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS: 9 rules found/);
  });

  void test('promtool test rules: every alert fires when it should and stays quiet when it should', () => {
    const result = run('promtool', ['test', 'rules', monitoring('ek-sidecar.rules.test.yaml')]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    const tested = new Set([...readProjectFile('deploy', 'monitoring', 'ek-sidecar.rules.test.yaml').matchAll(/alertname: (\w+)/g)].map((match) => match[1]));
    const alerts = asArray(rulesFile.groups).flatMap((group) => asArray(field(group, 'rules')).map((rule) => field(rule, 'alert')));
    for (const alert of alerts) assert.ok(tested.has(String(alert)), `${String(alert)} has no unit test`);
  });

  void test('the dashboard\'s queries parse as PromQL', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ek-sidecar-dashboard-'));
    t.after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    const rules = dashboardQueries().panels.map((expr, index) => ({ record: `dashboard:query_${String(index)}`, expr: asPromql(expr) }));
    writeFileSync(join(dir, 'dashboard.rules.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    const result = run('promtool', ['check', 'rules', join(dir, 'dashboard.rules.yaml')]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });
});

void describe('deploy/monitoring: files', () => {
  void test('prometheusrule.yaml is a PrometheusRule holding exactly the rules file', () => {
    const [rule] = yamlObjects(readProjectFile('deploy', 'monitoring', 'prometheusrule.yaml'));
    assert.equal(rule?.kind, 'PrometheusRule');
    assert.deepEqual(rule.spec, rulesFile);
  });

  void test('every alert has a severity, a summary and a description', () => {
    for (const rule of asArray(rulesFile.groups).flatMap((group) => asArray(field(group, 'rules')))) {
      assert.match(String(field(field(rule, 'labels'), 'severity')), /^(warning|critical)$/, String(field(rule, 'alert')));
      assert.ok(field(field(rule, 'annotations'), 'summary'));
      assert.ok(field(field(rule, 'annotations'), 'description'));
    }
  });

  void test('the dashboard is a Grafana dashboard with a data-source variable and a query in every panel', () => {
    assert.equal(dashboard.uid, 'ek-sidecar');
    assert.equal(typeof dashboard.schemaVersion, 'number');
    const names = asArray(field(dashboard.templating, 'list')).map((variable) => field(variable, 'name'));
    assert.deepEqual(names, ['datasource', 'namespace', 'pod']);
    for (const panel of asArray(dashboard.panels).filter((candidate) => field(candidate, 'type') !== 'row')) {
      assert.ok(asArray(field(panel, 'targets')).length > 0, String(field(panel, 'title')));
      assert.equal(field(field(panel, 'datasource'), 'uid'), '${datasource}');
    }
  });
});

void describe('every metric the rules and the dashboard name is in a real scrape of the daemon', () => {
  let api: FakeApi;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let daemon: Daemon;
  let known = new Map<string, Family>();

  before(async () => {
    api = await startFakeApi({ acceptAnyToken: true });
    dir = await tempDir();
    const jwtFile = join(dir.path, 'jwt');
    daemon = startDaemon(baseArgs({ apiUrl: api.url, tokenFile: await createSecretVolume(join(dir.path, 'secret'), 'ek_live_monitoring_0123456789abcdef'), jwtFile }));
    const ports = await daemon.ports();
    const metricsUrl = `http://127.0.0.1:${String(ports.metrics)}`;
    await waitFor(async () => (await fetch(`${metricsUrl}/readyz`, { signal: AbortSignal.timeout(5_000) })).status === 200, 5_000, () => 'ready');
    // A token API request, so that its labelled counter has a sample.
    await fetch(`http://127.0.0.1:${String(ports.token)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' }, signal: AbortSignal.timeout(5_000) });
    const response = await fetch(`${metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    known = families(await response.text());
  });
  after(async () => {
    if (daemon.child.exitCode === null) assert.equal((await daemon.stop()).code, 0);
    await api.close();
    await dir.remove();
  });

  void test('the scrape is the daemon\'s (sanity)', () => {
    assert.ok(known.has('ek_sidecar_ready'));
    assert.ok(known.size > 15);
  });

  void test('the alert rules', () => {
    assert.deepEqual(ruleExpressions().flatMap((expr) => unknownReferences(expr, known)), []);
  });

  void test('the dashboard\'s panels and variables', () => {
    const { panels, variables } = dashboardQueries();
    assert.ok(panels.length > 15);
    assert.deepEqual([...panels, ...variables].flatMap((expr) => unknownReferences(expr, known)), []);
    // Only ek-sidecar's metrics: nothing that depends on how a cluster labels its scrape jobs (no `up{job=…}`).
    for (const expr of [...panels, ...variables]) {
      const bare = expr.replace(/^label_values\((.*),\s*\w+\)$/, '$1').replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, '').replace(/\b(by|without)\s*\([^)]*\)/g, '').replace(/\[[^\]]*\]/g, '');
      for (const [name = ''] of bare.matchAll(/\b[a-zA-Z_:][\w:]*\b(?!\s*\()/g)) {
        assert.ok(name.startsWith('ek_sidecar_') || ['or', 'and', 'unless'].includes(name), `${name} in ${expr}`);
      }
    }
  });

  void test('a renamed metric would be caught', () => {
    assert.deepEqual(unknownReferences('ek_sidecar_jwt_expiry_seconds > 0', known), ['ek_sidecar_jwt_expiry_seconds is not in the scrape']);
    assert.deepEqual(unknownReferences('ek_sidecar_exchanges_total{result="throttled"}', known), ['ek_sidecar_exchanges_total{result="throttled"} is never exported']);
  });
});
