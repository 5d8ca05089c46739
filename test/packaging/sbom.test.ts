// The SBOM and the licenses that `npm run build` writes beside the bundle (dist/sbom.cdx.json,
// dist/THIRD_PARTY_LICENSES) and the image ships: every package esbuild actually bundles is a component, with its
// license text; no build tool is.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath, run } from './helpers.ts';

interface Component {
  readonly name: string;
  readonly version: string;
  readonly purl?: string;
  readonly licenses?: readonly { readonly license?: { readonly id?: string } }[];
}

interface Bom {
  readonly bomFormat: string;
  readonly specVersion: string;
  readonly metadata: { readonly component: { readonly name: string; readonly version: string } };
  readonly components: readonly Component[];
}

const sbomFile = projectPath('dist', 'sbom.cdx.json');
const licensesFile = projectPath('dist', 'THIRD_PARTY_LICENSES');

/** Package names esbuild puts into the bundle, from its metafile. */
function bundledPackages(): Set<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ek-sidecar-metafile-'));
  try {
    const result = run(projectPath('node_modules', '.bin', 'esbuild'), [
      'src/bin.ts', '--bundle', '--platform=node', '--format=esm', '--target=node24', `--outfile=${join(dir, 'bin.js')}`, `--metafile=${join(dir, 'meta.json')}`, '--log-level=error',
    ]);
    assert.equal(result.status, 0, result.stderr);
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { inputs: Record<string, unknown> };
    const names = Object.keys(meta.inputs).flatMap((input) => {
      const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\/[^]*$/.exec(input.replace(/^.*?node_modules\/(?=.*node_modules\/)/, 'node_modules/'));
      return match?.[1] === undefined ? [] : [match[1]];
    });
    return new Set(names);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void describe('dist/sbom.cdx.json and dist/THIRD_PARTY_LICENSES', () => {
  let bom: Bom;
  let licenses = '';
  before(() => {
    assert.ok(existsSync(sbomFile) && existsSync(licensesFile), 'run `npm run build` first (npm test does)');
    bom = JSON.parse(readFileSync(sbomFile, 'utf8')) as Bom;
    licenses = readFileSync(licensesFile, 'utf8');
  });

  void test('a CycloneDX SBOM of the ek-sidecar application', () => {
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.match(bom.specVersion, /^1\.\d+$/);
    assert.equal(bom.metadata.component.name, 'ek-sidecar');
    assert.equal(bom.metadata.component.version, (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version);
  });

  void test('lists undici, pino, prom-client, chokidar and yargs, with versions, purls and licenses', () => {
    for (const name of ['undici', 'pino', 'prom-client', 'chokidar', 'yargs']) {
      const component = bom.components.find((candidate) => candidate.name === name);
      assert.ok(component !== undefined, `${name} is not in the SBOM`);
      assert.match(component.version, /^\d+\.\d+\.\d+/);
      assert.equal(component.purl, `pkg:npm/${name}@${component.version}`);
      assert.ok(component.licenses?.[0]?.license?.id, `${name} has no license id`);
    }
  });

  void test('every package esbuild bundles is a component, and no build tool is', () => {
    const names = new Set(bom.components.map((component) => component.name));
    const bundled = bundledPackages();
    assert.ok(bundled.size > 10, `only ${String(bundled.size)} bundled packages found`);
    assert.deepEqual([...bundled].filter((name) => !names.has(name)), []);
    for (const tool of ['esbuild', 'typescript', 'node', 'eslint', 'ajv']) assert.equal(names.has(tool), false, `${tool} is a build tool`);
  });

  void test('THIRD_PARTY_LICENSES carries the license text of every component', () => {
    for (const component of bom.components) {
      assert.ok(licenses.includes(`==== ${component.name}@${component.version} `), `${component.name}@${component.version} has no section`);
    }
    const undici = licenses.slice(licenses.indexOf('==== undici@'));
    assert.match(undici.slice(0, 2_000), /MIT License[\s\S]*Permission is hereby granted/);
  });
});
