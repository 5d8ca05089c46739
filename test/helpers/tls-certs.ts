// Certificates made at test time: a CA and leaf certificates it signs (ECDSA P-256), with @peculiar/x509 on
// node:crypto's WebCrypto, so that no test needs openssl.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY_MS = 86_400_000;

export interface TestCa {
  readonly certPem: string;
  readonly name: string;
  readonly keys: webcrypto.CryptoKeyPair;
}

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
  /** As node:tls reports a peer certificate's `fingerprint256`. */
  readonly fingerprint256: string;
}

let serial = 0;
const nextSerial = (): string => (++serial).toString(16).padStart(4, '0');

export async function createCa(name = 'CN=ek-sidecar test CA'): Promise<TestCa> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { certPem: cert.toString('pem'), name, keys };
}

/** A server certificate for `names` (DNS names, or IP addresses) signed by `ca`, with its own new key. */
export async function issue(ca: TestCa, names: readonly string[], subject = 'CN=ek-sidecar broker'): Promise<Issued> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const altNames = names.map((value) => (/^[\d.]+$|:/.test(value) ? { type: 'ip' as const, value } : { type: 'dns' as const, value }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject,
    issuer: ca.name,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + DAY_MS),
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension(altNames), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const fingerprint = Buffer.from(await webcrypto.subtle.digest('SHA-256', cert.rawData)).toString('hex').toUpperCase().match(/../g)?.join(':') ?? '';
  return { certPem: cert.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), fingerprint256: fingerprint };
}
