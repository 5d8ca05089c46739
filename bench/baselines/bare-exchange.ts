// Baseline for the cold start: the least a process can do to get a JWT onto disk. One loopback HTTP POST to the
// exchange endpoint and one file write (to a temporary name, renamed into place so a watcher never sees it
// half-written), then exit. No retries, no validation beyond reading `accessToken`, no libraries.
// Usage: node bare-exchange.mjs API_URL TOKEN_FILE JWT_FILE
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';

const [apiUrl, tokenFile, jwtFile] = process.argv.slice(2);
if (apiUrl === undefined || tokenFile === undefined || jwtFile === undefined) {
  process.stderr.write('usage: bare-exchange API_URL TOKEN_FILE JWT_FILE\n');
  process.exit(2);
}
const token = readFileSync(tokenFile, 'utf8').trim();

const req = request(`${apiUrl}/v1/auth/exchange`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }, (res) => {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => {
    if (res.statusCode !== 200) {
      process.stderr.write(`bare-exchange: HTTP ${res.statusCode ?? 0}\n`);
      process.exit(1);
    }
    const { accessToken } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { accessToken: string };
    writeFileSync(`${jwtFile}.tmp`, accessToken, { mode: 0o640 });
    renameSync(`${jwtFile}.tmp`, jwtFile);
    process.exit(0);
  });
});
req.on('error', (error) => {
  process.stderr.write(`bare-exchange: ${error.message}\n`);
  process.exit(1);
});
req.end();
