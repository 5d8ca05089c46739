// What every route of the fake shares: answers decided before anything is written, and bounded request bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
/** The body cap of SPEC.md for exchange answers; also the fake's own cap on JSON request bodies. */
export const MAX_BODY_BYTES = 64 * 1024;

/** A complete answer, written as is. */
export interface CannedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export function jsonResponse(status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): CannedResponse {
  return { status, headers: { ...headers, 'content-type': JSON_CONTENT_TYPE }, body: JSON.stringify(value) };
}

export function message(status: number, text: string, headers: Readonly<Record<string, string>> = {}): CannedResponse {
  return jsonResponse(status, { message: text }, headers);
}

export function writeAnswer(res: ServerResponse, answer: CannedResponse, extra: Readonly<Record<string, string>> = {}): void {
  res.writeHead(answer.status, { ...extra, ...answer.headers, 'content-length': Buffer.byteLength(answer.body) });
  res.end(answer.body);
}

/** The whole body, or undefined once it passes `maxBytes` (the rest is drained, not kept). */
export async function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  }
  return size > maxBytes ? undefined : Buffer.concat(chunks);
}

/** A JSON body as sent to the control API; empty is `{}`. Throws with a message on anything else. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  if (body === undefined) throw new Error('body over 64 KiB');
  const text = body.toString('utf8');
  return text.trim() === '' ? {} : (JSON.parse(text) as unknown);
}

export function isJsonContentType(value: string | undefined): boolean {
  const type = (value ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || /^application\/[\w.-]+\+json$/.test(type);
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped), localhost: the only hosts the fake listens on. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return h === 'localhost' || h === '::1' || (isIPv4(v4) && v4.startsWith('127.'));
}
