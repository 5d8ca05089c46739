// The listener's connection handling (src/http/connections.ts through createHttpServer): the cap, which connection
// makes room for a newcomer, and deadlines that close a connection even when its peer never reads.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
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

async function open(h: Harness, request?: string): Promise<Client> {
  const socket = connect(h.running.address.port, '127.0.0.1');
  const client: Client = { socket, closed: false, received: '' };
  socket.setEncoding('utf8');
  socket.on('data', (data: string) => (client.received += data));
  socket.on('error', () => undefined);
  socket.on('close', () => {
    client.closed = true;
  });
  await new Promise((resolve) => socket.once('connect', resolve));
  if (request !== undefined) socket.write(request);
  return client;
}

const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

/** Wait until the server counts `n` connections: every client opened so far has been accepted (or dropped). */
async function settled(h: Harness, n: number): Promise<void> {
  await waitFor(async () => (await h.openConnections()) === n, 2_000, () => `${n} open connections`);
}

void describe('connection cap', () => {
  void it('admits a newcomer at the cap by closing the connection idle longest', async () => {
    const h = await harness(3);
    const a = await open(h);
    const b = await open(h);
    const c = await open(h, get('/hold'));
    await waitFor(() => h.held() === 1, 2_000, () => 'c in flight');
    await settled(h, 3);
    const d = await open(h);
    await waitFor(() => a.closed, 2_000, () => 'the oldest idle connection closed');
    await settled(h, 3);
    assert.deepEqual([b.closed, c.closed, d.closed], [false, false, false]);
    // c has a request in flight: b, then d go before it.
    const e = await open(h);
    await waitFor(() => b.closed, 2_000, () => 'b closed');
    const f = await open(h);
    await waitFor(() => d.closed, 2_000, () => 'd closed');
    await settled(h, 3);
    assert.deepEqual([c.closed, e.closed, f.closed], [false, false, false]);
    h.release();
    await waitFor(() => c.received.includes('released'), 2_000, () => 'the held request answered');
  });

  void it('counts a kept-alive connection that was just used as recently active', async () => {
    const h = await harness(3);
    const a = await open(h);
    const b = await open(h);
    const c = await open(h);
    a.socket.write(get('/'));
    await waitFor(() => a.received.includes('ok'), 2_000, () => 'the answer on a');
    await settled(h, 3);
    await open(h);
    await waitFor(() => b.closed, 2_000, () => 'b, idle longest, closed');
    assert.deepEqual([a.closed, c.closed], [false, false]);
  });

  void it('refuses the newcomer only when every connection has a request in flight', async () => {
    const h = await harness(2);
    const a = await open(h, get('/hold'));
    const b = await open(h, get('/hold'));
    await waitFor(() => h.held() === 2, 2_000, () => 'two requests in flight');
    const late = await open(h);
    await waitFor(() => late.closed, 2_000, () => 'the newcomer closed');
    assert.deepEqual([a.closed, b.closed], [false, false]);
    h.release();
    await waitFor(() => a.received.includes('released') && b.received.includes('released'), 2_000, () => 'both answered');
  });

  void it('keeps answering while far more connections than the cap are opened', async () => {
    const h = await harness(16);
    const idle = await Promise.all(Array.from({ length: 200 }, () => open(h)));
    const probe = await open(h, get('/'));
    await waitFor(() => probe.received.startsWith('HTTP/1.1 200'), 2_000, () => 'an answer to the probe');
    assert.ok((await h.openConnections()) <= 16);
    assert.ok(idle.filter((client) => client.closed).length >= 200 - 16);
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
    const client = await open(h, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await waitFor(() => client.closed, 2_000, () => 'the slow client closed');
    assert.match(client.received, /^HTTP\/1\.1 408 /);
  });
});
