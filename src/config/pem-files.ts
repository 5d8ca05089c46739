import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { describeError } from '../core/errors.ts';
import { fail, ok, type Parsed } from './values.ts';

/**
 * The PEM files the options name, checked once at start so that a wrong file exits 2 instead of failing at the first
 * exchange or handshake. The only I/O of the configuration. Contents never appear in a message.
 */

/** A CA bundle or a certificate chain is a few KiB; a larger file is surely not what was meant. */
const MAX_PEM_BYTES = 1024 * 1024;
const PRIVATE_KEY_LABELS = ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY'];

interface PemBlock {
  readonly label: string;
  readonly text: string;
}

/** A regular file (a FIFO would block the start), bounded in size; its PEM blocks. */
function readPemBlocks(path: string): Parsed<PemBlock[]> {
  let text: string;
  try {
    // stat, not lstat: the kubelet mounts Secret keys as symbolic links into its `..data` directory.
    const stats = statSync(path);
    if (!stats.isFile()) return fail(`${path} is not a regular file`);
    if (stats.size > MAX_PEM_BYTES) return fail(`${path} is larger than 1 MiB`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return fail(`cannot read ${path}: ${describeError(error)}`);
  }
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)];
  return ok(blocks.map((match) => ({ label: match[1] ?? '', text: match[0] })));
}

/** `--ca-file`: every CERTIFICATE block must parse; at least one. Resolves with the file's text for the upstream agent. */
export function readCaBundle(path: string): Parsed<string> {
  const blocks = readPemBlocks(path);
  if (!blocks.ok) return blocks;
  const certificates = blocks.value.filter((block) => block.label === 'CERTIFICATE');
  if (certificates.length === 0) return fail(`${path} holds no PEM certificate`);
  const broken = certificates.findIndex((block) => parseCertificate(block) === undefined);
  if (broken >= 0) return fail(`${path}: certificate ${broken + 1} of ${certificates.length} does not parse`);
  return ok(certificates.map((block) => block.text).join('\n') + '\n');
}

export interface TlsProblem {
  readonly option: 'tls-cert-file' | 'tls-key-file';
  readonly message: string;
}

/**
 * `--tls-cert-file` and `--tls-key-file`: a certificate (chain, leaf first) and an unencrypted private key that
 * belongs to it. The http layer re-reads both at run time; this only refuses a pair that could never serve.
 */
export function checkTlsPair(certFile: string, keyFile: string): TlsProblem | undefined {
  const certBlocks = readPemBlocks(certFile);
  if (!certBlocks.ok) return { option: 'tls-cert-file', message: certBlocks.error };
  const leafBlock = certBlocks.value.find((block) => block.label === 'CERTIFICATE');
  if (leafBlock === undefined) {
    const swapped = certBlocks.value.some((block) => block.label.endsWith('PRIVATE KEY'));
    return { option: 'tls-cert-file', message: `${certFile} holds ${swapped ? 'a private key, not a certificate (are --tls-cert-file and --tls-key-file swapped?)' : 'no PEM certificate'}` };
  }
  const leaf = parseCertificate(leafBlock);
  if (leaf === undefined) return { option: 'tls-cert-file', message: `${certFile}: the certificate does not parse` };

  const keyBlocks = readPemBlocks(keyFile);
  if (!keyBlocks.ok) return { option: 'tls-key-file', message: keyBlocks.error };
  const keys = keyBlocks.value.filter((block) => PRIVATE_KEY_LABELS.includes(block.label));
  if (keys.length !== 1) return { option: 'tls-key-file', message: `${keyFile} ${keyProblem(keyBlocks.value, keys.length)}` };
  const key = parseKey(keys[0]);
  if (key === undefined) return { option: 'tls-key-file', message: `${keyFile}: the private key does not parse (an encrypted key is not supported)` };
  if (!leaf.checkPrivateKey(key)) return { option: 'tls-key-file', message: `${keyFile}: the private key does not belong to the certificate in ${certFile}` };
  return undefined;
}

function keyProblem(blocks: readonly PemBlock[], keyCount: number): string {
  if (keyCount > 1) return 'holds more than one private key';
  if (blocks.some((block) => block.label === 'ENCRYPTED PRIVATE KEY')) return 'holds an encrypted private key; a passphrase is not supported';
  if (blocks.some((block) => block.label === 'CERTIFICATE')) return 'holds a certificate, not a private key (are --tls-cert-file and --tls-key-file swapped?)';
  return 'holds no PEM private key';
}

function parseCertificate(block: PemBlock): X509Certificate | undefined {
  try {
    return new X509Certificate(block.text);
  } catch {
    return undefined;
  }
}

function parseKey(block: PemBlock | undefined): KeyObject | undefined {
  if (block === undefined) return undefined;
  try {
    return createPrivateKey(block.text);
  } catch {
    return undefined;
  }
}
