// Runs the fake Enkryptify API (server.ts) as its own process, for the demo, the benchmarks and black-box tests.
// Prints one JSON line {"url","port"[,"oidc":{"issuer","audience","alg","kid"}]} on stdout once listening; the
// /__control/… API (control.ts) is on. SIGTERM/SIGINT: exit 0.
// Workload identity: trust an issuer whose public key is in a file (--oidc-issuer, --oidc-public-key: SPKI PEM or a
// JWK), or generate a test issuer here (--oidc-test-issuer), whose projected tokens POST /__control/oidc/token mints.
// Never prints a token: usage errors are redacted, and only fingerprints leave through the control API's log.
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createProjectedTokenIssuer, type ProjectedTokenIssuer } from '../projected-token.ts';
import { DEFAULT_OIDC_AUDIENCE, isLoopbackHost, isWellFormedToken, startFakeApi, type FakeApiOptions, type OidcBinding, type OidcTrust, type SecretSeed, type TokenStatus } from './server.ts';

const USAGE = `usage: node testkit/fake-api/cli.ts [--port N] [--host 127.0.0.1]
  (--token ek_live_… [--token …] | --accept-any-token) [--forbidden-token ek_live_…]
  [--lifetime SECONDS] [--limit N] [--window-ms MS] [--ip-limit N] [--retry-after-date]
  [--oidc-issuer ISS --oidc-public-key FILE | --oidc-test-issuer [--oidc-issuer ISS]] [--oidc-audience AUD]
  [--oidc-bind system:serviceaccount:NS:SA=WORKSPACE …] [--secrets FILE]
  --secrets FILE: JSON {"<workspace>": {"<project>": {"<environment>": {"<NAME>": "<value>"}}}}
  Tokens are optional when an OIDC issuer is given.`;

function fail(message: string): never {
  process.stderr.write(`fake-api: ${message.replace(/ek_live_\S*/g, 'ek_live_<redacted>')}\n${USAGE}\n`);
  process.exit(2);
}

