// Validates Kubernetes objects against the Kubernetes OpenAPI schemas (and the CRDs' schemas of prometheus-operator
// and cert-manager), twice over:
//  1. kubernetes-models' generated validators (types, required fields, formats);
//  2. the same packages' generated TypeScript interfaces, through the TypeScript compiler: an object literal with a
//     field the API does not know (a misspelt `startupProbes`, an init-container `restartPolicy` on a schema that
//     predates native sidecars) is an excess-property error. That is the apiserver's strict field validation,
//     which the generated validators do not do (they accept unknown fields).
import ts from 'typescript';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { projectPath, field } from './helpers.ts';

interface Kind {
  /** Throws when the object does not match the schema. */
  readonly validate: (object: Record<string, unknown>) => void;
  /** Module and interface name of the generated TypeScript type. */
  readonly module: string;
  readonly typeName: string;
}

interface Model {
  validate(): void;
}

/** The object is checked by the model's validate(), not by the compiler here: hence `never` for its argument. */
function kind(model: new (data: never) => Model, module: string, typeName: string): Kind {
  return {
    validate: (object) => {
      new model(object as never).validate();
    },
    module,
    typeName,
  };
}

const KINDS: Readonly<Record<string, Kind>> = {
  'apps/v1 Deployment': kind(Deployment, 'kubernetes-models/apps/v1/Deployment', 'IDeployment'),
  'apps/v1 StatefulSet': kind(StatefulSet, 'kubernetes-models/apps/v1/StatefulSet', 'IStatefulSet'),
  'v1 Pod': kind(Pod, 'kubernetes-models/v1/Pod', 'IPod'),
  'v1 Secret': kind(Secret, 'kubernetes-models/v1/Secret', 'ISecret'),
  'v1 Service': kind(Service, 'kubernetes-models/v1/Service', 'IService'),
  'v1 ServiceAccount': kind(ServiceAccount, 'kubernetes-models/v1/ServiceAccount', 'IServiceAccount'),
  'v1 ConfigMap': kind(ConfigMap, 'kubernetes-models/v1/ConfigMap', 'IConfigMap'),
  'policy/v1 PodDisruptionBudget': kind(PodDisruptionBudget, 'kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'),
  'networking.k8s.io/v1 NetworkPolicy': kind(NetworkPolicy, 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'INetworkPolicy'),
  'monitoring.coreos.com/v1 PodMonitor': kind(PodMonitor, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor', 'IPodMonitor'),
  'monitoring.coreos.com/v1 ServiceMonitor': kind(ServiceMonitor, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'),
  'monitoring.coreos.com/v1 PrometheusRule': kind(PrometheusRule, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'IPrometheusRule'),
  'cert-manager.io/v1 Certificate': kind(Certificate, '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate', 'ICertificate'),
};

function kindOf(object: Record<string, unknown>): string {
  return `${String(field(object, 'apiVersion'))} ${String(field(object, 'kind'))}`;
}

/** One line per problem, naming the object; empty when every object is valid. */
export function validateObjects(objects: readonly Record<string, unknown>[]): string[] {
  const problems: string[] = [];
  const known = objects.filter((object) => {
    if (KINDS[kindOf(object)] !== undefined) return true;
    problems.push(`${kindOf(object)}: no schema known to this test`);
    return false;
  });
  for (const object of known) {
    try {
      KINDS[kindOf(object)]?.validate(object);
    } catch (error) {
      problems.push(`${kindOf(object)} ${String(field(field(object, 'metadata'), 'name'))}: ${String(error)}`);
    }
  }
  problems.push(...strictFieldProblems(known));
  return problems;
}

const parsedDeclarations = new Map<string, ts.SourceFile>();
let previousProgram: ts.Program | undefined;

/** Type-checks the objects as object literals of the generated interfaces, in memory. */
function strictFieldProblems(objects: readonly Record<string, unknown>[]): string[] {
  if (objects.length === 0) return [];
  const fileName = projectPath('test', 'packaging', '__manifests_under_test__.ts');
  const imports = new Set<string>();
  const declarations = objects.map((object, index) => {
    const objectKind = KINDS[kindOf(object)];
    if (objectKind === undefined) throw new Error(`unknown kind ${kindOf(object)}`);
    imports.add(`import type { ${objectKind.typeName} } from '${objectKind.module}';`);
    return `export const object${String(index)}: ${objectKind.typeName} = ${JSON.stringify(object, null, 2)};`;
  });
  const source = [...imports, ...declarations].join('\n');

  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  host.getSourceFile = (name, languageVersion, ...rest) => {
    if (name === fileName) return ts.createSourceFile(name, source, languageVersion, true);
    // The declaration files never change within a test run: parse each once (most of the cost of a check).
    const cached = parsedDeclarations.get(name) ?? getSourceFile(name, languageVersion, ...rest);
    if (cached !== undefined) parsedDeclarations.set(name, cached);
    return cached;
  };

  const program = ts.createProgram({ rootNames: [fileName], options, host, ...(previousProgram === undefined ? {} : { oldProgram: previousProgram }) });
  previousProgram = program;
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (diagnostic.file === undefined || diagnostic.start === undefined) return message;
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    const text = diagnostic.file.text.split('\n')[line]?.trim() ?? '';
    return `${message} (at ${text})`;
  });
}
