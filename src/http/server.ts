import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenAddress } from '../config/config.ts';
import type { Handler } from './reply.ts';

/** A listening server: where it is bound (the real port when asked for 0) and how to stop it. */
export interface RunningServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/** The subset of pino's API the servers use, so tests can pass a plain object. */
export interface Logger {
  warn(obj: object, msg: string): void;
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
   * How often node:http itself looks for expired requests: only a backstop, since deadlines() below enforces the
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

export function createHttpServer(timeouts: Partial<HttpTimeouts> | undefined, handler: Handler): Server {
  const t = { ...DEFAULT_TIMEOUTS, ...timeouts };
  const server = createServer(
    {
      headersTimeout: t.headersTimeoutMs,
      requestTimeout: t.requestTimeoutMs,
      keepAliveTimeout: t.keepAliveTimeoutMs,
      connectionsCheckingInterval: t.checkIntervalMs,
      // node:http would answer a missing Host with a bare 400; the token API's guard answers it (403, counted).
      requireHostHeader: false,
    },
    handler,
  );
  enforceDeadlines(server, t);
  return server;
}

const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/**
 * The slow-client limits, per connection, as node:http would apply them but without its check that wakes the
 * process every interval even when no connection is open: a request's headers within headersTimeoutMs (of the
 * connection, or of the previous request on a kept-alive one), its body within requestTimeoutMs of its headers;
 * else 408 and close. Two timers per connection, refreshed (never re-created) per request, keep this off the token
 * API's hot path.
 */
function enforceDeadlines(server: Server, t: HttpTimeouts): void {
  const byConnection = new WeakMap<Socket, Deadlines>();
  server.on('connection', (socket: Socket) => {
    const deadlines = new Deadlines(socket, t);
    byConnection.set(socket, deadlines);
    socket.once('close', () => { deadlines.stop(); });
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    byConnection.get(req.socket)?.headersReceived(res);
  });
}

class Deadlines {
  /** The response to the latest request on this connection; undefined until the first request's headers arrive. */
  #response: ServerResponse | undefined;
  readonly #headers: NodeJS.Timeout;
  readonly #whole: NodeJS.Timeout;

  constructor(socket: Socket, t: HttpTimeouts) {
    const expire = (): void => {
      if (!socket.destroyed) socket.end(REQUEST_TIMEOUT);
    };
    this.#headers = setTimeout(() => {
      if (this.#response === undefined) expire();
      // The last request was answered and no new one has brought its headers since: close quietly, as the
      // keep-alive timeout would, so that a client never reads a 408 as the answer to its next request.
      else if (this.#response.writableEnded) socket.destroy();
    }, t.headersTimeoutMs).unref();
    this.#whole = setTimeout(() => {
      if (this.#response === undefined || !this.#response.writableEnded) expire();
    }, t.requestTimeoutMs).unref();
  }

  headersReceived(response: ServerResponse): void {
    this.#response = response;
    this.#headers.refresh();
    this.#whole.refresh();
  }

  stop(): void {
    clearTimeout(this.#headers);
    clearTimeout(this.#whole);
  }
}

/** Bind `server` to `listen`; resolves once listening, rejects on EADDRINUSE and the like. */
export function startServer(server: Server, listen: ListenAddress): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      reject(error);
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      const bound = server.address() as AddressInfo;
      resolve({ address: { host: bound.address, port: bound.port }, close: () => closeServer(server) });
    });
  });
}

function closeServer(server: Server): Promise<void> {
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
