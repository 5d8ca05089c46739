// A load generator for a broker's drop-in exchange: many modelled clients (chained sidecars beyond the processes
// the bench can afford), each asking `POST /v1/auth/exchange` over HTTPS at its own pace, spread over the brokers.
// Open loop: requests go out at the target rate whether or not earlier ones have been answered.
import { Agent, request } from 'node:https';
import { percentile } from './stats.ts';

export interface DropInLoadOptions {
  /** The brokers' token API ports on 127.0.0.1; requests go round-robin. */
  readonly ports: readonly number[];
  readonly ca: string;
  readonly token: string;
  /** Requests per second, all brokers together. */
  readonly rate: number;
}

export interface DropInLoadResult {
  readonly seconds: number;
  readonly sent: number;
  readonly ok: number;
  /** Answers by status code (200 included). */
  readonly statuses: Record<string, number>;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const TICK_MS = 10;

/** Starts the load now; `stop()` ends it and resolves once every request in flight has ended. */
export function startDropInLoad(options: DropInLoadOptions): { stop(): Promise<DropInLoadResult> } {
  // Kept-alive connections, as a fleet of sidecars each with its own connection would look to a broker in aggregate.
  const agent = new Agent({ keepAlive: true, maxSockets: 32, ca: options.ca });
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  let sent = 0;
  let errors = 0;
  let inFlight = 0;
  let owed = 0;
  let drained: (() => void) | undefined;
  const startedAt = performance.now();
  let last = startedAt;
  const one = (port: number): void => {
    const at = performance.now();
    sent++;
    inFlight++;
    const done = (): void => {
      inFlight--;
      if (inFlight === 0) drained?.();
    };
    const req = request({ host: '127.0.0.1', port, path: '/v1/auth/exchange', method: 'POST', agent, headers: { authorization: `Bearer ${options.token}`, 'content-length': '0' } }, (res) => {
      res.resume().on('end', () => {
        statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
        if (res.statusCode === 200) latencies.push(performance.now() - at);
        done();
      });
    });
    req.on('error', () => { errors++; done(); });
    req.end();
  };
  const timer = setInterval(() => {
    const now = performance.now();
    owed += ((now - last) / 1000) * options.rate;
    last = now;
    while (owed >= 1) {
      one(options.ports[sent % options.ports.length] ?? 0);
      owed -= 1;
    }
  }, TICK_MS);
  return {
    async stop() {
      clearInterval(timer);
      const seconds = (performance.now() - startedAt) / 1000;
      if (inFlight > 0) await new Promise<void>((resolve) => { drained = resolve; });
      agent.destroy();
      return { seconds, sent, ok: statuses['200'] ?? 0, statuses, errors, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
    },
  };
}
