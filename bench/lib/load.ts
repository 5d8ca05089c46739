// One autocannon run. The servers under test are child processes, so this load generator never shares their
// event loop. autocannon's own latency histogram has a 1 ms floor (every loopback request is "0 ms"), so latencies
// are taken from its per-response timings (hrtime, sub-millisecond) and the percentiles computed here.
import autocannon from 'autocannon';
import { percentile } from './stats.ts';

export interface LoadResult {
  readonly connections: number;
  readonly seconds: number;
  /** 2xx responses per second. */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
}

export interface LoadOptions {
  readonly port: number;
  readonly connections: number;
  readonly seconds: number;
  readonly headers: Record<string, string>;
  readonly path: string;
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16);
    let ok = 0;
    let non2xx = 0;
    let startedAt = 0;
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${options.port}${options.path}`,
        connections: options.connections,
        duration: options.seconds,
        headers: options.headers,
        pipelining: 1,
        // autocannon checks for the end of a run once per sample: the default 1 s would round every run up to whole seconds.
        sampleInt: 100,
      },
      (error: unknown, result) => {
        const seconds = (performance.now() - startedAt) / 1000;
        if (error !== null && error !== undefined) {
          reject(error instanceof Error ? error : new Error(`autocannon failed: ${JSON.stringify(error)}`));
          return;
        }
        const recorded = latencies.subarray(0, ok);
        resolve({
          connections: options.connections,
          seconds,
          rps: ok / seconds,
          p50Ms: percentile(recorded, 50),
          p99Ms: percentile(recorded, 99),
          ok,
          non2xx,
          errors: result.errors + result.timeouts,
        });
      },
    );
    startedAt = performance.now();
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode < 200 || statusCode > 299) {
        non2xx++;
        return;
      }
      if (ok === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[ok++] = responseTime;
    });
  });
}
