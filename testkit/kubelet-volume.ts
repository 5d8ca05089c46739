// Kubernetes volumes as the kubelet's AtomicWriter lays them out, for secret volumes and projected
// service-account tokens alike: the files in a timestamped directory `..<stamp>`, `..data` a symlink to it, and each
// file a symlink to `..data/<file>`. An update writes a new directory, points a new `..data_tmp` link at it, renames
// that over `..data` (the one atomic step), then removes the old directory. The kubelet rotates a projected token
// this way at 80 % of its life.
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let generation = 0;

/** A secret volume holding `token`; returns the path of the `token` link. */
export async function createSecretVolume(dir: string, token: string): Promise<string> {
  return createAtomicVolume(dir, 'token', token, 0o644);
}

/** Rotate the token exactly as the kubelet does: new directory, new `..data_tmp` link renamed over `..data`, old directory removed. */
export async function rotateSecretVolume(dir: string, token: string): Promise<void> {
  await updateAtomicVolume(dir, 'token', token, 0o644);
}

/** Rotate as the kubelet does, to a generation whose `token` entry `plant` creates (a FIFO, a link: what a hostile pod could put there). */
export async function rotateSecretVolumeWith(dir: string, plant: (path: string) => Promise<void>): Promise<void> {
  await updateAtomicVolume(dir, 'token', plant, 0o644);
}

export interface ProjectedTokenVolumeOptions {
  /** The `path` of the serviceAccountToken source. Default "token". */
  readonly file?: string;
  /** The file's mode. Default 0644, a projected volume's `defaultMode`. */
  readonly mode?: number;
}

/** A projected volume with one serviceAccountToken source; returns the path of the token's link. */
export async function createProjectedTokenVolume(dir: string, token: string, options: ProjectedTokenVolumeOptions = {}): Promise<string> {
  return createAtomicVolume(dir, options.file ?? 'token', token, options.mode ?? 0o644);
}

/** The kubelet's rotation of a projected token: the same `..data` swap as a secret's. */
export async function rotateProjectedTokenVolume(dir: string, token: string, options: ProjectedTokenVolumeOptions = {}): Promise<void> {
  await updateAtomicVolume(dir, options.file ?? 'token', token, options.mode ?? 0o644);
}

/** A secret volume with several keys (e.g. `tls.crt` and `tls.key`); resolves with the path of each. */
export async function createSecretVolumeOf(dir: string, files: Readonly<Record<string, string>>): Promise<Record<string, string>> {
  return createSecretVolumeOfMode(dir, files, 0o644);
}

/** Update every key at once, as the kubelet does (see rotateSecretVolume). */
export async function rotateSecretVolumeOf(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  await swapData(dir, await writeGeneration(dir, files, 0o644));
}

type Plant = (path: string) => Promise<void>;

async function createAtomicVolume(dir: string, file: string, content: string, mode: number): Promise<string> {
  return (await createSecretVolumeOfMode(dir, { [file]: content }, mode))[file] ?? join(dir, file);
}

async function createSecretVolumeOfMode(dir: string, files: Readonly<Record<string, string>>, mode: number): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true });
  const first = await writeGeneration(dir, files, mode);
  await symlink(first, join(dir, '..data'));
  const paths: Record<string, string> = {};
  for (const name of Object.keys(files)) {
    await symlink(join('..data', name), join(dir, name));
    paths[name] = join(dir, name);
  }
  return paths;
}

async function updateAtomicVolume(dir: string, file: string, content: string | Plant, mode: number): Promise<void> {
  await swapData(dir, await writeGeneration(dir, { [file]: content }, mode));
}

/** The one atomic step: a new `..data_tmp` link renamed over `..data`; then the old directory goes. */
async function swapData(dir: string, next: string): Promise<void> {
  const previous = await readlink(join(dir, '..data'));
  await symlink(next, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  await rm(join(dir, previous), { recursive: true, force: true });
}

async function writeGeneration(dir: string, files: Readonly<Record<string, string | Plant>>, mode: number): Promise<string> {
  generation += 1;
  const stamp = `..${new Date().toISOString().replace(/[-:T.Z]/g, '_')}${process.pid}_${generation}`;
  await mkdir(join(dir, stamp));
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === 'string') await writeFile(join(dir, stamp, name), content, { mode });
    else await content(join(dir, stamp, name));
  }
  return stamp;
}
