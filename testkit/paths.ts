// Where the project and its built CLI are, for everything that starts the daemon (tests, the demo).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The built CLI (`npm run build`): what users run. */
export const CLI = join(PROJECT_ROOT, 'dist', 'bin.js');
