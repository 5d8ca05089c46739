// Completes what the image ships beside dist/bin.js, after `npm sbom` has written dist/sbom.cdx.json:
//  - the SBOM: the root component named as package.json names it (npm sbom takes the directory's name), and every
//    production package added that npm sbom --omit dev leaves out (it drops a package that dev tools also use, such
//    as ms, although esbuild bundles it);
//  - dist/THIRD_PARTY_LICENSES: the license files of the same packages, as published on npm.
// A bundle hides its dependencies and their notices from image scanners and readers; these two files show them.
//   node deploy/image/bundle-notices.ts        (run by `npm run build`)
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface LockPackage {
  readonly version?: string;
  readonly license?: string;
  readonly integrity?: string;
  readonly dev?: boolean;
  readonly devOptional?: boolean;
}

interface Installed {
  readonly name: string;
  readonly path: string;
  readonly entry: LockPackage;
}

interface Component {
  readonly name: string;
  readonly version?: string;
}

interface Bom {
  metadata: { component: { name: string } };
  components: Component[];
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LICENSE_FILE = /^(licen[cs]e|copying|notice)([-._][\w.-]*)?$/i;

/** The production packages of package-lock.json (v3) that are on disk, one per name@version. */
function productionPackages(): Installed[] {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const seen = new Map<string, Installed>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true || entry.devOptional === true || !existsSync(join(root, path))) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const key = `${name}@${entry.version ?? ''}`;
    if (!seen.has(key)) seen.set(key, { name, path, entry });
  }
  return [...seen.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** A CycloneDX 1.5 component for a package npm sbom left out. */
function component({ name, entry }: Installed): Record<string, unknown> {
  const version = entry.version ?? '';
  const sha512 = /^sha512-(.+)$/.exec(entry.integrity ?? '')?.[1];
  return {
    'bom-ref': `${name}@${version}`,
    type: 'library',
    name,
    version,
    scope: 'required',
    purl: `pkg:npm/${encodeURIComponent(name).replace('%2F', '/')}@${version}`,
    ...(entry.license === undefined ? {} : { licenses: [{ license: { id: entry.license } }] }),
    ...(sha512 === undefined ? {} : { hashes: [{ alg: 'SHA-512', content: Buffer.from(sha512, 'base64').toString('hex') }] }),
  };
}

function completeSbom(packages: readonly Installed[]): void {
  const file = join(root, 'dist', 'sbom.cdx.json');
  const bom = JSON.parse(readFileSync(file, 'utf8')) as Bom;
  bom.metadata.component.name = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string }).name;
  const listed = new Set(bom.components.map((item) => `${item.name}@${item.version ?? ''}`));
  for (const installed of packages) {
    if (!listed.has(`${installed.name}@${installed.entry.version ?? ''}`)) bom.components.push(component(installed) as unknown as Component);
  }
  writeFileSync(file, `${JSON.stringify(bom, null, 2)}\n`);
}

function licenseSection({ name, path, entry }: Installed): string {
  const files = readdirSync(join(root, path)).filter((file) => LICENSE_FILE.test(file)).sort();
  const texts = files.map((file) => `--- ${file}\n${readFileSync(join(root, path, file), 'utf8').trimEnd()}\n`);
  const body = texts.length > 0 ? texts.join('\n') : `(the package ships no license file; package.json declares ${entry.license ?? 'no license'})\n`;
  return `==== ${name}@${entry.version ?? '?'} (${entry.license ?? 'license not declared'}) ====\n${body}`;
}

function writeLicenses(packages: readonly Installed[]): void {
  const header = [
    'ek-sidecar (Apache-2.0) bundles the following packages into dist/bin.js. Their license files follow, as published',
    `on npm: ${String(packages.length)} packages, the components of dist/sbom.cdx.json.`,
    '',
  ].join('\n');
  writeFileSync(join(root, 'dist', 'THIRD_PARTY_LICENSES'), `${header}\n${packages.map(licenseSection).join('\n')}`);
}

const packages = productionPackages();
completeSbom(packages);
writeLicenses(packages);
