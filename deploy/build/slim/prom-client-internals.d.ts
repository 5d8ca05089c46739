// Types for the prom-client files that slim/prom-client.ts imports directly, borrowed from prom-client's index
// declarations. prom-client is pinned to an exact version in package.json.
declare module 'prom-client/lib/counter.js' {
  const Counter: typeof import('prom-client').Counter;
  export = Counter;
}
declare module 'prom-client/lib/gauge.js' {
  const Gauge: typeof import('prom-client').Gauge;
  export = Gauge;
}
declare module 'prom-client/lib/histogram.js' {
  const Histogram: typeof import('prom-client').Histogram;
  export = Histogram;
}
declare module 'prom-client/lib/registry.js' {
  const Registry: typeof import('prom-client').Registry;
  export = Registry;
}
declare module 'prom-client/lib/defaultMetrics.js' {
  const collectDefaultMetrics: typeof import('prom-client').collectDefaultMetrics;
  export = collectDefaultMetrics;
}
