// Shared helpers of the packaging tests: where the project is, running a tool, and reading YAML.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function projectPath(...parts: string[]): string {
  return join(projectRoot, ...parts);
}

export function readProjectFile(...parts: string[]): string {
  return readFileSync(projectPath(...parts), 'utf8');
}

export interface PackageJson {
  readonly version: string;
  readonly license: string;
  readonly bin: Readonly<Record<string, string>>;
  readonly dependencies: Readonly<Record<string, string>>;
  readonly devDependencies: Readonly<Record<string, string>>;
}

export function readPackageJson(): PackageJson {
  return JSON.parse(readProjectFile('package.json')) as PackageJson;
}

/** Runs a program without a shell; output as text. */
export function run(
  command: string,
  args: readonly string[],
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {},
): SpawnSyncReturns<string> {
  return spawnSync(command, args, {
    cwd: options.cwd ?? projectRoot,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** The reason a tool cannot be used here, or undefined when it answers `versionArgs` (default `--version`). */
export function missingTool(command: string, versionArgs: readonly string[] = ['--version']): string | undefined {
  const result = run(command, versionArgs, { timeoutMs: 30_000 });
  if (result.error !== undefined) return `${command} is not available here (${result.error.message})`;
  if (result.status !== 0) return `${[command, ...versionArgs].join(' ')} exited with ${String(result.status)}`;
  return undefined;
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A property of a plain object, or undefined. */
export function field(value: unknown, key: string): unknown {
  return isObject(value) ? value[key] : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

export type Obj = Record<string, unknown>;

/** Every document of a multi-document YAML text, as plain objects (empty documents dropped). */
export function yamlObjects(text: string): Obj[] {
  return parseAllDocuments(text).flatMap((document) => {
    if (document.errors.length > 0) throw new Error(`YAML: ${document.errors.map((error) => error.message).join('; ')}`);
    const object: unknown = document.toJS();
    if (object === null || object === undefined) return [];
    if (!isObject(object)) throw new Error('a YAML document is not an object');
    return [object];
  });
}

/** The item of a list named `name` (containers, volumes, env, ports…); throws when there is none. */
export function named(list: unknown, name: string): Obj {
  const found = asArray(list).find((item) => field(item, 'name') === name);
  if (!isObject(found)) throw new Error(`no item named ${name}`);
  return found;
}

/** The item named `name`, or undefined. */
export function maybeNamed(list: unknown, name: string): Obj | undefined {
  const found = asArray(list).find((item) => field(item, 'name') === name);
  return isObject(found) ? found : undefined;
}

/** spec.template.spec of a workload, or spec of a Pod. */
export function podSpec(object: Obj): Obj {
  const spec = object.kind === 'Pod' ? field(object, 'spec') : field(field(field(object, 'spec'), 'template'), 'spec');
  if (!isObject(spec)) throw new Error(`${String(object.kind)} has no pod spec`);
  return spec;
}

/** Environment of a container as name → literal value (valueFrom entries map to undefined). */
export function envOf(container: unknown): Map<string, string | undefined> {
  return new Map(asArray(field(container, 'env')).map((item) => [String(field(item, 'name')), field(item, 'value') as string | undefined]));
}

/** The objects `kubectl kustomize <dir>` renders. */
export function kustomize(dir: string): Obj[] {
  const rendered = run('kubectl', ['kustomize', dir]);
  if (rendered.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${rendered.stderr}`);
  return yamlObjects(rendered.stdout);
}
