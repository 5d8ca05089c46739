// The listener's connection handling (src/http/connections.ts through createHttpServer): the cap, which connection
// makes room for a newcomer, and deadlines that close a connection even when its peer never reads.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Server as NetServer, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ConnectionTable } from '../../src/http/connections.ts';
import { createHttpServer, startServer, type HttpServer, type RunningServer } from '../../src/http/server.ts';
import { waitFor } from '../helpers/daemon.ts';

interface Harness {
  readonly server: HttpServer;
  readonly running: RunningServer;
  /** Answer every request held so far (paths starting /hold wait for this). */
  release(): void;
  /** Requests held unanswered. */
  held(): number;
  openConnections(): Promise<number>;
}

const harnesses: Harness[] = [];
after(() => Promise.all(harnesses.map((h) => h.running.close())));

async function harness(maxConnections: number, timeouts = {}): Promise<Harness> {
  const held: ServerResponse[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url?.startsWith('/hold') === true) held.push(res);
    else res.end('ok');
  };
  const server = createHttpServer({ maxConnections, timeouts, name: 'test' }, handler);
  const running = await startServer(server, { host: '127.0.0.1', port: 0 }, 'test');
  const h: Harness = {
    server,
    running,
    release: () => {
      for (const res of held.splice(0)) res.end('released');
    },
    held: () => held.length,
    openConnections: () => new Promise((resolve, reject) => {
      server.getConnections((error, count) => {
        if (error === null) resolve(count);
        else reject(error);
      });
    }),
  };
  harnesses.push(h);
  return h;
}

/** A client connection that records what it receives and when it is closed. */
interface Client {
  readonly socket: Socket;
  closed: boolean;
  received: string;
}

/** Connect now; `request` is written as soon as the connection is made. */
function openNow(h: Harness, request?: string): Client {
  const socket = connect(h.running.address.port, '127.0.0.1');
  const client: Client = { socket, closed: false, received: '' };
  socket.setEncoding('utf8');
  socket.on('data', (data: string) => (client.received += data));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    client.closed = true;
  });
  if (request !== undefined) socket.write(request);
  return client;
}

