// The Helm chart rendered by helm itself (`helm lint --strict`, `helm template`), standalone and as a dependency of a
// parent chart built here the way the README says to embed it: every object is valid against the Kubernetes and CRD
// schemas (strict about unknown fields), and the modes (demo, oidc, broker, monitoring) wire what they promise.
// helm is not in Debian: .ci/run installs it (see there); without it this file says it skipped.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { asArray, envOf, field, maybeNamed, missingTool, named, podSpec, projectPath, readProjectFile, run, yamlObjects, type Obj } from './helpers.ts';
import { validateObjects } from './kubernetes-schema.ts';

const helmMissing = missingTool('helm', ['version', '--short']);
const chartDir = projectPath('helm', 'ek-sidecar');

/** `helm template` with --set flags; the objects, or the error text when `expectFailure`. */
function template(sets: readonly string[], chart = chartDir): Obj[] {
  const result = run('helm', ['template', 'shop', chart, '--namespace', 'payments', ...sets.flatMap((set) => ['--set', set])]);
  assert.equal(result.status, 0, `helm template ${sets.join(' ')}:\n${result.stderr}`);
  return yamlObjects(result.stdout);
}

function templateError(sets: readonly string[]): string {
  const result = run('helm', ['template', 'shop', chartDir, ...sets.flatMap((set) => ['--set', set])]);
  assert.notEqual(result.status, 0, `helm template ${sets.join(' ')} should fail`);
  return result.stderr;
}

function find(objects: readonly Obj[], kind: string, name?: string): Obj {
  const found = objects.find((object) => object.kind === kind && (name === undefined || field(object.metadata, 'name') === name));
  assert.ok(found !== undefined, `no ${kind} ${name ?? ''} in ${objects.map((object) => String(object.kind)).join(', ')}`);
  return found;
}

const EVERYTHING = [
  'demo.enabled=true',
  'metrics.service.enabled=true',
  'metrics.podMonitor.enabled=true',
  'metrics.serviceMonitor.enabled=true',
  'metrics.prometheusRule.enabled=true',
  'metrics.grafanaDashboard.enabled=true',
  'broker.enabled=true',
  'broker.networkPolicy.enabled=true',
  'broker.tls.certManager.enabled=true',
  'broker.tls.certManager.issuerRef.name=internal-ca',
  'sidecar.readinessProbe.enabled=true',
];

