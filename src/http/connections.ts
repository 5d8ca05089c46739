import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface ConnectionLimits {
  /** Most connections open at once; see ConnectionTable. */
  readonly maxConnections: number;
  /** A request's headers (the TLS handshake included) within this of the connection or of the previous answer. */
  readonly headersTimeoutMs: number;
  /** The whole request, body included, within this of its headers. */
  readonly requestTimeoutMs: number;
}

export interface ConnectionEvents {
  /** An idle connection was closed to make room at the cap. */
  onEvict?(): void;
  /** node:net refused a newcomer: the listener was full of connections that could not be evicted. */
  onRefuse?(): void;
}

const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/** How long an expired connection may take to flush its 408 before it is cut. */
const LINGER_MS = 1_000;

/**
 * The open connections of one listener, least recently active first, each with its slow-client deadlines.
 *
 * The cap bounds memory: every open connection holds a socket, a parser and buffers (about 13 KiB of RSS each on
 * Node 24; 12,000 idle ones took the daemon past a 160 MiB limit). When the cap is reached, the connection idle
 * longest is closed at once to keep room for the next newcomer: one with no request in flight (it never sent one,
 * it is still sending its headers or handshake, or it is kept alive after its answer). Refusing newcomers instead
 * would let a flood that renews its idle connections faster than the header deadline closes them lock out every
 * kubelet probe and Prometheus scrape for as long as it lasts; evicting serves a newcomer such as a probe as long
 * as its request arrives before the cap's worth of newer connections push it out.
 *
 * A connection accepted in this turn of the event loop or the one before has not yet been given the chance to be
 * read (node accepts a whole queue of connections in one go, then reads them in the next poll), so it is not
 * evicted: otherwise a burst longer than the cap would evict a probe before its request, already sent, was read.
 * When nothing can be evicted the listener stays full and node:net refuses newcomers (server.maxConnections)
 * before it creates a socket for them, the cheapest answer to a storm of connections, until one closes.
 *
 * The deadlines are node:http's headers and request timeouts applied per connection, without its check that wakes
 * the process every interval even when no connection is open. Two timers per connection, refreshed (never
 * re-created) per request, keep this off the token API's hot path.
 */
export class ConnectionTable {
  readonly #limits: ConnectionLimits;
  readonly #events: ConnectionEvents;
  /** By the accepted TCP socket; Map order is the eviction order. */
  readonly #open = new Map<Socket, Connection>();
  /** TLS only: the sockets that HTTP is spoken on, for the requests arriving on them. */
  readonly #secured = new WeakMap<Socket, Connection>();
  /** TLS only: connections still in their handshake, by peer and local address (see `peerKey`). */
  readonly #handshaking = new Map<string, Connection>();
  /** Counts turns of the event loop while connections are being accepted, and two more after; see the class comment. */
  #turn = 0;
  #turnsToCount = 0;

  constructor(limits: ConnectionLimits, events: ConnectionEvents = {}) {
    this.#limits = limits;
    this.#events = events;
  }

