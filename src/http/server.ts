import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConnectionTable } from './connections.ts';
import type { Handler } from './reply.ts';

/** A listening server: where it is bound (the real port when asked for 0) and how to stop it. */
export interface RunningServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** The subset of pino's API the servers use, so tests can pass a plain object. */
export interface Logger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

/** Slow-client limits of SPEC.md. Injectable so tests need not wait seconds. */
export interface HttpTimeouts {
  /** All request headers must arrive within this. */
  readonly headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this. */
  readonly requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  readonly keepAliveTimeoutMs: number;
  /**
   * How often node:http itself looks for expired requests: only a backstop, since ConnectionTable enforces the
   * limits per connection. node:http's check wakes the process on every interval even with no connection open.
   */
  readonly checkIntervalMs: number;
}

export const DEFAULT_TIMEOUTS: HttpTimeouts = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  checkIntervalMs: 30_000,
};

/** Connections still open this long after close() are cut, so that shutdown stays within SPEC's 2 s. */
const CLOSE_GRACE_MS = 1_000;

/**
 * Connection caps, per listener (see ConnectionTable). An open connection costs about 13 KiB of RSS (plain HTTP,
 * Node 24), so both listeners full add under 15 MiB to an idle daemon; what a flood costs beyond that is the
 * garbage of the connections it churns through. Legitimate use is far below: a few probes and one scraper on the
 * ops listener; the pod's apps, or a broker's sidecars asking once per JWT lifetime, on the token listener. The cap
 * exceeds the listen backlog, so that everything waiting in a full accept queue (a probe among a flood) fits in
 * the listener when node accepts it, rather than being refused.
 */
export const TOKEN_MAX_CONNECTIONS = 512;
export const OPS_MAX_CONNECTIONS = 512;
/** Node's default, stated because the caps above rely on it. */
const LISTEN_BACKLOG = 511;

/** A cap hit or an accept error is logged at most this often, with how many happened since. */
const WARN_INTERVAL_MS = 60_000;

/** How a listener is built: SPEC's slow-client limits and cap unless given, HTTPS when `tls` is given. */
export interface ListenerOptions {
  readonly timeouts?: Partial<HttpTimeouts> | undefined;
  readonly maxConnections: number;
  /** PEM certificate chain and key: serve HTTP/1.1 over TLS (node:https). */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  /** Names the listener in log lines. */
  readonly name: string;
  readonly log?: Logger | undefined;
}

export type HttpServer = Server | HttpsServer;

export function createHttpServer(options: ListenerOptions, handler: Handler): HttpServer {
  const t = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const httpOptions = {
    headersTimeout: t.headersTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    connectionsCheckingInterval: t.checkIntervalMs,
    // node:http would answer a missing Host with a bare 400; the token API's guard answers it (403, counted).
    requireHostHeader: false,
  };
  const server = options.tls === undefined
    ? createServer(httpOptions, handler)
    // The handshake counts against the header deadline (ConnectionTable); node:tls's own 120 s is only a backstop.
    : createHttpsServer({ ...httpOptions, cert: options.tls.cert, key: options.tls.key, handshakeTimeout: t.headersTimeoutMs }, handler);
  const capped = throttledWarning(options.log, `${options.name}: connection cap (${options.maxConnections}) reached; closing the longest-idle connections`);
  const table = new ConnectionTable(
    { maxConnections: options.maxConnections, headersTimeoutMs: t.headersTimeoutMs, requestTimeoutMs: t.requestTimeoutMs },
    { onEvict: capped, onRefuse: capped },
  );
  table.attach(server, options.tls !== undefined);
  return server;
}

/** Where to listen. No host: every interface, dual-stack where the kernel has IPv6. */
export interface Bind {
  readonly host?: string | undefined;
  readonly port: number;
}

/** Bind `server`; resolves once listening, rejects on EADDRINUSE and the like. */
export function startServer(server: HttpServer, listen: Bind, name: string, log?: Logger): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(error);
    };
    server.once('error', onError);
    const listening = (): void => {
      server.off('error', onError);
      // Once listening, node:net reports a failed accept (EMFILE, ENFILE) as an 'error' event, which would end the
      // process without a listener: log it and carry on, libuv has already dropped that connection.
      server.on('error', throttledWarning(log, `${name}: accepting a connection failed`));
      const bound = server.address() as AddressInfo;
      resolve({ address: { host: bound.address, port: bound.port }, close: () => closeServer(server) });
    };
    // Without a host node:net listens on every interface, IPv6 and IPv4 alike where the kernel has IPv6.
    server.listen({ port: listen.port, backlog: LISTEN_BACKLOG, ...(listen.host === undefined ? {} : { host: listen.host }) }, listening);
  });
}

/** A warning for something that can happen thousands of times a second: the first at once, then one a minute. */
export function throttledWarning(log: Logger | undefined, message: string): (error?: unknown) => void {
  let lastMs = -Infinity;
  let since = 0;
  return (error?: unknown) => {
    since += 1;
    const now = performance.now();
    if (log === undefined || now - lastMs < WARN_INTERVAL_MS) return;
    lastMs = now;
    log.warn({ count: since, ...(error === undefined ? {} : { err: error }) }, message);
    since = 0;
  };
}

function closeServer(server: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    // A slow client may hold a request open for up to the request timeout: cut it after a short grace.
    const timer = setTimeout(() => {
      server.closeAllConnections();
    }, CLOSE_GRACE_MS);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
