// The Helm chart in helm/ek-sidecar, checked without a helm binary (helm-render.test.ts renders it when helm is
// there): Chart.yaml, values.yaml against values.schema.json, also composed the way Helm composes a subchart's values,
// every .Values path the templates use, template syntax basics, the sidecar wiring in the templates, and agreement of
// the chart's defaults with the kustomize Component and of its files/ with deploy/monitoring.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Ajv } from 'ajv';
import { isMap, isPair, isScalar, parse, parseDocument, type YAMLMap } from 'yaml';
import { field, isObject, named, podSpec, readPackageJson, readProjectFile, yamlObjects } from './helpers.ts';

const chartDir = ['helm', 'ek-sidecar'] as const;
const read = (...parts: string[]): string => readProjectFile(...chartDir, ...parts);

const chart = parse(read('Chart.yaml')) as Record<string, unknown>;
const valuesText = read('values.yaml');
const values = parse(valuesText) as Record<string, unknown>;
const schema = JSON.parse(read('values.schema.json')) as Record<string, unknown>;
const templateNames = readdirSync(new URL('../../helm/ek-sidecar/templates/', import.meta.url)).filter((name) => /\.(yaml|tpl|txt)$/.test(name));
const templates = new Map(templateNames.map((name) => [name, read('templates', name)]));
const allTemplateText = [...templates.values()].join('\n');

/** Template text without {{/* comments *\/}}, which may quote template syntax. */
function withoutComments(text: string): string {
  return text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
}