/** Connect, and wait until the server has accepted: `count` connections are then open. */
async function open(h: Harness, count: number, request?: string): Promise<Client> {
  const client = openNow(h, request);
  await settled(h, count);
  return client;
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

/** Wait until the server counts `n` connections: every client opened so far has been accepted (or dropped). */
async function settled(h: Harness, n: number): Promise<void> {
  await waitFor(async () => (await h.openConnections()) === n, 2_000, () => `${n} open connections`);
}

void describe('connection cap', () => {
  void it('on reaching the cap closes the connection idle longest, never one with a request in flight', async () => {
    const h = await harness(3);
    const a = await open(h, 1);
    const b = await open(h, 2);
    const c = openNow(h, get('/hold'));
    await waitFor(() => h.held() === 1, 2_000, () => 'c in flight');
    await waitFor(() => a.closed, 2_000, () => 'a, idle longest, closed');
    const d = openNow(h);
    await waitFor(() => b.closed, 2_000, () => 'b closed');
    const e = openNow(h);
    await waitFor(() => d.closed, 2_000, () => 'd closed: c has a request in flight');
    await settled(h, 2);
    assert.deepEqual([c.closed, e.closed], [false, false]);
    h.release();
    await waitFor(() => c.received.includes('released'), 2_000, () => 'the held request answered');
  });

  void it('counts a kept-alive connection that was just used as recently active', async () => {
    const h = await harness(3);
    const a = await open(h, 1);
    const b = await open(h, 2);
    a.socket.write(get('/'));
    await waitFor(() => a.received.includes('ok'), 2_000, () => 'the answer on a');
    const c = openNow(h);
    await waitFor(() => b.closed, 2_000, () => 'b, idle longest, closed');
    await settled(h, 2);
    assert.deepEqual([a.closed, c.closed], [false, false]);
  });

  void it('refuses newcomers while every connection has a request in flight', async () => {
    const h = await harness(2);
    const a = openNow(h, get('/hold'));
    const b = openNow(h, get('/hold'));
    await waitFor(() => h.held() === 2, 2_000, () => 'two requests in flight');
    const late = openNow(h);
    await waitFor(() => late.closed, 2_000, () => 'the newcomer closed');
    assert.deepEqual([a.closed, b.closed], [false, false]);
    h.release();
    await waitFor(() => a.received.includes('released') && b.received.includes('released'), 2_000, () => 'both answered');
  });

  void it('serves a probe that arrives in a burst of connections far longer than the cap', async () => {
    const h = await harness(16);
    // All connect before the server next polls: it accepts them in one go, the probe first, then reads.
    const probe = openNow(h, get('/'));
    const burst = Array.from({ length: 200 }, () => openNow(h));
    await waitFor(() => probe.received.startsWith('HTTP/1.1 200'), 2_000, () => 'an answer to the probe');
    assert.ok((await h.openConnections()) <= 16);
    await waitFor(() => burst.filter((client) => client.closed).length >= 200 - 16, 2_000, () => 'the burst refused beyond the cap');
    const late = openNow(h, get('/'));
    await waitFor(() => late.received.startsWith('HTTP/1.1 200'), 2_000, () => 'an answer to a later request');
  });
});

void describe('deadlines', () => {
  void it('closes a connection that sends nothing at the header deadline, even when its peer never reads', async () => {
    // The whole-request deadline is far off: only the header deadline may close this connection in time.
    const h = await harness(100, { headersTimeoutMs: 100, requestTimeoutMs: 60_000 });
    // A flood does not read: the socket stays paused, so the 408 and the FIN are never consumed.
    const socket = connect(h.running.address.port, '127.0.0.1');
    socket.pause();
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    await settled(h, 1);
    await settled(h, 0);
    socket.destroy();
  });

  void it('still answers 408 to a slow client that reads', async () => {
    const h = await harness(100, { headersTimeoutMs: 100, requestTimeoutMs: 200 });
    const client = openNow(h, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await waitFor(() => client.closed, 2_000, () => 'the slow client closed');
    assert.match(client.received, /^HTTP\/1\.1 408 /);
  });

  void it('answers 408 to a body still arriving at the request deadline', async () => {
    const h = await harness(100, { headersTimeoutMs: 100, requestTimeoutMs: 200 });
    // /hold answers nothing by itself; the body never completes.
    const client = openNow(h, 'POST /hold HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nab');
    await waitFor(() => client.closed, 2_000, () => 'the slow upload closed');
    assert.match(client.received, /^HTTP\/1\.1 408 /);
  });
});

/** Stands in for the sockets node:net accepts, for the table's policy alone. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  readonly writable = true;
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort: number;
  readonly localAddress = '127.0.0.1';
  readonly localPort = 9731;
  constructor(port: number) {
    super();
    this.remotePort = port;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }
}

/** A listener that refuses at maxConnections as node:net does, then emits 'connection' to the table. */
class FakeListener extends EventEmitter {
  maxConnections = 0;
  readonly sockets: FakeSocket[] = [];
  accept(): FakeSocket | undefined {
    if (this.sockets.filter((s) => !s.destroyed).length >= this.maxConnections) {
      this.emit('drop');
      return undefined;
    }
    const socket = new FakeSocket(40_000 + this.sockets.length);
    this.sockets.push(socket);
    this.emit('connection', socket);
    return socket;
  }
  /** A request on `socket` whose answer is still being written. */
  request(socket: FakeSocket): void {
    this.emit('request', { socket }, { writableEnded: false });
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

void describe('eviction policy', () => {
  const limits = { maxConnections: 4, headersTimeoutMs: 60_000, requestTimeoutMs: 60_000 };

  void it('never evicts a connection before it could be read: a burst fills the cap, the rest is refused', async () => {
    const listener = new FakeListener();
    let refused = 0;
    let evicted = 0;
    new ConnectionTable(limits, { onRefuse: () => (refused += 1), onEvict: () => (evicted += 1) }).attach(listener as unknown as NetServer, false);
    const burst = Array.from({ length: 10 }, () => listener.accept());
    assert.equal(burst.filter((socket) => socket !== undefined).length, 4);
    assert.deepEqual([refused, evicted], [6, 0]);
    // The turn they were accepted in, and the next (in which node reads them), protect them.
    await nextTurn();
    assert.equal(listener.accept(), undefined);
    assert.equal(evicted, 0);
    // Then the longest idle makes room for the next newcomer, and each newcomer that fills the cap for the next.
    await nextTurn();
    await nextTurn();
    assert.equal(evicted, 1);
    assert.equal(burst[0]?.destroyed, true, 'the longest idle went');
    assert.ok(listener.accept() !== undefined);
    assert.equal(evicted, 2);
    assert.equal(burst[1]?.destroyed, true, 'the next longest idle went to keep room');
    for (const socket of listener.sockets) socket.destroy();
  });

  void it('never evicts a connection with a request in flight', async () => {
    const listener = new FakeListener();
    new ConnectionTable(limits).attach(listener as unknown as NetServer, false);
    const busy = [listener.accept(), listener.accept(), listener.accept()].filter((socket) => socket !== undefined);
    for (const socket of busy) listener.request(socket);
    const idle = listener.accept();
    await nextTurn();
    await nextTurn();
    await nextTurn();
    assert.equal(idle?.destroyed, true);
    assert.ok(listener.accept() !== undefined);
    assert.ok(busy.every((socket) => !socket.destroyed));
    for (const socket of listener.sockets) socket.destroy();
  });
});
