import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, rmdir, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A real tmpfs of a few pages, to run out of space for real (page size 4 KiB). */
export interface SmallVolume {
  readonly path: string;
  /** Bytes still free for file data. */
  free(): Promise<number>;
  /** Fill the volume with a filler file until exactly `bytes` stay free. */
  fillLeaving(bytes: number): Promise<void>;
  /** Remove the filler. */
  drain(): Promise<void>;
  /** Make the volume read-only (true) or writable again. */
  readOnly(on: boolean): void;
  /** Unmount and remove the mount point. */
  remove(): Promise<void>;
}

/** Mount a tmpfs of `sizeBytes`; resolves with the reason instead when mounting is not permitted here (not root, no CAP_SYS_ADMIN). */
export async function mountSmallVolume(sizeBytes: number): Promise<SmallVolume | { readonly skip: string }> {
  if (process.platform !== 'linux') return { skip: `a tmpfs needs Linux, not ${process.platform}` };
  if (process.getuid?.() !== 0) return { skip: 'mounting a tmpfs needs root' };
  const path = await mkdtemp(join(tmpdir(), 'ek-sidecar-volume-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${String(sizeBytes)},mode=0755`, 'tmpfs', path], { stdio: 'pipe' });
  } catch (error) {
    await rmdir(path).catch(() => undefined);
    const stderr = error instanceof Error && 'stderr' in error ? String(error.stderr).trim() : String(error);
    return { skip: `mounting a tmpfs is not permitted here: ${stderr}` };
  }
  const filler = join(path, 'filler');
  const free = async (): Promise<number> => {
    const info = await statfs(path);
    return info.bavail * info.bsize;
  };
  return {
    path,
    free,
    async fillLeaving(bytes) {
      await rm(filler, { force: true });
      await writeFile(filler, Buffer.alloc(Math.max(0, (await free()) - bytes)));
    },
    drain: () => rm(filler, { force: true }),
    readOnly(on) {
      execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, path], { stdio: 'pipe' });
    },
    async remove() {
      execFileSync('umount', ['-l', path], { stdio: 'pipe' });
      await rmdir(path);
    },
  };
}

/** Run `body` on a fresh small volume, unmounted afterwards; the test is skipped, saying why, where mounting is not permitted. */
export async function withSmallVolume(t: TestContext, sizeBytes: number, body: (volume: SmallVolume) => Promise<void>): Promise<void> {
  const volume = await mountSmallVolume(sizeBytes);
  if ('skip' in volume) {
    t.skip(volume.skip);
    return;
  }
  try {
    await body(volume);
  } finally {
    await volume.remove();
  }
}
