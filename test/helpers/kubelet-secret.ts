import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let generation = 0;

/**
 * A Kubernetes secret volume as the kubelet's AtomicWriter lays it out: the data in a timestamped directory,
 * `..data` a symlink to it, and `token` a symlink to `..data/token`. Updates swap `..data` with a rename.
 */
export async function createSecretVolume(dir: string, token: string): Promise<string> {
  const paths = await createSecretVolumeOf(dir, { token });
  return paths.token ?? join(dir, 'token');
}

/** Rotate the token exactly as the kubelet does: new directory, new `..data_tmp` link renamed over `..data`, old directory removed. */
export async function rotateSecretVolume(dir: string, token: string): Promise<void> {
  await rotateSecretVolumeOf(dir, { token });
}

/** A secret volume with several keys (e.g. `tls.crt` and `tls.key`); resolves with the path of each. */
export async function createSecretVolumeOf(dir: string, files: Readonly<Record<string, string>>): Promise<Record<string, string>> {
  await mkdir(dir, { recursive: true });
  const first = await writeGeneration(dir, files);
  await symlink(first, join(dir, '..data'));
  const paths: Record<string, string> = {};
  for (const name of Object.keys(files)) {
    await symlink(join('..data', name), join(dir, name));
    paths[name] = join(dir, name);
  }
  return paths;
}

/** Update every key at once, as the kubelet does (see rotateSecretVolume). */
export async function rotateSecretVolumeOf(dir: string, files: Readonly<Record<string, string>>): Promise<void> {
  const previous = await readlink(join(dir, '..data'));
  const next = await writeGeneration(dir, files);
  await symlink(next, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  await rm(join(dir, previous), { recursive: true, force: true });
}

async function writeGeneration(dir: string, files: Readonly<Record<string, string>>): Promise<string> {
  generation += 1;
  const stamp = `..${new Date().toISOString().replace(/[-:T.Z]/g, '_')}${process.pid}_${generation}`;
  await mkdir(join(dir, stamp));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, stamp, name), content, { mode: 0o644 });
  return stamp;
}
