// `npm run build`: dist/ as users and the image run it (esbuild's API; no file of src/ is read at run time).
//   dist/bin.js                the CLI: signal handlers, then the launcher (src/snapshot/launcher.ts), then main
//   dist/main.js, dist/*.js    the plain bundle: everything else, loaded by bin.js when it does not restart from
//                              the snapshot (code splitting keeps one copy of the modules bin.js shares with it)
//   dist/snapshot-entry.cjs    the startup snapshot's builder script (src/snapshot/entry.ts), one CommonJS file
//   dist/snapshot-config.json  its configuration for `node --build-snapshot-config` (with the code cache: a bigger blob, a faster start)
//   dist/snapshot.blob, dist/snapshot.json   the snapshot and the stamp of the binary that built it, built by the
//                              Node.js running this script, unless --no-snapshot (the image builds its own, with
//                              its own node: a blob works only on the binary that built it)
// Both bundles are minified with their names kept (error classes and stack frames keep them) and ASCII-only, so that
// V8 holds their source as one-byte strings.
//   node deploy/build/build.ts [--no-snapshot] [--no-minify]   (--no-minify: readable stack traces and CPU profiles)
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions } from 'esbuild';
import { slimImports } from './slim-imports.ts';
import { lazyBuiltins, libraryEdits } from './snapshot-plugins.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');
export const SNAPSHOT = {
  entry: join(DIST, 'snapshot-entry.cjs'),
  config: join(DIST, 'snapshot-config.json'),
  blob: join(DIST, 'snapshot.blob'),
  stamp: join(DIST, 'snapshot.json'),
};

const COMMON: BuildOptions = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  target: 'node24',
  minify: !process.argv.includes('--no-minify'),
  keepNames: true,
  legalComments: 'none',
  charset: 'ascii',
  logLevel: 'warning',
  plugins: [slimImports()],
  // undici's marker for a build that leaves out its experimental Milo parser (four WebAssembly modules, ~150 KB and an
  // environment read at load), as Node.js core's own bundle of undici does; llhttp stays the parser.
  define: { esbuildDetection: 'true' },
};

/** CommonJS packages inside an ES module bundle call require() and read __filename/__dirname. */
const ESM_REQUIRE_BANNER = [
  "import { createRequire as __ekRequire } from 'node:module';",
  "import { dirname as __ekDirname } from 'node:path';",
  "import { fileURLToPath as __ekPath } from 'node:url';",
  'const require = __ekRequire(import.meta.url);',
  'const __filename = __ekPath(import.meta.url);',
  'const __dirname = __ekDirname(__filename);',
].join(' ');

/**
 * The snapshot builder's bundle: one CommonJS file (a snapshot is built from one script), with the stand-ins of
 * snapshot-plugins.ts. `prelude` goes first (test/slow/snapshot.test.ts records what loading reads with it).
 */
export function snapshotBundle(options: { outfile: string; minify?: boolean; prelude?: string }): BuildOptions {
  return {
    ...COMMON,
    minify: options.minify ?? COMMON.minify ?? true,
    entryPoints: ['src/snapshot/entry.ts'],
    format: 'cjs',
    outfile: options.outfile,
    // yargs asks for import.meta.url (to create a require for config files it is never given here).
    define: { ...COMMON.define, 'import.meta.url': '__ekImportMetaUrl' },
    banner: { js: `${options.prelude ?? ''}var __ekImportMetaUrl = require("node:url").pathToFileURL(__filename).href;` },
    plugins: [slimImports(), lazyBuiltins(), libraryEdits()],
  };
}

export async function buildBundles(): Promise<void> {
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  await build({
    ...COMMON,
    entryPoints: { bin: 'src/bin.ts' },
    format: 'esm',
    splitting: true,
    outdir: DIST,
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
    banner: { js: ESM_REQUIRE_BANNER },
  });
  await build(snapshotBundle({ outfile: SNAPSHOT.entry }));
  // The builder path is relative to the working directory of the snapshot build: the package root (or /app). The code
  // cache stays in: without it every function a start runs is compiled again at each start (cold start 1.53-1.56x of
  // a bare script against 1.44-1.50x with it, for about 4 MB more resident: idle RSS 1.13x instead of 1.06x).
  writeFileSync(SNAPSHOT.config, `${JSON.stringify({ builder: relative(ROOT, SNAPSHOT.entry), withoutCodeCache: false }, null, 2)}\n`);
}

/**
 * Build a blob with `node` (this process's binary unless told otherwise) from the package root: dist/snapshot.blob
 * from dist/snapshot-config.json unless told otherwise. Throws when it fails.
 */
export function buildSnapshot(options: { node?: string; blob?: string; config?: string } = {}): void {
  const blob = options.blob ?? SNAPSHOT.blob;
  rmSync(blob, { force: true });
  rmSync(blob.replace(/(\.blob)?$/, '.json'), { force: true });
  const result = spawnSync(options.node ?? process.execPath, ['--snapshot-blob', relative(ROOT, blob), '--build-snapshot-config', relative(ROOT, options.config ?? SNAPSHOT.config)], {
    cwd: ROOT,
    encoding: 'utf8',
    // Node warns that it has not verified each built-in it loads in a snapshot; the black-box tests do.
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  // The error names the line of the one-line bundle and prints it: leave that out.
  const stderr = result.stderr.split('\n').filter((line) => line.length < 500).join('\n');
  if (result.status !== 0) throw new Error(`building the startup snapshot failed (exit ${String(result.status)}):\n${stderr}`);
}

if (import.meta.main) {
  await buildBundles();
  if (!process.argv.includes('--no-snapshot')) buildSnapshot();
}