void describe('helm/ek-sidecar rendered by helm', { skip: helmMissing }, () => {
  void test('helm lint --strict passes', () => {
    const result = run('helm', ['lint', '--strict', chartDir]);
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  void test('by default it renders no object: no demo, nothing to add to an app chart that depends on it', () => {
    assert.deepEqual(template([]), []);
  });

  void test('with everything on, every object is valid against its schema, unknown fields included', () => {
    const objects = template(EVERYTHING);
    assert.deepEqual(objects.map((object) => object.kind).sort(), [
      'Certificate', 'ConfigMap', 'Deployment', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'PodMonitor', 'PrometheusRule', 'Service', 'Service', 'ServiceMonitor',
    ]);
    assert.deepEqual(validateObjects(objects), []);
  });

  void test('the demo: a native sidecar with the startup probe, no readiness probe unless asked, the token in the sidecar only', () => {
    const pod = podSpec(find(template(['demo.enabled=true']), 'Deployment'));
    const sidecar = named(pod.initContainers, 'ek-sidecar');
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.equal(sidecar.image, 'ek-sidecar:0.1.0');
    assert.deepEqual(sidecar.startupProbe, { httpGet: { path: '/readyz', port: 9732 }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 450 });
    assert.equal(sidecar.readinessProbe, undefined);
    assert.equal(field(pod.securityContext, 'fsGroup'), undefined, 'no fsGroup is needed');
    assert.equal(envOf(sidecar).get('EK_JWT_FILE_MODE'), '0644');
    const app = named(pod.containers, 'app');
    assert.equal(maybeNamed(app.volumeMounts, 'ek-api-token'), undefined);
    assert.deepEqual(named(app.volumeMounts, 'ek-jwt'), { name: 'ek-jwt', mountPath: '/var/run/enkryptify', readOnly: true });
    const ready = podSpec(find(template(['demo.enabled=true', 'sidecar.readinessProbe.enabled=true']), 'Deployment'));
    assert.deepEqual(named(ready.initContainers, 'ek-sidecar').readinessProbe, { httpGet: { path: '/readyz', port: 9732 }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 });
  });

  void test('monitoring selects every pod with a sidecar, on the sidecar\'s own port, and ships the very rules and dashboard files', () => {
    const objects = template(EVERYTHING);
    const monitor = find(objects, 'PodMonitor');
    assert.deepEqual(field(field(monitor.spec, 'selector'), 'matchLabels'), { 'ek-sidecar/sidecar': 'true' });
    assert.equal(field(asArray(field(monitor.spec, 'podMetricsEndpoints'))[0], 'port'), 'ek-metrics');
    const service = find(objects, 'Service', 'shop-ek-sidecar-metrics');
    assert.deepEqual(field(service.spec, 'selector'), { 'ek-sidecar/sidecar': 'true' });
    const serviceMonitor = find(objects, 'ServiceMonitor');
    const serviceLabels = field(service.metadata, 'labels') as Obj;
    for (const [key, value] of Object.entries(field(field(serviceMonitor.spec, 'selector'), 'matchLabels') as Obj)) assert.equal(serviceLabels[key], value);
    assert.deepEqual(find(objects, 'PrometheusRule').spec, parse(readProjectFile('deploy', 'monitoring', 'ek-sidecar.rules.yaml')));
    assert.equal(field(find(objects, 'ConfigMap').data, 'ek-sidecar.json'), readProjectFile('deploy', 'monitoring', 'grafana-dashboard.json').trimEnd());
    const demoLabels = field(field(field(find(objects, 'Deployment', 'shop-ek-sidecar').spec, 'template'), 'metadata'), 'labels');
    assert.equal(field(demoLabels, 'ek-sidecar/sidecar'), 'true');
    const custom = find(template(['metrics.podMonitor.enabled=true', 'metrics.selector.app=shop']), 'PodMonitor');
    assert.deepEqual(field(field(custom.spec, 'selector'), 'matchLabels'), { app: 'shop' });
  });

  void test('auth.mode=oidc: a projected token of the configured audience, the workspace, no Secret even when asked for one', () => {
    const objects = template(['demo.enabled=true', 'auth.mode=oidc', 'auth.oidc.workspace=ws_0123', 'auth.oidc.audience=ek-prod', 'serviceAccount.create=true', 'auth.apiToken.create=true', 'auth.apiToken.value=ek_live_x']);
    assert.deepEqual(validateObjects(objects), []);
    assert.deepEqual(objects.map((object) => object.kind).sort(), ['Deployment', 'ServiceAccount']);
    const pod = podSpec(find(objects, 'Deployment'));
    assert.equal(pod.serviceAccountName, 'shop-ek-sidecar');
    const sidecar = named(pod.initContainers, 'ek-sidecar');
    const env = envOf(sidecar);
    assert.equal(env.get('EK_AUTH'), 'oidc');
    assert.equal(env.get('EK_WORKSPACE'), 'ws_0123');
    assert.equal(env.get('EK_OIDC_TOKEN_FILE'), '/var/run/secrets/tokens/enkryptify');
    assert.equal(env.has('EK_TOKEN_FILE'), false);
    assert.deepEqual(named(pod.volumes, 'ek-oidc-token'), {
      name: 'ek-oidc-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'ek-prod', expirationSeconds: 3600, path: 'enkryptify' } }] },
    });
    assert.deepEqual(named(sidecar.volumeMounts, 'ek-oidc-token'), { name: 'ek-oidc-token', mountPath: '/var/run/secrets/tokens', readOnly: true });
    assert.equal(asArray(pod.volumes).some((volume) => field(volume, 'secret') !== undefined), false);
    const app = named(pod.containers, 'app');
    assert.equal(maybeNamed(app.volumeMounts, 'ek-oidc-token'), undefined, 'the app gets the projected token only when asked');
    const shared = podSpec(find(template(['demo.enabled=true', 'auth.mode=oidc', 'auth.oidc.workspace=ws_0123', 'auth.oidc.mountInApp=true']), 'Deployment'));
    const sharedApp = named(shared.containers, 'app');
    assert.deepEqual(named(sharedApp.volumeMounts, 'ek-oidc-token'), { name: 'ek-oidc-token', mountPath: '/var/run/secrets/tokens', readOnly: true });
    assert.equal(envOf(sharedApp).get('ENKRYPTIFY_TOKEN_PATH'), '/var/run/secrets/tokens/enkryptify');
  });

  void test('values that cannot work fail the render with a message that names the value', () => {
    assert.match(templateError(['auth.mode=oidc']), /auth\.mode=oidc needs auth\.oidc\.workspace/);
    assert.match(templateError(['auth.mode=oidc', 'auth.oidc.workspace=w', 'broker.enabled=true']), /broker\.enabled needs auth\.mode=api-token/);
    assert.match(templateError(['broker.enabled=true', 'broker.tls.certManager.enabled=true']), /issuerRef\.name/);
    assert.match(templateError(['metrics.serviceMonitor.enabled=true']), /metrics\.service\.enabled/);
    assert.match(templateError(['imagee.tag=1']), /imagee/);
  });

  void test('broker: 2 replicas across nodes, a PDB, a Service on 9731, TLS and the Service names; the sidecars chain to it', () => {
    const objects = template(['demo.enabled=true', 'broker.enabled=true', 'broker.antiAffinity=hard']);
    assert.deepEqual(validateObjects(objects), []);
    const broker = find(objects, 'Deployment', 'shop-ek-sidecar-broker');
    assert.equal(field(broker.spec, 'replicas'), 2);
    const brokerPod = podSpec(broker);
    assert.ok(field(field(brokerPod.affinity, 'podAntiAffinity'), 'requiredDuringSchedulingIgnoredDuringExecution') !== undefined);
    const container = named(brokerPod.containers, 'broker');
    const args = asArray(container.args).map(String);
    assert.deepEqual(args.slice(0, 4), ['run', '--listen', '0.0.0.0:9731', '--allow-remote-token-access']);
    assert.equal(args[args.indexOf('--allowed-hosts') + 1], 'shop-ek-sidecar-broker,shop-ek-sidecar-broker.payments,shop-ek-sidecar-broker.payments.svc,shop-ek-sidecar-broker.payments.svc.cluster.local');
    assert.deepEqual(field(named(brokerPod.volumes, 'ek-broker-tls'), 'secret'), { secretName: 'shop-ek-sidecar-broker-tls', defaultMode: 0o444 });
    assert.deepEqual(container.securityContext, named(podSpec(find(objects, 'Deployment', 'shop-ek-sidecar')).initContainers, 'ek-sidecar').securityContext);
    assert.equal(field(find(objects, 'PodDisruptionBudget').spec, 'minAvailable'), 1);
    assert.deepEqual(field(find(objects, 'Service', 'shop-ek-sidecar-broker').spec, 'ports'), [{ name: 'token', port: 9731, targetPort: 'token', protocol: 'TCP' }]);

    const demo = podSpec(find(objects, 'Deployment', 'shop-ek-sidecar'));
    const sidecar = named(demo.initContainers, 'ek-sidecar');
    assert.equal(envOf(sidecar).get('EK_API_URL'), 'https://shop-ek-sidecar-broker.payments.svc:9731');
    assert.equal(envOf(sidecar).get('EK_CA_FILE'), '/etc/ek-sidecar/broker-ca/ca.crt');
    assert.deepEqual(field(named(demo.volumes, 'ek-broker-ca'), 'secret'), { secretName: 'shop-ek-sidecar-broker-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] }, 'the CA only, never the key');

    const certificate = find(template(['broker.enabled=true', 'broker.tls.certManager.enabled=true', 'broker.tls.certManager.issuerRef.name=internal-ca']), 'Certificate');
    assert.deepEqual(field(certificate.spec, 'dnsNames'), args[args.indexOf('--allowed-hosts') + 1]?.split(','));
    const fromConfigMap = podSpec(find(template(['demo.enabled=true', 'broker.enabled=true', 'broker.ca.configMapName=trust-bundle', 'broker.ca.key=root.pem']), 'Deployment', 'shop-ek-sidecar'));
    assert.deepEqual(field(named(fromConfigMap.volumes, 'ek-broker-ca'), 'configMap'), { name: 'trust-bundle', items: [{ key: 'root.pem', path: 'ca.crt' }] });
  });
});

void describe('helm/ek-sidecar as a dependency of an app chart', { skip: helmMissing }, () => {
  let parent = '';
  let objects: Obj[] = [];
  before(() => {
    parent = mkdtempSync(join(tmpdir(), 'ek-sidecar-parent-'));
    mkdirSync(join(parent, 'templates'));
    writeFileSync(join(parent, 'Chart.yaml'), stringify({
      apiVersion: 'v2',
      name: 'shop',
      version: '7.3.1',
      appVersion: '7.3.1',
      dependencies: [{ name: 'ek-sidecar', version: '0.1.0', repository: `file://${chartDir}`, alias: 'ekSidecar', condition: 'ekSidecar.enabled' }],
    }));
    writeFileSync(join(parent, 'values.yaml'), stringify({
      global: { imageRegistry: 'registry.example.com' },
      ekSidecar: { enabled: true, image: { repository: 'registry.example.com/ek-sidecar' }, metrics: { podMonitor: { enabled: true } } },
    }));
    // The README's embedding, as an app chart author writes it.
    writeFileSync(join(parent, 'templates', 'deployment.yaml'), `{{- $ek := dict "Values" .Values.ekSidecar "Release" .Release }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-shop
spec:
  selector:
    matchLabels: { app: shop }
  template:
    metadata:
      labels:
        app: shop
        {{- include "ek-sidecar.podLabels" $ek | nindent 8 }}
    spec:
      initContainers:
        {{- include "ek-sidecar.container" $ek | nindent 8 }}
      containers:
        - name: shop
          image: registry.example.com/shop:7.3.1
          env:
            {{- include "ek-sidecar.appEnv" $ek | nindent 12 }}
          volumeMounts:
            {{- include "ek-sidecar.appVolumeMounts" $ek | nindent 12 }}
      volumes:
        {{- include "ek-sidecar.volumes" $ek | nindent 8 }}
`);
    const build = run('helm', ['dependency', 'build', parent]);
    assert.equal(build.status, 0, build.stderr);
    objects = template([], parent);
  });
  after(() => {
    rmSync(parent, { recursive: true, force: true });
  });

  void test('Helm accepts the values it composes for the subchart (global, enabled) and renders', () => {
    assert.deepEqual(objects.map((object) => object.kind).sort(), ['Deployment', 'PodMonitor']);
    assert.deepEqual(validateObjects(objects), []);
  });

  void test('the app\'s pod gets the sidecar, with the sidecar chart\'s image tag, not the parent\'s version', () => {
    const deployment = find(objects, 'Deployment');
    const pod = podSpec(deployment);
    assert.equal(named(pod.initContainers, 'ek-sidecar').image, 'registry.example.com/ek-sidecar:0.1.0');
    assert.equal(field(field(field(field(deployment.spec, 'template'), 'metadata'), 'labels'), 'ek-sidecar/sidecar'), 'true');
    assert.equal(envOf(named(pod.containers, 'shop')).get('EK_JWT_FILE'), '/var/run/enkryptify/jwt');
  });

  void test('no demo Deployment is rendered for the parent', () => {
    assert.equal(objects.some((object) => object.kind === 'Deployment' && field(object.metadata, 'name') === 'shop-ek-sidecar'), false);
  });

  void test('a copy of the parent with the condition off renders without the subchart\'s objects', () => {
    const off = mkdtempSync(join(tmpdir(), 'ek-sidecar-parent-off-'));
    try {
      cpSync(parent, off, { recursive: true });
      rmSync(join(off, 'templates', 'deployment.yaml'));
      assert.deepEqual(template(['ekSidecar.enabled=false'], off), []);
    } finally {
      rmSync(off, { recursive: true, force: true });
    }
  });
});
