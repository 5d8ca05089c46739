// Injection without editing the app's manifests: the kustomize Component (deploy/kubernetes/components/sidecar and
// its companions), rendered by kubectl's kustomize onto sample workloads that know nothing of ek-sidecar; and the
// Kyverno ClusterPolicy (deploy/kyverno), validated against Kyverno's CRD schema and its two patches applied to the
// sample's pod by kubectl's own strategic merge. Every result must be a valid pod that carries the sidecar.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Ajv } from 'ajv';
import { stringify } from 'yaml';
import { validateObjects } from './kubernetes-schema.ts';
import { asArray, envOf, field, isObject, kustomize, maybeNamed, missingTool, named, podSpec, projectPath, readProjectFile, run, yamlObjects, type Obj } from './helpers.ts';

const kubectlMissing = missingTool('kubectl', ['version', '--client']);
const components = projectPath('deploy', 'kubernetes', 'components');

/** Sample workloads: an app with two containers, its own init container, env, mounts and volumes; a StatefulSet;
 * an opted-out Deployment; and a Service that must come out untouched. */
const SAMPLE = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: shop }
spec:
  selector: { matchLabels: { app: shop } }
  template:
    metadata: { labels: { app: shop } }
    spec:
      initContainers:
        - { name: migrate, image: "registry.example.com/shop:1.2.3", command: ["/migrate"] }
      containers:
        - name: web
          image: registry.example.com/shop:1.2.3
          env: [{ name: LOG_LEVEL, value: info }]
          ports: [{ name: metrics, containerPort: 8080 }]
          volumeMounts: [{ name: cache, mountPath: /cache }]
        - name: worker
          image: registry.example.com/shop:1.2.3
      volumes: [{ name: cache, emptyDir: {} }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: ledger }
spec:
  serviceName: ledger
  selector: { matchLabels: { app: ledger } }
  template:
    metadata: { labels: { app: ledger } }
    spec:
      containers: [{ name: ledger, image: "registry.example.com/ledger:2.0.0" }]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: untouched
  annotations: { ek-sidecar/inject: "false" }
spec:
  selector: { matchLabels: { app: untouched } }
  template:
    metadata: { labels: { app: untouched } }
    spec:
      containers: [{ name: app, image: "busybox:1.37.0" }]
---
apiVersion: v1
kind: Service
metadata: { name: shop }
spec:
  selector: { app: shop }
  ports: [{ port: 80, targetPort: 8080 }]
`;
const sampleObjects = yamlObjects(SAMPLE);

/** Renders the sample with the given components (names under deploy/kubernetes/components) and extra kustomization. */
function renderSample(componentNames: readonly string[], extra: Obj = {}): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'ek-sidecar-kustomize-'));
  try {
    writeFileSync(join(dir, 'sample.yaml'), SAMPLE);
    const kustomization = {
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['sample.yaml'],
      // kustomize refuses absolute paths to components.
      components: componentNames.map((name) => relative(dir, join(components, name))),
      ...extra,
    };
    writeFileSync(join(dir, 'kustomization.yaml'), stringify(kustomization));
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function workload(objects: readonly Obj[], kind: string, name: string): Obj {
  const found = objects.find((object) => object.kind === kind && field(object.metadata, 'name') === name);
  assert.ok(found !== undefined, `no ${kind} ${name}`);
  return found;
}

/** What every injected pod must look like, whatever injected it. `credential` is the sidecar's credential volume. */
function assertInjected(pod: Obj, labels: unknown, appNames: readonly string[], credential = 'ek-api-token'): Obj {
  const sidecar = named(pod.initContainers, 'ek-sidecar');
  assert.equal(sidecar.restartPolicy, 'Always', 'a native sidecar');
  assert.deepEqual(sidecar.args, ['run']);
  assert.equal(field(labels, 'ek-sidecar/sidecar'), 'true');
  assert.equal(field(field(sidecar.startupProbe, 'httpGet'), 'path'), '/readyz');
  assert.equal(sidecar.readinessProbe, undefined, 'readiness is opt-in');
  assert.deepEqual(named(sidecar.ports, 'ek-metrics'), { name: 'ek-metrics', containerPort: 9732, protocol: 'TCP' });
  assert.equal(envOf(sidecar).get('EK_JWT_FILE_MODE'), '0644', 'apps read the JWT without a pod fsGroup');
  assert.equal(field(named(pod.volumes, 'ek-jwt'), 'emptyDir') !== undefined, true);
  assert.equal(field(field(named(pod.volumes, 'ek-jwt'), 'emptyDir'), 'medium'), 'Memory');
  assert.ok(maybeNamed(pod.volumes, credential) !== undefined, `no ${credential} volume`);
  for (const name of appNames) {
    const app = named(pod.containers, name);
    assert.deepEqual(named(app.volumeMounts, 'ek-jwt'), { name: 'ek-jwt', mountPath: '/var/run/enkryptify', readOnly: true }, name);
    assert.equal(envOf(app).get('EK_JWT_FILE'), '/var/run/enkryptify/jwt', name);
    assert.equal(envOf(app).get('EK_TOKEN_URL'), 'http://127.0.0.1:9731/v1/token', name);
    assert.equal(maybeNamed(app.volumeMounts, credential), undefined, `${name} must not see the sidecar's credential`);
  }
  for (const container of [...asArray(pod.initContainers), ...asArray(pod.containers)]) {
    for (const mount of asArray(field(container, 'volumeMounts'))) assert.equal(field(mount, 'subPath'), undefined, 'never subPath');
  }
  return sidecar;
}