function numberOption(name: string, raw: string | undefined, integer: boolean, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    fail(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function readOrFail(option: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    fail(`${option}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** SPKI PEM, or one public JWK as JSON. */
function publicKeyFrom(path: string): KeyObject {
  const text = readOrFail('--oidc-public-key', path);
  try {
    return text.trimStart().startsWith('{') ? createPublicKey({ key: JSON.parse(text) as JsonWebKey, format: 'jwk' }) : createPublicKey(text);
  } catch (error) {
    fail(`--oidc-public-key: ${path} holds no public key: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function isStringTree(value: unknown, depth: number): boolean {
  if (depth === 0) return typeof value === 'string';
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => isStringTree(v, depth - 1));
}

function secretsFrom(path: string): SecretSeed {
  let value: unknown;
  try {
    value = JSON.parse(readOrFail('--secrets', path));
  } catch {
    fail(`--secrets: ${path} is not JSON`);
  }
  if (!isStringTree(value, 4)) fail(`--secrets: ${path} must map workspace → project → environment → name → string value`);
  return value as SecretSeed;
}

function bindingOf(raw: string): OidcBinding {
  const at = raw.lastIndexOf('=');
  const sub = raw.slice(0, at);
  const workspaceId = raw.slice(at + 1);
  if (at < 1 || workspaceId === '' || !sub.startsWith('system:serviceaccount:')) fail(`--oidc-bind takes system:serviceaccount:NS:SA=WORKSPACE, got ${JSON.stringify(raw)}`);
  return { sub, workspaceId };
}

function parseValues() {
  return parseArgs({
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      token: { type: 'string', multiple: true, default: [] },
      'forbidden-token': { type: 'string', multiple: true, default: [] },
      'accept-any-token': { type: 'boolean', default: false },
      lifetime: { type: 'string' },
      limit: { type: 'string' },
      'window-ms': { type: 'string' },
      'ip-limit': { type: 'string' },
      'retry-after-date': { type: 'boolean', default: false },
      'oidc-issuer': { type: 'string' },
      'oidc-public-key': { type: 'string' },
      'oidc-audience': { type: 'string' },
      'oidc-test-issuer': { type: 'boolean', default: false },
      'oidc-bind': { type: 'string', multiple: true, default: [] },
      secrets: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }).values;
}
type Values = ReturnType<typeof parseValues>;

function parsed(): Values {
  try {
    return parseValues();
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
}

async function oidcTrust(values: Values): Promise<{ trust?: OidcTrust; testIssuer?: ProjectedTokenIssuer }> {
  const issuer = values['oidc-issuer'];
  const audience = values['oidc-audience'] ?? DEFAULT_OIDC_AUDIENCE;
  if (values['oidc-test-issuer']) {
    if (values['oidc-public-key'] !== undefined) fail('--oidc-test-issuer makes its own key; leave out --oidc-public-key');
    const testIssuer = await createProjectedTokenIssuer({ audience, ...(issuer !== undefined && { issuer }) });
    return { trust: testIssuer, testIssuer };
  }
  if ((issuer === undefined) !== (values['oidc-public-key'] === undefined)) fail('--oidc-issuer and --oidc-public-key go together');
  if (issuer === undefined || values['oidc-public-key'] === undefined) return {};
  return { trust: { issuer, audience, publicKey: publicKeyFrom(values['oidc-public-key']) } };
}

async function parse(): Promise<{ options: FakeApiOptions; testIssuer?: ProjectedTokenIssuer }> {
  const values = parsed();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (!isLoopbackHost(values.host)) fail(`--host must be a loopback address, got ${JSON.stringify(values.host)}`);
  const tokens = new Map<string, TokenStatus>();
  for (const token of values.token) tokens.set(token, 'ok');
  for (const token of values['forbidden-token']) tokens.set(token, 'forbidden');
  if ([...tokens.keys()].some((t) => !isWellFormedToken(t))) fail('every token must be a well-formed ek_live_ token');
  const { trust, testIssuer } = await oidcTrust(values);
  if (tokens.size === 0 && !values['accept-any-token'] && trust === undefined) fail('give at least one --token, --accept-any-token, or an OIDC issuer');
  const port = numberOption('port', values.port, true, 0) ?? 0;
  if (port > 65535) fail('--port must be at most 65535');
  const lifetimeSec = numberOption('lifetime', values.lifetime, false, Number.MIN_VALUE);
  const limit = numberOption('limit', values.limit, true, 1);
  const windowMs = numberOption('window-ms', values['window-ms'], true, 1);
  const ipLimit = numberOption('ip-limit', values['ip-limit'], true, 1);
  const bindings = values['oidc-bind'].map(bindingOf);
  const options: FakeApiOptions = {
    host: values.host,
    port,
    tokens,
    acceptAnyToken: values['accept-any-token'],
    retryAfterFormat: values['retry-after-date'] ? 'http-date' : 'seconds',
    control: true,
    // exactOptionalPropertyTypes: absent options are left out, not passed as undefined.
    ...(lifetimeSec !== undefined && { lifetimeSec }),
    ...(limit !== undefined && { limit }),
    ...(windowMs !== undefined && { windowMs }),
    ...(ipLimit !== undefined && { ipLimit }),
    ...(trust !== undefined && { oidc: trust }),
    ...(bindings.length > 0 && { oidcBindings: bindings }),
    ...(values.secrets !== undefined && { secrets: secretsFrom(values.secrets) }),
  };
  return testIssuer === undefined ? { options } : { options, testIssuer };
}

const { options, testIssuer } = await parse();
const api = await startFakeApi(options);
const oidc = testIssuer === undefined ? {} : { oidc: { issuer: testIssuer.issuer, audience: testIssuer.audience, alg: testIssuer.alg, kid: testIssuer.kid } };
process.stdout.write(`${JSON.stringify({ url: api.url, port: api.port, ...oidc })}\n`);

const stop = (): void => {
  api.close().then(
    () => { process.exitCode = 0; },
    (error: unknown) => {
      process.stderr.write(`fake-api: close failed: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
