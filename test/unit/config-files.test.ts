import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { resolveConfig } from '../../src/config/resolve-config.ts';
import { configErrorOf } from '../helpers/config-error.ts';

const PEM_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'pem');
const CERT = join(PEM_DIR, 'a.crt');
const KEY = join(PEM_DIR, 'a.key');
const OTHER_KEY = join(PEM_DIR, 'b.key');
const ENCRYPTED_KEY = join(PEM_DIR, 'a-encrypted.key');
const certText = readFileSync(CERT, 'utf8');
const keyText = readFileSync(KEY, 'utf8');
/** A line of the private key's base64: no message may contain any of it. */
const keyLines = keyText.split('\n').filter((line) => line.length > 20 && !line.startsWith('-----'));

const scratch = mkdtempSync(join(tmpdir(), 'ek-sidecar-config-files-'));
after(() => {
  rmSync(scratch, { recursive: true, force: true });
});
function scratchFile(name: string, content: string): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
}

void describe('--ca-file', () => {
  void it('reads a PEM bundle once, keeping only its certificates', async () => {
    const path = scratchFile('bundle.pem', `# comment\n${certText}${keyText}${certText}`);
    const config = await resolveConfig({ 'ca-file': path }, {});
    assert.equal(config.caFile, path);
    assert.equal(config.caPem, `${certText.trim()}\n${certText.trim()}\n`);
  });

  void it('reads it from EK_CA_FILE too, for once', async () => {
    assert.equal((await resolveConfig({}, { EK_CA_FILE: CERT }, 'once')).caPem, certText);
  });

  void it('follows a symbolic link (Secret volumes are links into ..data)', async () => {
    const link = join(scratch, 'ca-link.pem');
    symlinkSync(CERT, link);
    assert.equal((await resolveConfig({ 'ca-file': link }, {})).caPem, certText);
  });

  const bad: readonly (readonly [string, () => string, RegExp])[] = [
    ['a missing file', () => join(scratch, 'missing.pem'), /cannot read .*missing\.pem/],
    ['a file without PEM', () => scratchFile('not-pem.txt', 'hello\n'), /holds no PEM certificate/],
    ['a certificate that does not parse', () => scratchFile('broken.pem', '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTest\n-----END CERTIFICATE-----\n'), /certificate 1 of 1 does not parse/],
    ['a private key only', () => KEY, /holds no PEM certificate/],
    ['a directory', () => scratch, /not a regular file/],
    ['a file over 1 MiB', () => scratchFile('huge.pem', `${certText}${'#'.repeat(1024 * 1024)}`), /larger than 1 MiB/],
  ];
  for (const [what, path, says] of bad) {
    void it(`refuses ${what}, naming the option and the path`, async () => {
      const file = path();
      const error = await configErrorOf({ 'ca-file': file }, {});
      assert.equal(error.option, 'ca-file');
      assert.match(error.message, /^--ca-file: /);
      assert.match(error.message, says);
      assert.ok(error.message.includes(file), error.message);
    });
  }

  void it('refuses a FIFO without blocking on it', async (t) => {
    const fifo = join(scratch, 'ca.fifo');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      t.skip('mkfifo is not available');
      return;
    }
    assert.match((await configErrorOf({}, { EK_CA_FILE: fifo })).message, /^EK_CA_FILE \(--ca-file\): .*not a regular file/);
  });
});

void describe('--tls-cert-file and --tls-key-file', () => {
  void it('take a certificate and its key; Config keeps only the paths', async () => {
    const config = await resolveConfig({ 'tls-cert-file': CERT, 'tls-key-file': KEY }, {});
    assert.deepEqual(config.tls, { certFile: CERT, keyFile: KEY });
  });

  void it('accept a chain (leaf first) and a SEC 1 key', async () => {
    const chain = scratchFile('chain.pem', `${certText}${certText}`);
    assert.deepEqual((await resolveConfig({}, { EK_TLS_CERT_FILE: chain, EK_TLS_KEY_FILE: KEY })).tls, { certFile: chain, keyFile: KEY });
  });

  const bad: readonly (readonly [string, () => readonly [string, string], 'tls-cert-file' | 'tls-key-file', RegExp])[] = [
    ['a missing certificate', () => [join(scratch, 'missing.crt'), KEY], 'tls-cert-file', /cannot read/],
    ['a missing key', () => [CERT, join(scratch, 'missing.key')], 'tls-key-file', /cannot read/],
    ['the files swapped', () => [KEY, CERT], 'tls-cert-file', /swapped/],
    ['a key that belongs to another certificate', () => [CERT, OTHER_KEY], 'tls-key-file', /does not belong to the certificate/],
    ['an encrypted key', () => [CERT, ENCRYPTED_KEY], 'tls-key-file', /encrypted/],
    ['two keys in the key file', () => [CERT, scratchFile('two.key', `${keyText}${keyText}`)], 'tls-key-file', /more than one private key/],
    ['a certificate file without PEM', () => [scratchFile('empty.crt', ''), KEY], 'tls-cert-file', /no PEM certificate/],
    ['a key file with the certificate only', () => [CERT, CERT], 'tls-key-file', /a certificate, not a private key/],
    ['a key that does not parse', () => [CERT, scratchFile('broken.key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')], 'tls-key-file', /does not parse/],
  ];
  for (const [what, files, option, says] of bad) {
    void it(`refuse ${what}: exit 2 naming --${option}, never the key`, async () => {
      const [cert, key] = files();
      for (const error of [await configErrorOf({ 'tls-cert-file': cert, 'tls-key-file': key }, {}), await configErrorOf({}, { EK_TLS_CERT_FILE: cert, EK_TLS_KEY_FILE: key })]) {
        assert.equal(error.option, option);
        assert.match(error.message, says);
        for (const line of keyLines) assert.ok(!error.message.includes(line), 'no key material in the message');
      }
    });
  }

  void it('are not read by once or check', async () => {
    const env = { EK_TLS_CERT_FILE: KEY, EK_TLS_KEY_FILE: CERT };
    assert.equal((await resolveConfig({}, env, 'once')).tls, undefined);
    assert.equal((await resolveConfig({}, env, 'check')).tls, undefined);
  });
});
