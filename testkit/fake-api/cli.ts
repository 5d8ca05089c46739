// Runs the fake Enkryptify API (server.ts) as its own process, for the demo, the benchmarks and black-box tests.
// Prints one JSON line {"url","port"} on stdout once listening; the /__control/… API is on. SIGTERM/SIGINT: exit 0.
// Never prints a token: usage errors are redacted, and only fingerprints leave through the control API's log.
import { parseArgs } from 'node:util';
import { isLoopbackHost, isWellFormedToken, startFakeApi, type FakeApiOptions, type TokenStatus } from './server.ts';

const USAGE = `usage: node testkit/fake-api/cli.ts [--port N] [--host 127.0.0.1]
  (--token ek_live_… [--token …] | --accept-any-token) [--forbidden-token ek_live_…]
  [--lifetime SECONDS] [--limit N] [--window-ms MS] [--ip-limit N] [--retry-after-date]`;

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

function parse(): FakeApiOptions {
  let values;
  try {
    ({ values } = parseArgs({
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
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (!isLoopbackHost(values.host)) fail(`--host must be a loopback address, got ${JSON.stringify(values.host)}`);
  const tokens = new Map<string, TokenStatus>();
  for (const token of values.token) tokens.set(token, 'ok');
  for (const token of values['forbidden-token']) tokens.set(token, 'forbidden');
  if ([...tokens.keys()].some((t) => !isWellFormedToken(t))) fail('every token must be a well-formed ek_live_ token');
  if (tokens.size === 0 && !values['accept-any-token']) fail('give at least one --token, or --accept-any-token');
  const port = numberOption('port', values.port, true, 0) ?? 0;
  if (port > 65535) fail('--port must be at most 65535');
  const lifetimeSec = numberOption('lifetime', values.lifetime, false, Number.MIN_VALUE);
  const limit = numberOption('limit', values.limit, true, 1);
  const windowMs = numberOption('window-ms', values['window-ms'], true, 1);
  const ipLimit = numberOption('ip-limit', values['ip-limit'], true, 1);
  return {
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
  };
}

const api = await startFakeApi(parse());
process.stdout.write(`${JSON.stringify({ url: api.url, port: api.port })}\n`);

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
