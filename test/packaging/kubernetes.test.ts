// The kustomize base in deploy/kubernetes: it renders with kubectl's built-in kustomize, every object is valid
// against the Kubernetes OpenAPI schemas (strict about unknown fields), and the pod wires ek-sidecar as a native
// sidecar the way the product needs.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, posix } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { asArray, field, isObject, missingTool, projectPath, run } from './helpers.ts';
import { validateObjects } from './kubernetes-schema.ts';

type Obj = Record<string, unknown>;

const kubectlMissing = missingTool('kubectl', ['version', '--client']);

function named(list: unknown, name: string): Obj {
  const found = asArray(list).find((item) => field(item, 'name') === name);
  assert.ok(isObject(found), `no item named ${name}`);
  return found;
}

function envValue(container: Obj, name: string): string {
  const value = field(named(field(container, 'env'), name), 'value');
  assert.equal(typeof value, 'string', `env ${name} has no literal value`);
  return value as string;
}

function mountOf(container: Obj, volume: string): Obj {
  return named(field(container, 'volumeMounts'), volume);
}

void describe('deploy/kubernetes (kustomize base)', { skip: kubectlMissing }, () => {
  let objects: Obj[] = [];
  let deployment: Obj = {};
  let pod: Obj = {};
  let sidecar: Obj = {};
  let app: Obj = {};

  before(() => {
    const rendered = run('kubectl', ['kustomize', projectPath('deploy', 'kubernetes')]);
    assert.equal(rendered.status, 0, `kubectl kustomize failed: ${rendered.stderr}`);
    objects = parseAllDocuments(rendered.stdout).map((document) => {
      assert.deepEqual(document.errors, []);
      const object: unknown = document.toJS();
      assert.ok(isObject(object));
      return object;
    });
    const found = objects.find((object) => object.kind === 'Deployment');
    assert.ok(found !== undefined, 'no Deployment rendered');
    deployment = found;
    const spec = field(field(field(deployment, 'spec'), 'template'), 'spec');
    assert.ok(isObject(spec));
    pod = spec;
    sidecar = named(pod.initContainers, 'ek-sidecar');
    app = named(pod.containers, 'app');
  });

  void test('renders a Secret, a Deployment and a metrics Service', () => {
    assert.deepEqual(objects.map((object) => object.kind).sort(), ['Deployment', 'Secret', 'Service']);
  });

  void test('every object is valid against the Kubernetes schemas, unknown fields included', () => {
    assert.deepEqual(validateObjects(objects), []);
  });

  void test('the schema check is strict: a misspelt field is reported', () => {
    const broken = structuredClone(deployment);
    const brokenSidecar = named(field(field(field(field(broken, 'spec'), 'template'), 'spec'), 'initContainers'), 'ek-sidecar');
    brokenSidecar.startupProbes = brokenSidecar.startupProbe;
    const problems = validateObjects([broken]);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /startupProbes/);
  });

  void test('ek-sidecar is a native sidecar: an init container with restartPolicy Always, running `run`', () => {
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.deepEqual(sidecar.args, ['run']);
    assert.equal(asArray(pod.containers).some((container) => field(container, 'name') === 'ek-sidecar'), false);
  });

  void test('probes: startup and readiness on /readyz, liveness on /healthz, all on port 9732', () => {
    const probe = (name: string): unknown => field(sidecar[name], 'httpGet');
    assert.deepEqual(probe('startupProbe'), { path: '/readyz', port: 9732 });
    assert.deepEqual(probe('readinessProbe'), { path: '/readyz', port: 9732 });
    assert.deepEqual(probe('livenessProbe'), { path: '/healthz', port: 9732 });
    assert.deepEqual(named(sidecar.ports, 'metrics'), { name: 'metrics', containerPort: 9732, protocol: 'TCP' });
  });

  void test('the token Secret is mounted read-only as a whole directory, in the sidecar only', () => {
    const volume = named(pod.volumes, 'ek-api-token');
    const secret = field(volume, 'secret');
    assert.equal(field(secret, 'secretName'), 'enkryptify-api-token');
    const mount = mountOf(sidecar, 'ek-api-token');
    assert.equal(mount.readOnly, true);
    assert.equal(mount.subPath, undefined, 'subPath mounts are never updated by the kubelet');
    const item = asArray(field(secret, 'items'))[0];
    assert.equal(posix.join(String(mount.mountPath), String(field(item, 'path'))), envValue(sidecar, 'EK_TOKEN_FILE'));
    assert.equal(asArray(app.volumeMounts).some((m) => field(m, 'name') === 'ek-api-token'), false);

    const secretObject = objects.find((object) => object.kind === 'Secret');
    assert.ok(isObject(field(secretObject, 'stringData')) && field(field(secretObject, 'stringData'), String(field(item, 'key'))) !== undefined);
  });

  void test('no volume is mounted with subPath anywhere', () => {
    for (const container of [...asArray(pod.initContainers), ...asArray(pod.containers)]) {
      for (const mount of asArray(field(container, 'volumeMounts'))) assert.equal(field(mount, 'subPath'), undefined);
    }
  });

  void test('the JWT lives on a shared in-memory emptyDir: read-write in the sidecar, read-only in the app', () => {
    assert.equal(field(field(named(pod.volumes, 'ek-jwt'), 'emptyDir'), 'medium'), 'Memory');
    const sidecarMount = mountOf(sidecar, 'ek-jwt');
    const appMount = mountOf(app, 'ek-jwt');
    assert.notEqual(sidecarMount.readOnly, true);
    assert.equal(appMount.readOnly, true);
    const jwtFile = envValue(sidecar, 'EK_JWT_FILE');
    // The state file is written beside the JWT file, so its directory must be the writable mount itself.
    assert.equal(dirname(jwtFile), sidecarMount.mountPath);
    assert.equal(envValue(app, 'EK_JWT_FILE'), posix.join(String(appMount.mountPath), posix.basename(jwtFile)));
    assert.equal(envValue(app, 'EK_TOKEN_URL'), 'http://127.0.0.1:9731/v1/token');
  });

  void test('security contexts are hardened', () => {
    assert.equal(pod.enableServiceLinks, false);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(field(pod.securityContext, 'runAsNonRoot'), true);
    assert.equal(field(field(pod.securityContext, 'seccompProfile'), 'type'), 'RuntimeDefault');
    for (const container of [sidecar, app]) {
      const context = container.securityContext;
      assert.equal(field(context, 'runAsNonRoot'), true);
      assert.equal(field(context, 'readOnlyRootFilesystem'), true);
      assert.equal(field(context, 'allowPrivilegeEscalation'), false);
      assert.deepEqual(field(field(context, 'capabilities'), 'drop'), ['ALL']);
    }
    assert.equal(field(sidecar.securityContext, 'runAsUser'), 65532);
    assert.equal(field(field(sidecar.securityContext, 'seccompProfile'), 'type'), 'RuntimeDefault');
  });

  void test('resources fit a Node.js 24 process and a grace period is set', () => {
    assert.deepEqual(sidecar.resources, { requests: { cpu: '20m', memory: '96Mi' }, limits: { memory: '160Mi' } });
    assert.equal(typeof pod.terminationGracePeriodSeconds, 'number');
  });

  void test('the images are pinned, never latest', () => {
    for (const container of [sidecar, app]) {
      const image = String(container.image);
      assert.match(image, /:[\w][\w.-]*(@sha256:[a-f0-9]{64})?$/, `${image} has no tag`);
      assert.doesNotMatch(image, /:latest(@|$)/);
    }
  });

  void test('the demo app never prints the token: it reads the expiry and discards the token API body', () => {
    const script = asArray(app.args).join('\n');
    assert.match(script, /wget .*--header 'Ek-Sidecar-Request: true' -O \/dev\/null "\$EK_TOKEN_URL"/);
    assert.doesNotMatch(script, /cat "\$EK_JWT_FILE"/);
  });

  void test('the metrics Service selects the pod and targets the sidecar metrics port', () => {
    const service = objects.find((object) => object.kind === 'Service');
    const selector = field(field(service, 'spec'), 'selector');
    const labels = field(field(field(field(deployment, 'spec'), 'template'), 'metadata'), 'labels');
    assert.ok(isObject(selector) && isObject(labels));
    for (const [key, value] of Object.entries(selector)) assert.equal(labels[key], value, `pod lacks label ${key}`);
    const containerPort = field(named(sidecar.ports, 'metrics'), 'containerPort');
    assert.deepEqual(field(field(service, 'spec'), 'ports'), [{ name: 'metrics', port: 9732, protocol: 'TCP', targetPort: containerPort }]);
  });
});