function validator(): (data: unknown) => string[] {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  const validate = ajv.compile(schema);
  return (data) => (validate(data) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ''}`));
}

void describe('helm/ek-sidecar', () => {
  void test('Chart.yaml: apiVersion v2, application, Kubernetes >= 1.29, appVersion = package version', () => {
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.name, 'ek-sidecar');
    assert.equal(chart.type, 'application');
    assert.equal(chart.kubeVersion, '>=1.29.0-0');
    assert.match(String(chart.version), /^\d+\.\d+\.\d+(-[\w.]+)?$/);
    assert.equal(chart.appVersion, readPackageJson().version);
    // The tag is in values.yaml, not derived from .Chart: as a subchart, .Chart would be the parent's.
    assert.equal(field(values.image, 'tag'), chart.appVersion);
    assert.ok(typeof chart.description === 'string' && chart.description.length > 0);
  });

  void test('values.yaml is valid against values.schema.json (draft-07)', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.deepEqual(validator()(values), []);
  });

  void test('as a subchart: the values Helm composes (global from the parent, enabled from a condition) are valid', () => {
    // What Helm hands a dependency aliased ekSidecar with `condition: ekSidecar.enabled`: its own defaults, the
    // parent's ekSidecar values over them, `global` copied from the parent, and `enabled` itself.
    const parentValues = { global: { imageRegistry: 'registry.example.com', storageClass: 'fast' }, ekSidecar: { enabled: true, image: { repository: 'registry.example.com/ek-sidecar' } } };
    const composed = { ...structuredClone(values), ...parentValues.ekSidecar, image: { ...(values.image as object), ...parentValues.ekSidecar.image }, global: parentValues.global };
    assert.deepEqual(validator()(composed), []);
    assert.deepEqual(validator()({ ...values, global: {} }), [], 'global without a condition');
  });

  void test('values.schema.json refuses unknown keys, latest and empty tags, a bad auth mode, and a created Secret without a token', () => {
    const validate = validator();
    assert.notDeepEqual(validate({ ...values, imagee: {} }), []);
    for (const tag of ['latest', '']) {
      const bad = structuredClone(values);
      (bad.image as Record<string, unknown>).tag = tag;
      assert.notDeepEqual(validate(bad), [], `tag ${JSON.stringify(tag)}`);
    }
    const mode = structuredClone(values);
    (mode.auth as Record<string, unknown>).mode = 'token';
    assert.notDeepEqual(validate(mode), []);
    const noToken = structuredClone(values);
    const apiToken = field(noToken.auth, 'apiToken') as Record<string, unknown>;
    apiToken.create = true;
    assert.notDeepEqual(validate(noToken), []);
    apiToken.value = 'ek_live_example';
    assert.deepEqual(validate(noToken), []);
  });

  void test('the standalone demo is off by default, and so is the readiness probe; the startup budget is 15 minutes', () => {
    assert.equal(field(values.demo, 'enabled'), false);
    assert.equal(field(field(values.sidecar, 'readinessProbe'), 'enabled'), false);
    const startup = field(values.sidecar, 'startupProbe');
    assert.equal(Number(field(startup, 'periodSeconds')) * Number(field(startup, 'failureThreshold')), 900);
  });

  void test('files/ holds the very rules and dashboard of deploy/monitoring', () => {
    assert.equal(read('files', 'ek-sidecar.rules.yaml'), readProjectFile('deploy', 'monitoring', 'ek-sidecar.rules.yaml'), 'cp deploy/monitoring/ek-sidecar.rules.yaml helm/ek-sidecar/files/');
    assert.equal(read('files', 'grafana-dashboard.json'), readProjectFile('deploy', 'monitoring', 'grafana-dashboard.json'), 'cp deploy/monitoring/grafana-dashboard.json helm/ek-sidecar/files/');
  });

  void test('the named templates for embedding never read .Chart (a parent chart\'s context has the parent\'s)', () => {
    const helpers = templates.get('_helpers.tpl') ?? '';
    const embedding = ['ek-sidecar.container', 'ek-sidecar.volumes', 'ek-sidecar.appEnv', 'ek-sidecar.appVolumeMounts', 'ek-sidecar.podLabels', 'ek-sidecar.name', 'ek-sidecar.fullname', 'ek-sidecar.image', 'ek-sidecar.brokerUrl', 'ek-sidecar.optionEnv', 'ek-sidecar.validate'];
    for (const name of embedding) {
      const body = new RegExp(`\\{\\{-? define "${name.replace('.', '\\.')}" -?\\}\\}([\\s\\S]*?)\\{\\{-? end -?\\}\\}\\n\\n`).exec(helpers)?.[1];
      assert.ok(body !== undefined, `${name} is not defined`);
      assert.doesNotMatch(withoutComments(body), /\.Chart\b/, name);
    }
  });

  void test('every value in values.yaml has a comment', () => {
    const missing: string[] = [];
    const walk = (map: YAMLMap, path: string): void => {
      map.items.forEach((pair, index) => {
        if (!isPair(pair) || !isScalar(pair.key)) return;
        const key = `${path}${String(pair.key.value)}`;
        const commented =
          Boolean(pair.key.commentBefore) ||
          (isScalar(pair.value) && Boolean(pair.value.comment)) ||
          (index === 0 && Boolean(map.commentBefore));
        if (!commented) missing.push(key);
        if (isMap(pair.value)) walk(pair.value, `${key}.`);
      });
    };
    const document = parseDocument(valuesText);
    assert.ok(isMap(document.contents));
    walk(document.contents, '');
    assert.deepEqual(missing, []);
  });

  void test('every .Values path used by the templates exists in values.yaml', () => {
    const missing = new Set<string>();
    for (const match of withoutComments(allTemplateText).matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      const path = (match[1] ?? '').slice(1).split('.');
      let node: unknown = values;
      for (const key of path) {
        if (!isObject(node) || !(key in node)) {
          missing.add(path.join('.'));
          break;
        }
        node = node[key];
      }
    }
    assert.deepEqual([...missing], []);
  });

  void test('every value in values.yaml is used by a template', () => {
    const unused: string[] = [];
    const used = withoutComments(allTemplateText);
    const walk = (node: Record<string, unknown>, path: string): void => {
      for (const [key, value] of Object.entries(node)) {
        const full = `${path}.${key}`;
        // Used as a whole (toYaml .Values.sidecar.resources), or else look at its children.
        if (new RegExp(`\\.Values${full.replace(/\./g, '\\.')}(?![\\w.])`).test(used)) continue;
        if (isObject(value) && Object.keys(value).length > 0) walk(value, full);
        else unused.push(full.slice(1));
      }
    };
    walk(values, '');
    assert.deepEqual(unused, []);
  });

  void test('template actions are balanced: {{ and }}, and every if/with/range/define has its end', () => {
    for (const [name, text] of templates) {
      const body = withoutComments(text);
      assert.equal(body.split('{{').length, body.split('}}').length, `${name}: unbalanced {{ }}`);
      const actions = [...body.matchAll(/\{\{-?\s*(if|with|range|define|block|end)\b/g)].map((match) => match[1]);
      const opened = actions.filter((action) => action !== 'end').length;
      const closed = actions.filter((action) => action === 'end').length;
      assert.equal(opened, closed, `${name}: ${String(opened)} blocks opened, ${String(closed)} ended`);
    }
  });

  void test('every included template is defined, and the embedding templates exist', () => {
    const defined = new Set([...allTemplateText.matchAll(/\{\{-?\s*define\s+"([^"]+)"/g)].map((match) => match[1]));
    for (const name of ['ek-sidecar.name', 'ek-sidecar.fullname', 'ek-sidecar.labels', 'ek-sidecar.selectorLabels', 'ek-sidecar.container', 'ek-sidecar.volumes']) {
      assert.ok(defined.has(name), `${name} is not defined`);
    }
    for (const match of withoutComments(allTemplateText).matchAll(/\binclude\s+"([^"]+)"/g)) {
      assert.ok(defined.has(match[1]), `include "${String(match[1])}" has no define`);
    }
    assert.ok(templates.has('NOTES.txt'));
  });

  void test('the templates never mount with subPath (the kubelet never updates subPath mounts)', () => {
    for (const [name, text] of templates) assert.doesNotMatch(text, /^\s*-?\s*subPath\s*:/m, name);
  });

  void test('the sidecar template is a native sidecar with the probes, volumes and env the product needs', () => {
    const helpers = templates.get('_helpers.tpl') ?? '';
    const container = /\{\{-? define "ek-sidecar\.container" -?\}\}([\s\S]*?)\{\{-? end -?\}\}\n\n/.exec(helpers)?.[1] ?? '';
    assert.match(container, /^ {2}restartPolicy: Always$/m);
    assert.match(container, /startupProbe:\n\s+httpGet:\n\s+path: \/readyz\n\s+port: \{\{ \.Values\.ports\.metrics \}\}/);
    assert.match(container, /livenessProbe:\n\s+httpGet:\n\s+path: \/healthz/);
    assert.match(container, /\{\{- if \.Values\.sidecar\.readinessProbe\.enabled \}\}\n\s+readinessProbe:\n\s+httpGet:\n\s+path: \/readyz/);
    for (const name of ['EK_TOKEN_FILE', 'EK_JWT_FILE', 'EK_LISTEN', 'EK_METRICS_LISTEN', 'EK_AUTH', 'EK_OIDC_TOKEN_FILE', 'EK_WORKSPACE']) {
      assert.match(container, new RegExp(`- name: ${name}\\n`));
    }
    assert.match(helpers, /emptyDir:\n\s+medium: Memory/);
    assert.match(helpers, /define "ek-sidecar\.appVolumeMounts"[\s\S]*?readOnly: true/);
    const deployment = templates.get('demo-deployment.yaml') ?? '';
    assert.match(deployment, /initContainers:\n\s+\{\{- include "ek-sidecar\.container" \. \| nindent 8 \}\}/);
    assert.match(deployment, /enableServiceLinks: false/);
    assert.match(deployment, /terminationGracePeriodSeconds:/);
  });

  void test('monitoring objects and the broker are off by default', () => {
    for (const name of ['service', 'podMonitor', 'serviceMonitor', 'prometheusRule', 'grafanaDashboard']) assert.equal(field(field(values.metrics, name), 'enabled'), false, name);
    assert.equal(field(values.broker, 'enabled'), false);
    assert.match(templates.get('podmonitor.yaml') ?? '', /^\{\{- if \.Values\.metrics\.podMonitor\.enabled \}\}/);
    assert.match(templates.get('service.yaml') ?? '', /^\{\{- if \.Values\.metrics\.service\.enabled \}\}/);
  });

  void test('the chart\'s sidecar defaults agree with the kustomize Component (resources, security, probes, paths, ports)', () => {
    const component = yamlObjects(readProjectFile('deploy', 'kubernetes', 'components', 'sidecar', 'sidecar.yaml'))[0] ?? {};
    const pod = podSpec(component);
    const sidecar = named(pod.initContainers, 'ek-sidecar');
    const chartSidecar = values.sidecar as Record<string, unknown>;
    assert.deepEqual(sidecar.resources, chartSidecar.resources);
    assert.deepEqual(sidecar.securityContext, chartSidecar.securityContext);
    for (const probe of ['startupProbe', 'livenessProbe']) {
      const { httpGet, ...timing } = sidecar[probe] as Record<string, unknown>;
      assert.deepEqual(timing, chartSidecar[probe], probe);
      assert.equal(field(httpGet, 'port'), field(values.ports, 'metrics'));
    }
    const env = new Map((sidecar.env as Record<string, unknown>[]).map((item) => [field(item, 'name'), field(item, 'value')]));
    assert.equal(env.get('EK_TOKEN_FILE'), `${String(field(values.paths, 'tokenDir'))}/token`);
    assert.equal(env.get('EK_JWT_FILE'), `${String(field(values.paths, 'jwtDir'))}/${String(field(values.paths, 'jwtFileName'))}`);
    assert.equal(env.get('EK_JWT_FILE_MODE'), field(values.config, 'jwtFileMode'));
    assert.equal(field(field(named(pod.volumes, 'ek-jwt'), 'emptyDir'), 'sizeLimit'), field(values.jwtVolume, 'sizeLimit'));
  });
});
