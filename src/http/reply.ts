import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

export const JSON_TYPE = 'application/json';

/** Request bodies larger than this are refused with 413. */
export const MAX_BODY_BYTES = 64 * 1024;

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The JSON error body of SPEC.md: `{"message": "…"}`. Messages are fixed strings, never a secret. */
export function messageBody(message: string): string {
  return JSON.stringify({ message });
}

/** A complete answer, decided before anything is written. Error replies are constants built once. */
export interface Reply {
  readonly code: number;
  readonly type: string;
  readonly body: string;
  readonly headers: OutgoingHttpHeaders | undefined;
}

/** A fixed `{"message"}` reply. Messages are fixed strings: they never echo a request, a token or a JWT. */
export function errorReply(code: number, message: string, headers?: OutgoingHttpHeaders): Reply {
  return { code, type: JSON_TYPE, body: messageBody(message), headers };
}

/** Write a complete response in one go. */
export function send(res: ServerResponse, reply: Reply): void {
  const headers = reply.headers;
  if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name] ?? '');
  res.writeHead(reply.code, { 'Content-Type': reply.type, 'Content-Length': Buffer.byteLength(reply.body) });
  res.end(reply.body);
}

/** True when the request announces a body (a length above zero, or a chunked stream). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** True when Content-Length alone already says the body is too large. */
export function declaredTooLarge(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return length !== undefined && Number(length) > MAX_BODY_BYTES;
}

export type BodyOutcome = 'complete' | 'too_large' | 'aborted';

/**
 * Read a request body, counting bytes as they stream so a chunked body cannot exceed the limit, and keeping its
 * bytes only when asked (the OIDC drop-in reads its JSON; every other route discards what it is sent). `done` is
 * called once. After `too_large` the rest is still discarded until the response closes the connection.
 */
export function readBody(req: IncomingMessage, keep: boolean, done: (outcome: BodyOutcome, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let settled = false;
  const settle = (outcome: BodyOutcome): void => {
    if (settled) return;
    settled = true;
    done(outcome, outcome === 'complete' && keep ? Buffer.concat(chunks) : Buffer.alloc(0));
  };
  req.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > MAX_BODY_BYTES) settle('too_large');
    else if (keep) chunks.push(chunk);
  });
  req.on('end', () => {
    settle('complete');
  });
  // Without this listener an aborted upload would be an unhandled 'error'.
  req.on('error', () => {
    settle('aborted');
  });
}

/** Read and discard a request body (see readBody). */
export function discardBody(req: IncomingMessage, done: (outcome: BodyOutcome) => void): void {
  readBody(req, false, (outcome) => { done(outcome); });
}

/** The path of a request target, without its query string. */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}
