import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let generation = 0;

/**
 * A Kubernetes secret volume as the kubelet's AtomicWriter lays it out: the data in a timestamped directory,
 * `..data` a symlink to it, and `token` a symlink to `..data/token`. Updates swap `..data` with a rename.
 */
export async function createSecretVolume(dir: string, token: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const first = await writeGeneration(dir, tokenText(token));
  await symlink(first, join(dir, '..data'));
  await symlink(join('..data', 'token'), join(dir, 'token'));
  return join(dir, 'token');
}

/** Rotate the token exactly as the kubelet does: new directory, new `..data_tmp` link renamed over `..data`, old directory removed. */
export async function rotateSecretVolume(dir: string, token: string): Promise<void> {
  await rotateSecretVolumeWith(dir, tokenText(token));
}

/** Rotate as the kubelet does, to a generation whose `token` entry `plant` creates (a FIFO, a link: what a hostile pod could put there). */
export async function rotateSecretVolumeWith(dir: string, plant: (path: string) => Promise<void>): Promise<void> {
  const previous = await readlink(join(dir, '..data'));
  const next = await writeGeneration(dir, plant);
  await symlink(next, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  await rm(join(dir, previous), { recursive: true, force: true });
}

function tokenText(token: string): (path: string) => Promise<void> {
  return (path) => writeFile(path, token, { mode: 0o644 });
}

async function writeGeneration(dir: string, plant: (path: string) => Promise<void>): Promise<string> {
  generation += 1;
  const stamp = `..${new Date().toISOString().replace(/[-:T.Z]/g, '_')}${process.pid}_${generation}`;
  await mkdir(join(dir, stamp));
  await plant(join(dir, stamp, 'token'));
  return stamp;
}
