// A broker (an ek-sidecar reachable beyond loopback, over TLS) and sidecars chained to it, as black-box tests start
// them: the built CLI, a CA made at test time, every file in a scratch directory.
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecretVolume } from '../../testkit/kubelet-volume.ts';
import { baseArgs, startDaemon, waitFor, type Daemon } from './daemon.ts';
import { createCa, issue, type TestCa } from './tls-certs.ts';

/** The broker's Service name in these tests: in its certificate and in --allowed-hosts. */
export const BROKER_SERVICE = 'ek-broker.ek-test.svc';

export interface BrokerPki {
  readonly ca: TestCa;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A CA, and a broker certificate for its Service name and the loopback addresses, in plain files under `dir`. */
export async function brokerPki(dir: string, extraNames: readonly string[] = []): Promise<BrokerPki> {
  const ca = await createCa();
  const leaf = await issue(ca, [BROKER_SERVICE, '127.0.0.1', 'localhost', ...extraNames]);
  const files = { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
  await writeFile(files.caFile, ca.certPem);
  await writeFile(files.certFile, leaf.certPem);
  await writeFile(files.keyFile, leaf.keyPem, { mode: 0o600 });
  return { ca, ...files };
}

export interface BrokerOptions {
  readonly apiUrl: string;
  readonly pki: BrokerPki;
  /** Its own secret volume (the kubelet's layout), jwt file and state beside it: all under `dir`. */
  readonly dir: string;
  readonly token: string;
  /** `host:port` to listen on; 127.0.0.1:0 when absent (a restart passes the port it had). */
  readonly listen?: string;
  /** A restart: the secret volume under `dir` exists already (`token` is then unused). */
  readonly restart?: boolean;
  readonly extra?: readonly string[];
}

export interface Started {
  readonly daemon: Daemon;
  readonly jwtFile: string;
  readonly tokenDir: string;
  readonly ports: { token: number; metrics: number | undefined };
}

/** A broker as the chart runs it: TLS, --allow-remote-token-access, --allowed-hosts its Service name. */
export async function startBroker(options: BrokerOptions): Promise<Started> {
  const tokenDir = join(options.dir, 'secret');
  const tokenFile = options.restart === true ? join(tokenDir, 'token') : await createSecretVolume(tokenDir, options.token);
  const jwtFile = join(options.dir, 'jwt');
  const daemon = startDaemon([
    'run',
    '--api-url', options.apiUrl,
    '--token-file', tokenFile,
    '--jwt-file', jwtFile,
    '--listen', options.listen ?? '127.0.0.1:0',
    '--metrics-listen', '127.0.0.1:0',
    '--allow-remote-token-access',
    '--tls-cert-file', options.pki.certFile,
    '--tls-key-file', options.pki.keyFile,
    '--allowed-hosts', BROKER_SERVICE,
    ...(options.extra ?? []),
  ]);
  return { daemon, jwtFile, tokenDir, ports: await daemon.ports() };
}

/** A sidecar chained to the broker: nothing new but --api-url https://<broker> and --ca-file. */
export async function startChained(brokerUrl: string, pki: BrokerPki, dir: string, token: string, extra: readonly string[] = []): Promise<Started> {
  const tokenDir = join(dir, 'secret');
  const tokenFile = await createSecretVolume(tokenDir, token);
  const jwtFile = join(dir, 'jwt');
  const daemon = startDaemon(baseArgs({ apiUrl: brokerUrl, tokenFile, jwtFile, extra: ['--ca-file', pki.caFile, ...extra] }));
  return { daemon, jwtFile, tokenDir, ports: await daemon.ports() };
}

/** Resolves once the daemon's /readyz answers 200. */
export async function ready(started: Started, timeoutMs = 10_000): Promise<void> {
  const metrics = started.ports.metrics ?? 0;
  await waitFor(async () => (await fetch(`http://127.0.0.1:${String(metrics)}/readyz`).catch(() => undefined))?.status === 200, timeoutMs, () => `/readyz 200 on ${String(metrics)}`);
}

export interface HttpsAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/**
 * One HTTPS request to the broker, trusting only the test CA. `host` sets the Host header, and the TLS name unless
 * `servername` is given (a request whose Host is not the name the certificate was checked for).
 */
export function brokerRequest(options: { port: number; ca: string; path: string; method?: string; headers?: Record<string, string>; host?: string; servername?: string; address?: string; localAddress?: string }): Promise<HttpsAnswer> {
  const host = options.host ?? '127.0.0.1';
  const servername = options.servername ?? (/^[\d.]+$/.test(host) ? undefined : host);
  return new Promise((resolve, reject) => {
    const req = request({
      host: options.address ?? '127.0.0.1',
      port: options.port,
      path: options.path,
      method: options.method ?? 'GET',
      ca: options.ca,
      ...(servername === undefined ? {} : { servername }),
      headers: { host: `${host}:${String(options.port)}`, ...options.headers },
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      agent: false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }); });
    });
    req.on('error', reject);
    req.end();
  });
}
