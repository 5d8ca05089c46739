// The Helm chart in helm/ek-sidecar, checked without a helm binary: Chart.yaml, values.yaml against
// values.schema.json, every .Values path the templates use, template syntax basics, the sidecar wiring in the
// templates, and agreement of the chart's defaults with the kustomize base.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Ajv } from 'ajv';
import { isMap, isPair, isScalar, parse, parseDocument, type YAMLMap } from 'yaml';
import { asArray, field, isObject, readPackageJson, readProjectFile } from './helpers.ts';

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
    assert.ok(typeof chart.description === 'string' && chart.description.length > 0);
  });

  void test('values.yaml is valid against values.schema.json (draft-07)', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.deepEqual(validator()(values), []);
  });

  void test('values.schema.json refuses unknown keys, latest tags, and a created Secret without a token', () => {
    const validate = validator();
    const typo = { ...values, imagee: {} };
    assert.notDeepEqual(validate(typo), []);
    const latest = structuredClone(values);
    (latest.image as Record<string, unknown>).tag = 'latest';
    assert.notDeepEqual(validate(latest), []);
    const noToken = structuredClone(values);
    (noToken.apiToken as Record<string, unknown>).create = true;
    assert.notDeepEqual(validate(noToken), []);
    (noToken.apiToken as Record<string, unknown>).value = 'ek_live_example';
    assert.deepEqual(validate(noToken), []);
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
    assert.match(container, /readinessProbe:\n\s+httpGet:\n\s+path: \/readyz/);
    for (const name of ['EK_TOKEN_FILE', 'EK_JWT_FILE', 'EK_LISTEN', 'EK_METRICS_LISTEN']) assert.match(container, new RegExp(`- name: ${name}\\n`));
    assert.match(helpers, /emptyDir:\n\s+medium: Memory/);
    assert.match(helpers, /define "ek-sidecar\.appVolumeMount"[\s\S]*?readOnly: true/);
    const deployment = templates.get('deployment.yaml') ?? '';
    assert.match(deployment, /initContainers:\n\s+\{\{- include "ek-sidecar\.container" \. \| nindent 8 \}\}/);
    assert.match(deployment, /enableServiceLinks: false/);
    assert.match(deployment, /terminationGracePeriodSeconds:/);
  });

  void test('the metrics Service and the PodMonitor are off by default', () => {
    assert.equal(field(field(values.metrics, 'service'), 'enabled'), false);
    assert.equal(field(field(values.metrics, 'podMonitor'), 'enabled'), false);
    assert.match(templates.get('podmonitor.yaml') ?? '', /^\{\{- if \.Values\.metrics\.podMonitor\.enabled \}\}/);
    assert.match(templates.get('service.yaml') ?? '', /^\{\{- if \.Values\.metrics\.service\.enabled \}\}/);
  });

  void test('the chart defaults agree with the kustomize base (resources, security, probes, paths, ports)', () => {
    const base = parse(readProjectFile('deploy', 'kubernetes', 'deployment.yaml')) as Record<string, unknown>;
    const pod = field(field(field(base, 'spec'), 'template'), 'spec');
    const sidecar = asArray(field(pod, 'initContainers'))[0];
    const app = asArray(field(pod, 'containers'))[0];
    const chartSidecar = values.sidecar as Record<string, unknown>;
    assert.deepEqual(field(sidecar, 'resources'), chartSidecar.resources);
    assert.deepEqual(field(sidecar, 'securityContext'), chartSidecar.securityContext);
    assert.deepEqual(field(app, 'securityContext'), field(values.app, 'securityContext'));
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      const { httpGet, ...timing } = field(sidecar, probe) as Record<string, unknown>;
      assert.deepEqual(timing, chartSidecar[probe], probe);
      assert.equal(field(httpGet, 'port'), field(values.ports, 'metrics'));
    }
    const podSecurity = field(values.deployment, 'podSecurityContext');
    assert.deepEqual(field(pod, 'securityContext'), podSecurity);
    const env = new Map(asArray(field(sidecar, 'env')).map((item) => [field(item, 'name'), field(item, 'value')]));
    assert.equal(env.get('EK_TOKEN_FILE'), `${String(field(values.paths, 'tokenDir'))}/token`);
    assert.equal(env.get('EK_JWT_FILE'), `${String(field(values.paths, 'jwtDir'))}/${String(field(values.paths, 'jwtFileName'))}`);
    assert.equal(field(field(values.app, 'image'), 'tag'), String(field(app, 'image')).split(':')[1]);
  });
});
