import { createSecureContext, rootCertificates } from 'node:tls';
import { EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { describeError, ExchangeError } from '../core/errors.ts';
import type { ExchangeRequest } from '../credentials/credential.ts';
import { VERSION } from '../core/version.ts';
import { MAX_BODY_BYTES, type RawResponse } from './exchange-response.ts';

const USER_AGENT = `ek-sidecar/${VERSION}`;

export interface ExchangeClientOptions {
  /** Upstream base URL without a trailing slash. */
  readonly apiUrl: string;
  /** Deadline of the whole request: connect, headers and body. */
  readonly timeoutMs: number;
  /** Extra PEM CA bundle, trusted in addition to the system roots. */
  readonly caPem?: string | undefined;
}

export interface ExchangeClient {
  /** Send one exchange request. Throws ExchangeError('network_error' | 'invalid_response') when no response is usable. */
  send(request: ExchangeRequest, signal: AbortSignal): Promise<RawResponse>;
  close(): Promise<void>;
}

/**
 * The sending half of the exchange. It never retries and never follows redirects: every attempt must pass the
 * rate-limit budget, which lives in the refresher, and a 3xx is an invalid answer.
 */
export function createExchangeClient(options: ExchangeClientOptions): ExchangeClient {
  // `ca` replaces Node's roots; the SPEC's --ca-file adds to them. One context for every connection: given `ca`,
  // each TLS connection would parse the ~150 roots again (a sixth of a chained sidecar's first exchange in CPU).
  const secureContext = options.caPem === undefined ? undefined : createSecureContext({ ca: [...rootCertificates, options.caPem] });
  const tls = secureContext === undefined ? {} : { secureContext };
  // EnvHttpProxyAgent honours HTTP(S)_PROXY and NO_PROXY (either case); with none set it is a plain Agent.
  const dispatcher: Dispatcher = new EnvHttpProxyAgent({
    connect: { timeout: options.timeoutMs, ...tls },
    requestTls: tls,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  return {
    async send(exchange, signal) {
      const url = `${options.apiUrl}${exchange.path}`;
      const deadline = AbortSignal.timeout(options.timeoutMs);
      try {
        const response = await request(url, {
          method: 'POST',
          headers: { ...exchange.headers, accept: 'application/json', 'user-agent': USER_AGENT },
          ...(exchange.body === undefined ? {} : { body: exchange.body }),
          dispatcher,
          signal: AbortSignal.any([signal, deadline]),
        });
        const body = await readCapped(response.body, url, response.headers['content-length']);
        return { url, status: response.statusCode, headers: response.headers, body };
      } catch (error) {
        if (error instanceof ExchangeError) throw error;
        const why = deadline.aborted ? `timed out after ${options.timeoutMs} ms` : signal.aborted ? 'aborted by shutdown' : describeError(error);
        throw new ExchangeError('network_error', `POST ${url} failed: ${why}`, { cause: error });
      }
    },
    async close() {
      await dispatcher.destroy();
    },
  };
}

/** Read the body as text, refusing more than 64 KiB whether announced by Content-Length or streamed. */
async function readCapped(body: Dispatcher.ResponseData['body'], url: string, contentLength: string | string[] | undefined): Promise<string> {
  const tooLarge = (): ExchangeError => new ExchangeError('invalid_response', `${url} answered with a body over ${MAX_BODY_BYTES} bytes`);
  if (typeof contentLength === 'string' && Number(contentLength) > MAX_BODY_BYTES) {
    body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
