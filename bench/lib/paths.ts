import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Generated output (results JSON, README section), kept apart from the hand-kept files. */
export const OUT_DIR = join(BENCH_DIR, 'out');
export const PROJECT_ROOT = join(BENCH_DIR, '..');
/** The built CLI: what users run. `npm run bench` builds it first. */
export const CLI = join(PROJECT_ROOT, 'dist', 'bin.js');
/** The startup snapshot `npm run build` makes beside it, with the Node.js that runs the bench. */
export const SNAPSHOT_BLOB = join(PROJECT_ROOT, 'dist', 'snapshot.blob');
export const FAKE_API_CLI = join(PROJECT_ROOT, 'testkit', 'fake-api', 'cli.ts');
