// Baseline: the least a token endpoint can be. A bare node:http server answering GET /v1/token with the same bytes
// and headers as ek-sidecar, behind the same `Ek-Sidecar-Request: true` check; nothing else is loaded.
// Usage: node bare-server.mjs BODY_FILE. Prints {"port":N} once listening on 127.0.0.1.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const bodyFile = process.argv[2];
if (bodyFile === undefined) {
  process.stderr.write('usage: bare-server BODY_FILE\n');
  process.exit(2);
}
const body = readFileSync(bodyFile);
const forbidden = Buffer.from(JSON.stringify({ message: 'the header "Ek-Sidecar-Request: true" is required' }));
const notFound = Buffer.from(JSON.stringify({ message: 'not found' }));

const server = createServer((req, res) => {
  res.setHeader('Cache-Control', 'no-store');
  if (req.url !== '/v1/token') {
    res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': notFound.length });
    res.end(notFound);
    return;
  }
  const marker = req.headers['ek-sidecar-request'];
  if (typeof marker !== 'string' || marker.toLowerCase() !== 'true') {
    res.writeHead(403, { 'Content-Type': 'application/json', 'Content-Length': forbidden.length });
    res.end(forbidden);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length });
  res.end(body);
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`);
});
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); });
