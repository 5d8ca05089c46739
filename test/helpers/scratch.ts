import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { DiskError } from '../../src/core/errors.ts';

/**
 * A temporary root for one test file (made before its tests, removed after them) and a fresh empty directory
 * below it per test, so that tests do not see each other's files. Call at the top level of the test file.
 */
export function scratchDirectories(prefix: string): { fresh(): Promise<string>; root(): string } {
  let root = '';
  let count = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  return {
    root: () => root,
    async fresh() {
      const dir = join(root, `case-${String(++count)}`);
      await mkdir(dir);
      return dir;
    },
  };
}

/** The DiskError `promise` rejects with; fails the test if it resolves or rejects with anything else. */
export async function diskErrorOf(promise: Promise<unknown>): Promise<DiskError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DiskError, `expected a DiskError, got ${String(error)}`);
    return error;
  }
  assert.fail('no error');
}
