import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  OPS_MAX_CONNECTIONS,
  createHttpServer,
  startServer,
  type Bind,
  type HttpTimeouts,
  type Logger,
  type RunningServer,
} from './server.ts';
import {
  JSON_TYPE,
  declaredTooLarge,
  discardBody,
  errorReply,
  hasBody,
  pathOf,
  send,
  type Reply,
} from './reply.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ServedJwt } from '../refresh/served-jwt.ts';

export interface OpsServerOptions {
  /** No host: every interface. */
  readonly listen: Bind;
  readonly served: ServedJwt;
  readonly metrics: Metrics;
  /** Whether the daemon's main loop is still running: the liveness answer. */
  readonly alive: () => boolean;
  /** Gauges that depend on the time of the scrape (the rolling budget) are brought up to date here. */
  readonly beforeScrape?: () => void;
  readonly log?: Logger;
  /** SPEC defaults when absent; tests shorten them. */
  readonly timeouts?: Partial<HttpTimeouts>;
  /** Most connections open at once; OPS_MAX_CONNECTIONS when absent. */
  readonly maxConnections?: number;
}

const PATHS = new Set(['/metrics', '/healthz', '/readyz']);

const REPLY = {
  alive: statusReply(200, 'ok'),
  ready: statusReply(200, 'ready'),
  notAlive: errorReply(503, 'the daemon loop has stopped'),
  notFound: errorReply(404, 'not found'),
  // HEAD answers like GET without a body (node:http drops it), for probes that only look at the code.
  method: errorReply(405, 'method not allowed', { Allow: 'GET, HEAD' }),
  tooLarge: errorReply(413, 'request body exceeds 64 KiB', { Connection: 'close' }),
  internal: errorReply(500, 'internal error'),
};

/**
 * Metrics and health, on all interfaces for kubelet probes and Prometheus. It never serves a token, so the
 * token API's Host guards do not apply here: probes and scrapers address the pod by its IP.
 * Every answer is derived from what `served` records; nothing is polled or fetched to answer.
 */
export function startOpsServer(options: OpsServerOptions): Promise<RunningServer> {
  const { timeouts, log } = options;
  const server = createHttpServer({ timeouts, maxConnections: options.maxConnections ?? OPS_MAX_CONNECTIONS, name: 'metrics listener', log }, opsHandler(options));
  return startServer(server, options.listen, 'metrics listener', log);
}

function opsHandler(options: OpsServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const answer = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    decide(options, req, path).then(
      (reply) => {
        send(res, reply);
      },
      (error: unknown) => {
        options.log?.warn({ err: error }, 'ops request failed');
        send(res, REPLY.internal);
      },
    );
  };
  return (req, res) => {
    const path = pathOf(req.url);
    if (!hasBody(req)) {
      answer(req, res, path);
    } else if (declaredTooLarge(req)) {
      send(res, REPLY.tooLarge);
    } else {
      discardBody(req, (outcome) => {
        if (outcome === 'complete') answer(req, res, path);
        else if (outcome === 'too_large') send(res, REPLY.tooLarge);
      });
    }
  };
}

async function decide(options: OpsServerOptions, req: IncomingMessage, path: string): Promise<Reply> {
  if (!PATHS.has(path)) return REPLY.notFound;
  if (req.method !== 'GET' && req.method !== 'HEAD') return REPLY.method;
  if (path === '/metrics') return metricsReply(options);
  if (path === '/healthz') return options.alive() ? REPLY.alive : REPLY.notAlive;
  const readiness = options.served.readiness();
  // The reason is Status's wording, which never holds a secret.
  return readiness.ready ? REPLY.ready : errorReply(503, readiness.reason);
}

/** Health gauges are set from recorded state just before rendering, so a scrape always agrees with /readyz. */
async function metricsReply({ served, metrics, beforeScrape }: OpsServerOptions): Promise<Reply> {
  beforeScrape?.();
  metrics.ready.set(served.readiness().ready ? 1 : 0);
  const text = await metrics.registry.metrics();
  return { code: 200, type: metrics.registry.contentType, body: text, headers: undefined };
}

function statusReply(code: number, status: string): Reply {
  return { code, type: JSON_TYPE, body: JSON.stringify({ status }), headers: undefined };
}
