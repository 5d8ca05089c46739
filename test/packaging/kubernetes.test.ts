// The kustomize trees in deploy/: the demo base, the broker, the oidc and broker overlays, and the monitoring
// kustomization render with kubectl's built-in kustomize, every object is valid against the Kubernetes (and CRD)
// schemas, strict about unknown fields, and the pods are wired the way the product needs.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { asArray, envOf, field, kustomize, maybeNamed, missingTool, named, podSpec, projectPath, type Obj } from './helpers.ts';
import { validateObjects } from './kubernetes-schema.ts';

const kubectlMissing = missingTool('kubectl', ['version', '--client']);

function render(...dir: string[]): Obj[] {
  return kustomize(projectPath('deploy', ...dir));
}

function find(objects: readonly Obj[], kind: string, name?: string): Obj {
  const found = objects.find((object) => object.kind === kind && (name === undefined || field(object.metadata, 'name') === name));
  assert.ok(found !== undefined, `no ${kind} ${name ?? ''}`);
  return found;
}

function kinds(objects: readonly Obj[]): string[] {
  return objects.map((object) => `${String(object.kind)}/${String(field(object.metadata, 'name'))}`).sort();
}

void describe('deploy/kubernetes and deploy/monitoring (kustomize)', { skip: kubectlMissing }, () => {
  let base: Obj[] = [];
  let pod: Obj = {};
  let sidecar: Obj = {};
  let app: Obj = {};

  before(() => {
    base = render('kubernetes', 'base');
    pod = podSpec(find(base, 'Deployment', 'ek-sidecar-demo'));
    sidecar = named(pod.initContainers, 'ek-sidecar');
    app = named(pod.containers, 'app');
  });

  void test('base: the demo Deployment with the sidecar the Component adds, and a headless metrics Service; no placeholder Secret', () => {
    assert.deepEqual(kinds(base), ['Deployment/ek-sidecar-demo', 'Service/ek-sidecar-metrics']);
    assert.deepEqual(validateObjects(base), []);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.equal(sidecar.image, 'ek-sidecar:0.1.0');
    assert.equal(envOf(app).get('EK_JWT_FILE'), envOf(sidecar).get('EK_JWT_FILE'));
  });

  void test('the schema check is strict: a misspelt field is reported', () => {
    const broken = structuredClone(find(base, 'Deployment'));
    const brokenSidecar = named(podSpec(broken).initContainers, 'ek-sidecar');
    brokenSidecar.startupProbes = brokenSidecar.startupProbe;
    const problems = validateObjects([broken]);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /startupProbes/);
  });

  void test('probes: startup on /readyz with a 15-minute budget, liveness on /healthz, no readiness', () => {
    assert.deepEqual(sidecar.startupProbe, { httpGet: { path: '/readyz', port: 9732 }, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 450 });
    assert.deepEqual(field(sidecar.livenessProbe, 'httpGet'), { path: '/healthz', port: 9732 });
    assert.equal(sidecar.readinessProbe, undefined);
  });

  void test('security contexts are hardened, and no pod securityContext is needed to read the token or the JWT', () => {
    assert.equal(pod.enableServiceLinks, false);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(field(pod.securityContext, 'fsGroup'), undefined);
    for (const container of [sidecar, app]) {
      const context = container.securityContext;
      assert.equal(field(context, 'runAsNonRoot'), true);
      assert.equal(field(context, 'readOnlyRootFilesystem'), true);
      assert.equal(field(context, 'allowPrivilegeEscalation'), false);
      assert.deepEqual(field(field(context, 'capabilities'), 'drop'), ['ALL']);
    }
    assert.equal(field(sidecar.securityContext, 'runAsUser'), 65532);
    assert.notEqual(field(app.securityContext, 'runAsUser'), 65532, 'the app reads the JWT as another user');
    assert.equal(field(field(named(pod.volumes, 'ek-api-token'), 'secret'), 'defaultMode'), 0o444);
  });

  void test('the metrics Service selects every pod with a sidecar and targets the sidecar metrics port by number', () => {
    const service = find(base, 'Service', 'ek-sidecar-metrics');
    assert.equal(field(service.spec, 'clusterIP'), 'None');
    assert.deepEqual(field(service.spec, 'selector'), { 'ek-sidecar/sidecar': 'true' });
    const labels = field(field(field(find(base, 'Deployment').spec, 'template'), 'metadata'), 'labels');
    assert.equal(field(labels, 'ek-sidecar/sidecar'), 'true');
    assert.deepEqual(field(service.spec, 'ports'), [{ name: 'ek-metrics', port: 9732, protocol: 'TCP', targetPort: 9732 }]);
  });

  void test('the demo app never prints the token: it reads the expiry and discards the token API body', () => {
    const script = asArray(app.args).join('\n');
    assert.match(script, /wget .*--header 'Ek-Sidecar-Request: true' -O \/dev\/null "\$EK_TOKEN_URL"/);
    assert.doesNotMatch(script, /cat "\$EK_JWT_FILE"/);
  });

  void test('the images are pinned, never latest', () => {
    for (const container of [sidecar, app]) {
      const image = String(container.image);
      assert.match(image, /:[\w][\w.-]*(@sha256:[a-f0-9]{64})?$/, `${image} has no tag`);
      assert.doesNotMatch(image, /:latest(@|$)/);
    }
  });

  void test('broker: 2 replicas spread over nodes, a PDB, a Service on 9731, TLS from a whole Secret directory, the hardened context', () => {
    const objects = render('kubernetes', 'broker');
    assert.deepEqual(validateObjects(objects), []);
    assert.deepEqual(kinds(objects), ['Deployment/ek-sidecar-broker', 'NetworkPolicy/ek-sidecar-broker', 'PodDisruptionBudget/ek-sidecar-broker', 'Service/ek-sidecar-broker']);
    const deployment = find(objects, 'Deployment');
    assert.equal(field(deployment.spec, 'replicas'), 2);
    const brokerPod = podSpec(deployment);
    assert.ok(field(field(brokerPod.affinity, 'podAntiAffinity'), 'preferredDuringSchedulingIgnoredDuringExecution') !== undefined);
    const broker = named(brokerPod.containers, 'broker');
    const args = asArray(broker.args).map(String);
    assert.deepEqual(args.slice(0, 4), ['run', '--listen', '0.0.0.0:9731', '--allow-remote-token-access']);
    assert.equal(args[args.indexOf('--tls-cert-file') + 1], '/etc/ek-sidecar/tls/tls.crt');
    assert.equal(args[args.indexOf('--tls-key-file') + 1], '/etc/ek-sidecar/tls/tls.key');
    assert.deepEqual(args[args.indexOf('--allowed-hosts') + 1]?.split(','), [
      'ek-sidecar-broker',
      'ek-sidecar-broker.$(POD_NAMESPACE)',
      'ek-sidecar-broker.$(POD_NAMESPACE).svc',
      'ek-sidecar-broker.$(POD_NAMESPACE).svc.cluster.local',
    ]);
    assert.deepEqual(field(named(broker.env, 'POD_NAMESPACE'), 'valueFrom'), { fieldRef: { fieldPath: 'metadata.namespace' } });
    assert.deepEqual(named(broker.volumeMounts, 'ek-broker-tls'), { name: 'ek-broker-tls', mountPath: '/etc/ek-sidecar/tls', readOnly: true });
    assert.deepEqual(broker.securityContext, sidecar.securityContext);
    assert.equal(field(field(broker.readinessProbe, 'httpGet'), 'path'), '/readyz', 'a broker is ready only with a JWT');
    assert.equal(field(find(objects, 'PodDisruptionBudget').spec, 'minAvailable'), 1);
    const policy = find(objects, 'NetworkPolicy');
    assert.deepEqual(field(asArray(field(asArray(field(policy.spec, 'ingress'))[0], 'from'))[0], 'podSelector'), { matchLabels: { 'ek-sidecar/sidecar': 'true' } });
  });

  void test('overlays/broker: the demo\'s sidecar exchanges with the broker, which alone talks to Enkryptify', () => {
    const objects = render('kubernetes', 'overlays', 'broker');
    assert.deepEqual(validateObjects(objects), []);
    const demoSidecar = named(podSpec(find(objects, 'Deployment', 'ek-sidecar-demo')).initContainers, 'ek-sidecar');
    assert.equal(envOf(demoSidecar).get('EK_API_URL'), 'https://ek-sidecar-broker:9731');
    const brokerPod = podSpec(find(objects, 'Deployment', 'ek-sidecar-broker'));
    assert.equal(maybeNamed(brokerPod.initContainers, 'ek-sidecar'), undefined, 'no sidecar injected into the broker');
    assert.equal(envOf(named(brokerPod.containers, 'broker')).has('EK_API_URL'), false);
  });

  void test('overlays/oidc: a ServiceAccount and a projected token, no Secret anywhere', () => {
    const objects = render('kubernetes', 'overlays', 'oidc');
    assert.deepEqual(validateObjects(objects), []);
    assert.equal(objects.some((object) => object.kind === 'Secret'), false);
    const demo = podSpec(find(objects, 'Deployment', 'ek-sidecar-demo'));
    assert.equal(demo.serviceAccountName, 'ek-sidecar-demo');
    assert.equal(field(find(objects, 'ServiceAccount').metadata, 'name'), 'ek-sidecar-demo');
    assert.equal(asArray(demo.volumes).some((volume) => field(volume, 'secret') !== undefined), false);
    assert.equal(envOf(named(demo.initContainers, 'ek-sidecar')).get('EK_AUTH'), 'oidc');
  });

  void test('deploy/monitoring: a PodMonitor on the sidecars\' own port name, the PrometheusRule, the dashboard ConfigMap', () => {
    const objects = render('monitoring');
    assert.deepEqual(validateObjects(objects), []);
    assert.deepEqual(kinds(objects), ['ConfigMap/ek-sidecar-dashboard', 'PodMonitor/ek-sidecar', 'PrometheusRule/ek-sidecar']);
    const monitor = find(objects, 'PodMonitor');
    assert.deepEqual(field(field(monitor.spec, 'selector'), 'matchLabels'), { 'ek-sidecar/sidecar': 'true' });
    assert.equal(field(asArray(field(monitor.spec, 'podMetricsEndpoints'))[0], 'port'), 'ek-metrics');
    assert.equal(field(find(objects, 'ConfigMap').metadata, 'labels') !== undefined, true);
  });
});
