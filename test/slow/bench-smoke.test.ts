// The benchmark harness in its smoke mode (seconds): every section runs against the built CLI and lands in the
// results JSON. Needs dist/ (npm test builds it first). Writes to a temp file, never to bench/out/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SECTIONS } from '../../bench/lib/options.ts';
import { PROJECT_ROOT } from '../../bench/lib/paths.ts';

interface Results {
  readonly mode: string;
  readonly machine: { readonly nproc: number; readonly node: string };
  readonly sections: Record<string, { readonly rows: readonly { readonly metric: string }[] } | undefined>;
  readonly failed: readonly unknown[];
}

test('bench/run.ts --smoke exits 0 and writes a results JSON with every section', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ek-bench-smoke-'));
  const out = join(dir, 'results.json');
  try {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bench', 'run.ts'), '--smoke', '--out', out, '--no-readme'], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, `bench exited ${String(code)}; stderr:\n${stderr}`);

    const results = JSON.parse(await readFile(out, 'utf8')) as Results;
    assert.equal(results.mode, 'smoke');
    assert.equal(results.machine.node, process.version, 'the bench runs on the same Node as the tests');
    assert.deepEqual(results.failed, []);
    for (const name of SECTIONS) {
      const section = results.sections[name];
      assert.ok(section !== undefined, `section ${name} is in the results`);
      assert.ok(section.rows.length > 0, `section ${name} has rows`);
    }
    assert.match(stdout, /^\| section \| metric \|/m, 'the table is printed on stdout');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