  /** Follow `server`'s connections; `tls` when it is a node:https server. */
  attach(server: NetServer, tls: boolean): void {
    server.maxConnections = this.#limits.maxConnections;
    server.on('drop', () => {
      this.#events.onRefuse?.();
    });
    server.on('connection', (socket: Socket) => {
      this.#accepted(socket, tls);
    });
    if (tls) {
      server.on('secureConnection', (socket: TLSSocket) => {
        this.#handshakeDone(socket);
      });
    }
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#requestStarted(req.socket, res);
    });
  }

  #accepted(raw: Socket, tls: boolean): void {
    const connection = new Connection(raw, this.#limits, this.#turn);
    this.#open.set(raw, connection);
    if (tls) {
      connection.key = peerKey(raw);
      this.#handshaking.set(connection.key, connection);
    } else {
      connection.http = raw;
    }
    raw.once('close', () => {
      this.#forget(connection);
    });
    this.#countTurns();
    if (this.#open.size >= this.#limits.maxConnections) this.#evictIdle();
  }

  /**
   * node:tls hands node:http a new socket once the handshake is done, and says nothing public of the TCP socket
   * under it; the 4-tuple of addresses is the same on both and unique among open connections.
   */
  #handshakeDone(socket: TLSSocket): void {
    const key = peerKey(socket);
    const connection = this.#handshaking.get(key);
    if (connection === undefined) return;
    this.#handshaking.delete(key);
    connection.key = undefined;
    connection.http = socket;
    this.#secured.set(socket, connection);
  }

  #requestStarted(socket: Socket, response: ServerResponse): void {
    const connection = this.#open.get(socket) ?? this.#secured.get(socket);
    if (connection === undefined) return;
    connection.headersReceived(response);
    // Most recently active last: eviction takes from the front.
    this.#open.delete(connection.raw);
    this.#open.set(connection.raw, connection);
  }

  /**
   * Advance `#turn` after this poll phase and the next: by then this turn's connections have been read once. A
   * listener left full by a burst makes room again as soon as its connections may be evicted.
   */
  #countTurns(): void {
    const counting = this.#turnsToCount > 0;
    this.#turnsToCount = 2;
    if (counting) return;
    const tick = (): void => {
      this.#turn += 1;
      this.#turnsToCount -= 1;
      if (this.#open.size >= this.#limits.maxConnections) this.#evictIdle();
      if (this.#turnsToCount > 0) setImmediate(tick);
    };
    setImmediate(tick);
  }

  #evictIdle(): void {
    for (const connection of this.#open.values()) {
      if (connection.inFlight() || this.#turn - connection.acceptedTurn < 2) continue;
      this.#forget(connection);
      connection.raw.destroy();
      this.#events.onEvict?.();
      return;
    }
  }

  #forget(connection: Connection): void {
    connection.stop();
    if (this.#open.get(connection.raw) === connection) this.#open.delete(connection.raw);
    if (connection.key !== undefined && this.#handshaking.get(connection.key) === connection) this.#handshaking.delete(connection.key);
  }
}

function peerKey(socket: Socket): string {
  return `${String(socket.remoteAddress)} ${String(socket.remotePort)} ${String(socket.localAddress)} ${String(socket.localPort)}`;
}

class Connection {
  /** The accepted TCP socket; destroying it ends a TLS session over it too. */
  readonly raw: Socket;
  /** The socket HTTP is spoken on: `raw`, or the TLS socket over it once the handshake is done. */
  http: Socket | undefined;
  /** TLS only, during the handshake: the key in ConnectionTable's handshaking map. */
  key: string | undefined;
  readonly acceptedTurn: number;
  /** The response to the latest request on this connection; undefined until the first request's headers arrive. */
  #response: ServerResponse | undefined;
  readonly #headers: NodeJS.Timeout;
  readonly #whole: NodeJS.Timeout;

  constructor(raw: Socket, limits: ConnectionLimits, turn: number) {
    this.raw = raw;
    this.acceptedTurn = turn;
    this.#headers = setTimeout(() => {
      if (this.#response === undefined) this.#expire();
      // The last request was answered and no new one has brought its headers since: close quietly, as the
      // keep-alive timeout would, so that a client never reads a 408 as the answer to its next request.
      else if (this.#response.writableEnded) this.raw.destroy();
    }, limits.headersTimeoutMs).unref();
    this.#whole = setTimeout(() => {
      // The deadline is the request's: an answer still streaming (the API proxy's) to a request that arrived
      // whole is left alone; the token API's own answers are complete as soon as their request is.
      const response = this.#response;
      if (response === undefined || (!response.writableEnded && !response.req.complete)) this.#expire();
    }, limits.requestTimeoutMs).unref();
  }

  inFlight(): boolean {
    return this.#response !== undefined && !this.#response.writableEnded;
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

  /**
   * 408 and close. `end()` alone would keep the socket for as long as the peer neither reads nor closes its side,
   * which is exactly what a flood does: the socket is destroyed once the 408 is flushed, or after a short linger.
   */
  #expire(): void {
    const socket = this.http;
    if (socket === undefined || socket.destroyed || !socket.writable) {
      this.raw.destroy();
      return;
    }
    const destroy = (): void => {
      this.raw.destroy();
    };
    socket.end(REQUEST_TIMEOUT, destroy);
    setTimeout(destroy, LINGER_MS).unref();
  }
}
