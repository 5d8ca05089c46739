import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../helpers/daemon.ts';

test('npm run demo starts the daemon against the fake API, serves a JWT and reads a secret through the API proxy', async () => {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'testkit', 'demo.ts'), '--exit-when-ready'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { output += chunk; });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, output);
  assert.match(output, /ek-sidecar started/);
  assert.doesNotMatch(output, /ek_live_demo_[0-9a-f]{32}/, 'the demo never prints its API token');
});
