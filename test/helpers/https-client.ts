// One HTTPS request, as a separate program, for a client in another network namespace (see netns.ts): the request
// as JSON in argv[2], the answer as JSON `{status, body}` on stdout, exit 1 with the error on stderr.
import { request } from 'node:https';

interface Ask {
  readonly address: string;
  readonly port: number;
  readonly path: string;
  readonly method: string;
  readonly host: string;
  readonly servername: string;
  readonly ca: string;
  readonly headers: Record<string, string>;
}

const ask = JSON.parse(process.argv[2] ?? '{}') as Ask;
const req = request({
  host: ask.address,
  port: ask.port,
  path: ask.path,
  method: ask.method,
  ca: ask.ca,
  servername: ask.servername,
  headers: { host: ask.host, ...ask.headers },
  agent: false,
}, (res) => {
  let body = '';
  res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => {
    process.stdout.write(JSON.stringify({ status: res.statusCode, body }));
  });
});
req.setTimeout(5_000, () => { req.destroy(new Error('timed out')); });
req.on('error', (error) => {
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 1;
});
req.end();