void describe('kustomize Component deploy/kubernetes/components/sidecar', { skip: kubectlMissing }, () => {
  let objects: Obj[] = [];
  before(() => {
    objects = renderSample(['sidecar']);
  });

  void test('adds the sidecar to every Deployment and StatefulSet, keeping what the app had', () => {
    const shop = workload(objects, 'Deployment', 'shop');
    const pod = podSpec(shop);
    assertInjected(pod, field(field(field(shop.spec, 'template'), 'metadata'), 'labels'), ['web', 'worker']);
    const web = named(pod.containers, 'web');
    assert.equal(envOf(web).get('LOG_LEVEL'), 'info');
    assert.ok(maybeNamed(web.volumeMounts, 'cache') !== undefined);
    assert.ok(maybeNamed(pod.volumes, 'cache') !== undefined);
    assert.ok(maybeNamed(pod.initContainers, 'migrate') !== undefined);
    const ledger = workload(objects, 'StatefulSet', 'ledger');
    assertInjected(podSpec(ledger), field(field(field(ledger.spec, 'template'), 'metadata'), 'labels'), ['ledger']);
  });

  void test('the API token is the Secret\'s one key, mode 0444, in the sidecar only', () => {
    const pod = podSpec(workload(objects, 'Deployment', 'shop'));
    assert.deepEqual(field(named(pod.volumes, 'ek-api-token'), 'secret'), {
      secretName: 'enkryptify-api-token',
      defaultMode: 0o444,
      items: [{ key: 'token', path: 'token' }],
    });
    const sidecar = named(pod.initContainers, 'ek-sidecar');
    assert.equal(envOf(sidecar).get('EK_TOKEN_FILE'), '/var/run/secrets/enkryptify/token');
    assert.deepEqual(named(sidecar.volumeMounts, 'ek-api-token'), { name: 'ek-api-token', mountPath: '/var/run/secrets/enkryptify', readOnly: true });
  });

  void test('leaves alone a workload annotated ek-sidecar/inject: "false", and everything that is not a workload', () => {
    assert.deepEqual(workload(objects, 'Deployment', 'untouched'), sampleObjects.find((object) => field(object.metadata, 'name') === 'untouched'));
    assert.deepEqual(workload(objects, 'Service', 'shop'), sampleObjects.find((object) => object.kind === 'Service'));
    assert.equal(objects.length, sampleObjects.length, 'the Component adds no object of its own');
  });

  void test('every rendered object is valid, unknown fields included', () => {
    assert.deepEqual(validateObjects(objects), []);
  });

  void test('with components/oidc: a projected service-account token, the workspace from a ConfigMap, no Secret', () => {
    const rendered = renderSample(['sidecar', 'oidc'], { configMapGenerator: [{ name: 'ek-sidecar-oidc', literals: ['workspace=ws_0123'] }] });
    assert.deepEqual(validateObjects(rendered), []);
    const pod = podSpec(workload(rendered, 'Deployment', 'shop'));
    const sidecar = assertInjected(pod, { 'ek-sidecar/sidecar': 'true' }, ['web', 'worker'], 'ek-oidc-token');
    const env = envOf(sidecar);
    assert.equal(env.get('EK_AUTH'), 'oidc');
    assert.equal(env.get('EK_OIDC_TOKEN_FILE'), '/var/run/secrets/tokens/enkryptify');
    assert.equal(env.has('EK_TOKEN_FILE'), false);
    const workspace = field(field(named(sidecar.env, 'EK_WORKSPACE'), 'valueFrom'), 'configMapKeyRef');
    const configMap = rendered.find((object) => object.kind === 'ConfigMap');
    assert.equal(field(workspace, 'name'), field(configMap?.metadata, 'name'), 'kustomize follows the generated name');
    assert.equal(field(workspace, 'key'), 'workspace');
    assert.equal(maybeNamed(pod.volumes, 'ek-api-token'), undefined);
    assert.equal(maybeNamed(sidecar.volumeMounts, 'ek-api-token'), undefined);
    assert.deepEqual(field(named(pod.volumes, 'ek-oidc-token'), 'projected'), {
      sources: [{ serviceAccountToken: { audience: 'enkryptify', expirationSeconds: 3600, path: 'enkryptify' } }],
    });
    assert.deepEqual(named(sidecar.volumeMounts, 'ek-oidc-token'), { name: 'ek-oidc-token', mountPath: '/var/run/secrets/tokens', readOnly: true });
    assert.equal(rendered.some((object) => object.kind === 'Secret'), false);
  });

  void test('with components/broker-client: the broker as upstream, trusting only the CA of its TLS Secret', () => {
    const rendered = renderSample(['sidecar', 'broker-client']);
    assert.deepEqual(validateObjects(rendered), []);
    const pod = podSpec(workload(rendered, 'StatefulSet', 'ledger'));
    const sidecar = assertInjected(pod, { 'ek-sidecar/sidecar': 'true' }, ['ledger']);
    assert.equal(envOf(sidecar).get('EK_API_URL'), 'https://ek-sidecar-broker:9731');
    assert.equal(envOf(sidecar).get('EK_CA_FILE'), '/etc/ek-sidecar/broker-ca/ca.crt');
    assert.deepEqual(field(named(pod.volumes, 'ek-broker-ca'), 'secret'), { secretName: 'ek-sidecar-broker-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] });
  });

  void test('with components/readiness-probe: the opt-in readiness probe on /readyz', () => {
    const rendered = renderSample(['sidecar', 'readiness-probe']);
    const sidecar = named(podSpec(workload(rendered, 'Deployment', 'shop')).initContainers, 'ek-sidecar');
    assert.equal(field(field(sidecar.readinessProbe, 'httpGet'), 'path'), '/readyz');
    assert.equal(named(podSpec(workload(rendered, 'Deployment', 'untouched')).containers, 'app').readinessProbe, undefined);
  });
});

// ---------------------------------------------------------------------------------------------------------------

const policy = yamlObjects(readProjectFile('deploy', 'kyverno', 'inject-ek-sidecar.yaml'))[0] ?? {};
const kyvernoSchema = JSON.parse(readProjectFile('test', 'packaging', 'schemas', 'kyverno-clusterpolicy-v1.subset.json')) as Obj;

function validatePolicy(object: unknown): string[] {
  const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile(kyvernoSchema);
  return validate(object) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
}

function rules(): Obj[] {
  return asArray(field(policy.spec, 'rules')).filter(isObject);
}

/** The only Kyverno variables the policy may use, with what they resolve to for a pod without the secret-name
 * annotation: the simulation below substitutes exactly these. */
const VARIABLES: Readonly<Record<string, (element: string) => string>> = {
  '{{ request.object.metadata.annotations."ek-sidecar/secret-name" || \'enkryptify-api-token\' }}': () => 'enkryptify-api-token',
  '{{ element.name }}': (element) => element,
};

function substitute(value: unknown, element: string): unknown {
  return JSON.parse(
    JSON.stringify(value).replace(/\{\{[^}]*\}\}/g, (variable) => {
      const unescaped = JSON.parse(`"${variable}"`) as string;
      const resolve = VARIABLES[unescaped];
      if (resolve === undefined) throw new Error(`the test does not know the Kyverno variable ${unescaped}`);
      return JSON.stringify(resolve(element)).slice(1, -1);
    }),
  );
}

/** kubectl's strategic merge, offline: the same patch semantics Kyverno's patchStrategicMerge uses for Pods. */
function strategicMerge(pod: Obj, patch: unknown): Obj {
  const dir = mkdtempSync(join(tmpdir(), 'ek-sidecar-kyverno-'));
  try {
    writeFileSync(join(dir, 'pod.json'), JSON.stringify(pod));
    writeFileSync(join(dir, 'patch.json'), JSON.stringify(patch));
    const result = run('kubectl', ['patch', '--local', '-f', join(dir, 'pod.json'), '--type', 'strategic', '--patch-file', join(dir, 'patch.json'), '-o', 'json']);
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout) as Obj;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void describe('Kyverno ClusterPolicy deploy/kyverno/inject-ek-sidecar.yaml', () => {
  void test('is valid against the kyverno.io/v1 ClusterPolicy schema', () => {
    assert.deepEqual(validatePolicy(policy), []);
  });

  void test('the schema check is strict: a misspelt field is reported', () => {
    const broken = structuredClone(policy);
    const rule = asArray(field(broken.spec, 'rules'))[0];
    assert.ok(isObject(rule));
    rule.mutation = rule.mutate;
    delete rule.mutate;
    assert.notDeepEqual(validatePolicy(broken), []);
  });

  void test('matches only pods created with ek-sidecar/inject: "true", at admission', () => {
    assert.equal(field(policy.spec, 'background'), false);
    for (const rule of rules()) {
      assert.deepEqual(field(rule, 'match'), { any: [{ resources: { kinds: ['Pod'], operations: ['CREATE'], annotations: { 'ek-sidecar/inject': 'true' } } }] });
    }
  });

  void test('uses no Kyverno variable this test does not resolve', () => {
    const used = JSON.stringify(policy.spec).match(/\{\{[^}]*\}\}/g) ?? [];
    for (const variable of used) assert.ok(JSON.parse(`"${variable}"`) as string in VARIABLES, variable);
  });

  void test('its sidecar is the kustomize Component\'s, container for container', () => {
    const fromPolicy = named(field(field(field(field(rules()[0], 'mutate'), 'patchStrategicMerge'), 'spec'), 'initContainers'), 'ek-sidecar');
    const component = yamlObjects(readProjectFile('deploy', 'kubernetes', 'components', 'sidecar', 'sidecar.yaml'))[0] ?? {};
    assert.deepEqual(fromPolicy, named(podSpec(component).initContainers, 'ek-sidecar'));
  });

  void test('applied to the sample Deployment\'s pod, gives a valid pod with the sidecar and the JWT in every app', { skip: kubectlMissing }, () => {
    const shop = sampleObjects[0] ?? {};
    const template = field(shop.spec, 'template') as Obj;
    let pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...(template.metadata as Obj), name: 'shop-1', annotations: { 'ek-sidecar/inject': 'true' } },
      spec: template.spec,
    };
    const [addSidecar, giveApps] = rules();
    pod = strategicMerge(pod, substitute(field(field(addSidecar, 'mutate'), 'patchStrategicMerge'), ''));
    const foreach = asArray(field(field(giveApps, 'mutate'), 'foreach'))[0];
    assert.equal(field(foreach, 'list'), 'request.object.spec.containers');
    for (const container of asArray(field(pod.spec, 'containers'))) {
      pod = strategicMerge(pod, substitute(field(foreach, 'patchStrategicMerge'), String(field(container, 'name'))));
    }
    assert.deepEqual(validateObjects([pod]), []);
    assertInjected(podSpec(pod), field(pod.metadata, 'labels'), ['web', 'worker']);
    assert.equal(field(field(named(podSpec(pod).volumes, 'ek-api-token'), 'secret'), 'secretName'), 'enkryptify-api-token');
    assert.ok(maybeNamed(podSpec(pod).initContainers, 'migrate') !== undefined);
    assert.equal(envOf(named(podSpec(pod).containers, 'web')).get('LOG_LEVEL'), 'info');
  });
});
