// Shared helpers of the packaging tests: where the project is, running a tool, and reading YAML.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function projectPath(...parts: string[]): string {
  return join(projectRoot, ...parts);
}

export function readProjectFile(...parts: string[]): string {
  return readFileSync(projectPath(...parts), 'utf8');
}

export interface PackageJson {
  readonly version: string;
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
