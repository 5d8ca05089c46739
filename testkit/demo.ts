// `npm run demo`: the daemon against the embedded fake Enkryptify API, with the token in a kubelet-style secret
// volume under .demo/ and one secret to read through the API proxy, so the whole data path runs on one machine with
// nothing but Node.js and npm.
// Flags: --rotate-every <seconds> rotates the API token the way the kubelet does; --exit-when-ready stops once the
// first JWT is served (used by the test suite).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeApi } from './fake-api/server.ts';
import { createSecretVolume, rotateSecretVolume } from './kubelet-volume.ts';
import { CLI, PROJECT_ROOT } from './paths.ts';

const { values } = parseArgs({
  options: {
    'rotate-every': { type: 'string' },
    'exit-when-ready': { type: 'boolean', default: false },
    lifetime: { type: 'string', default: '60' },
  },
});

const demoDir = join(PROJECT_ROOT, '.demo');
await rm(demoDir, { recursive: true, force: true });
await mkdir(demoDir, { recursive: true });
const newToken = (): string => `ek_live_demo_${randomBytes(16).toString('hex')}`;
/** The secret the demo reads through the API proxy, where the vendor SDK would read it. */
const DEMO_SECRET = { workspace: 'demo', project: 'shop', environment: 'development', name: 'DATABASE_URL', value: 'postgres://shop:demo-only@db.shop.internal:5432/shop' };
const secretPath = `/v1/workspace/${DEMO_SECRET.workspace}/project/${DEMO_SECRET.project}/secret/${DEMO_SECRET.name}?environmentId=${DEMO_SECRET.environment}&resolve=true`;
const api = await startFakeApi({
  acceptAnyToken: true,
  lifetimeSec: Number(values.lifetime),
  secrets: { [DEMO_SECRET.workspace]: { [DEMO_SECRET.project]: { [DEMO_SECRET.environment]: { [DEMO_SECRET.name]: DEMO_SECRET.value } } } },
});
const secretDir = join(demoDir, 'secret');
const tokenFile = await createSecretVolume(secretDir, newToken());
const jwtFile = join(demoDir, 'jwt');

const daemon = spawn(process.execPath, [CLI, 'run', '--api-url', api.url, '--token-file', tokenFile, '--jwt-file', jwtFile,
  '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', '--min-ttl', '10s'], { stdio: ['ignore', 'pipe', 'inherit'] });

let rotation: NodeJS.Timeout | undefined;
const shutdown = async (code: number): Promise<void> => {
  clearInterval(rotation);
  if (daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
  }
  await api.close();
  process.exit(code);
};
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
daemon.once('exit', (code) => {
  if (!values['exit-when-ready']) console.error(`ek-sidecar exited with code ${String(code)}`);
  void shutdown(code ?? 1);
});

let ports: { token: number; metrics: number } | undefined;
let buffered = '';
daemon.stdout.setEncoding('utf8').on('data', (chunk: string) => {
  process.stdout.write(chunk);
  buffered += chunk;
  const lines = buffered.split('\n');
  buffered = lines.pop() ?? '';
  for (const line of lines) onLogLine(line);
});

function onLogLine(line: string): void {
  let entry: { msg?: string; tokenApi?: { port: number }; metrics?: { port: number } };
  try {
    entry = JSON.parse(line) as typeof entry;
  } catch {
    return;
  }
  if (entry.msg !== 'ek-sidecar started' || !entry.tokenApi || !entry.metrics || ports !== undefined) return;
  ports = { token: entry.tokenApi.port, metrics: entry.metrics.port };
  // Ready is observed, not inferred from a log line: /readyz turns 200 once the JWT and its state are on disk.
  void waitUntilReady(ports.metrics).then(async (ready) => {
    if (ports === undefined) return;
    if (values['exit-when-ready']) {
      await shutdown(ready && (await verifyServed(ports.token)) && (await verifyProxied(ports.token)) ? 0 : 1);
      return;
    }
    if (ready) printHowTo(ports);
  });
}

/** Poll /readyz every 50 ms for up to 30 s. */
async function waitUntilReady(metricsPort: number): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && daemon.exitCode === null) {
    const response = await fetch(`http://127.0.0.1:${String(metricsPort)}/readyz`).catch(() => undefined);
    if (response !== undefined) {
      await response.body?.cancel();
      if (response.status === 200) return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

async function verifyServed(port: number): Promise<boolean> {
  const response = await fetch(`http://127.0.0.1:${String(port)}/v1/token`, { headers: { 'Ek-Sidecar-Request': 'true' } });
  return response.status === 200 && (await response.text()).split('.').length === 3;
}

/** A secret read through the API proxy with the API token, as the SDK makes it without token exchange. */
async function verifyProxied(port: number): Promise<boolean> {
  const token = (await readFile(tokenFile, 'utf8')).trim();
  const response = await fetch(`http://127.0.0.1:${String(port)}${secretPath}`, { headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
  if (response.status !== 200) return false;
  const secret = (await response.json()) as { values?: { value?: string }[] };
  return secret.values?.[0]?.value === DEMO_SECRET.value;
}

function printHowTo(p: { token: number; metrics: number }): void {
  const jwtPath = relative(process.cwd(), jwtFile) || jwtFile;
  const tokenPath = relative(process.cwd(), tokenFile) || tokenFile;
  const bin = relative(process.cwd(), CLI);
  console.log(`
──────────────────────────────────────────────────────────────────────────────
 ek-sidecar demo: the daemon is running against a fake Enkryptify API (JWTs live
 ${values.lifetime} s here, so you can watch refreshes; the real ones live 15 minutes).

 Read the token (from another terminal, in ${process.cwd()}):
   cat ${jwtPath}
   curl -s -H 'Ek-Sidecar-Request: true' http://127.0.0.1:${String(p.token)}/v1/token
   curl -s -H 'Ek-Sidecar-Request: true' -H 'Accept: application/json' http://127.0.0.1:${String(p.token)}/v1/token
 Read a secret through the API proxy, as the Enkryptify SDK does with
 ENKRYPTIFY_API_URL=http://127.0.0.1:${String(p.token)} (the upstream sees only the sidecar's JWT):
   curl -s -H "Authorization: Bearer $(cat ${tokenPath})" 'http://127.0.0.1:${String(p.token)}${secretPath}'
 Check it without printing it:
   node_modules/.bin/node ${bin} check --jwt-file ${jwtPath}
 Health and metrics:
   curl -s http://127.0.0.1:${String(p.metrics)}/readyz
   curl -s http://127.0.0.1:${String(p.metrics)}/metrics | grep ^ek_sidecar_
 Rotate the API token as the kubelet would: npm run demo -- --rotate-every 20
 Stop: Ctrl-C
──────────────────────────────────────────────────────────────────────────────
`);
}

if (values['rotate-every'] !== undefined) {
  const seconds = Number(values['rotate-every']);
  if (!(seconds > 0)) {
    console.error('--rotate-every: give a number of seconds');
    await shutdown(2);
  }
  rotation = setInterval(() => {
    void rotateSecretVolume(secretDir, newToken()).then(() => { console.log('demo: rotated the API token (kubelet-style ..data swap)'); });
  }, seconds * 1000);
}
